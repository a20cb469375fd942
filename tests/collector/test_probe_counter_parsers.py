"""The probe and counter parsers (analyzer/parsers/probes.py, counters.py) on real tool
output captured here, in namespaces of our own (ndltprb-*: a client, a router whose link
to the server has a 1300-byte MTU, a server), and on hostile input: truncated, garbled,
random bytes never raise."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from needle.analyzer.parsers import counters, probes
from needle.analyzer.parsers.common import Parsed

TAG = f"ndltprb-{os.getpid()}"
CLIENT, ROUTER, SERVER = f"{TAG}-c", f"{TAG}-r", f"{TAG}-s"
SERVER_IP, ROUTER_IP = "10.99.2.2", "10.99.1.1"
TOPOLOGY = [
    f"-n {CLIENT} link add eth0 type veth peer name eth0 netns {ROUTER}",
    f"-n {ROUTER} link add eth1 type veth peer name eth0 netns {SERVER}",
    f"-n {CLIENT} addr add 10.99.1.2/24 dev eth0",
    f"-n {ROUTER} addr add {ROUTER_IP}/24 dev eth0",
    f"-n {ROUTER} addr add 10.99.2.1/24 dev eth1",
    f"-n {SERVER} addr add {SERVER_IP}/24 dev eth0",
    f"-n {ROUTER} link set eth1 mtu 1300",
    f"-n {SERVER} link set eth0 mtu 1300",
    f"-n {CLIENT} link set eth0 up",
    f"-n {ROUTER} link set eth0 up",
    f"-n {ROUTER} link set eth1 up",
    f"-n {SERVER} link set eth0 up",
    f"-n {CLIENT} route add default via {ROUTER_IP}",
    f"-n {SERVER} route add default via 10.99.2.1",
    f"-n {CLIENT} link add spare0 type veth peer name spare1",
    f"-n {CLIENT} link set spare0 up",
]


def in_ns(ns: str, *argv: str) -> bytes:
    """stdout and stderr of argv in namespace ns (iputils prints local errors on stderr)."""
    result = subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, timeout=30)
    return result.stdout + result.stderr


def ping(*options: str, target: str = SERVER_IP, tool: tuple[str, ...] = ("ping",)) -> bytes:
    return in_ns(CLIENT, *tool, "-c", "3", "-i", "0.2", "-w", "1", "-W", "1", *options, target)


def readings(ns: str) -> dict[str, bytes]:
    return {
        "link-json": in_ns(ns, "ip", "-s", "-s", "-j", "link", "show"),
        "link-text": in_ns(ns, "ip", "-s", "-s", "link", "show"),
        "nstat": in_ns(ns, "nstat", "-asz"),
        "nstat-json": in_ns(ns, "nstat", "-asz", "-j"),
        "snmp": in_ns(ns, "cat", "/proc/net/snmp"),
        "netstat": in_ns(ns, "cat", "/proc/net/netstat"),
        "softnet": in_ns(ns, "cat", "/proc/net/softnet_stat"),
    }


@pytest.fixture(scope="module")
def captured() -> Iterator[dict[str, Any]]:
    """Real outputs, in an order that matters: the first oversized DF echo meets the
    router's frag-needed, the next one the client's cached path MTU (a local error)."""
    made: list[str] = []
    try:
        for ns in (CLIENT, ROUTER, SERVER):
            subprocess.run(["ip", "netns", "add", ns], check=True)
            made.append(ns)
        for line in TOPOLOGY:
            subprocess.run(["ip", *line.split()], check=True)
        subprocess.run(
            ["ip", "netns", "exec", ROUTER, "sysctl", "-qw", "net.ipv4.ip_forward=1"], check=True
        )
        found: dict[str, Any] = {"start": {ns: readings(ns) for ns in (CLIENT, ROUTER, SERVER)}}
        found["small"] = ping("-n", "-s", "56", "-M", "do")
        found["frag-needed"] = ping("-n", "-s", "1400", "-M", "do")
        found["local-mtu"] = ping("-n", "-s", "1400", "-M", "do")
        found["local-mtu-1500"] = ping("-n", "-s", "1600", "-M", "do", target=ROUTER_IP)
        found["net-unreachable"] = ping("-n", "-s", "56", target="10.99.3.9")
        found["busybox-small"] = ping("-s", "56", tool=("busybox", "ping"))
        found["busybox-lost"] = ping("-s", "56", target="10.99.3.9", tool=("busybox", "ping"))
        # a datagram to a closed port: the server counts UdpNoPorts and answers unreachable
        in_ns(CLIENT, "bash", "-c", f"printf x >/dev/udp/{SERVER_IP}/9")
        in_ns(CLIENT, "sleep", "0.2")
        # spare0 recreated between the readings: its counters start again
        subprocess.run(["ip", "-n", CLIENT, "link", "del", "spare0"], check=True)
        subprocess.run(
            ["ip", "-n", CLIENT, "link", "add", "spare0", "type", "veth", "peer", "name", "spare1"],
            check=True,
        )
        found["end"] = {ns: readings(ns) for ns in (CLIENT, ROUTER, SERVER)}
        yield found
    finally:
        for ns in made:
            subprocess.run(["ip", "netns", "del", ns], check=False)


pytestmark = [pytest.mark.tools("ping", "busybox", "nstat", "bash")]
REAL = pytest.mark.root
"""On output captured in namespaces (root); the hostile-input tests need none."""


def only(parsed: Parsed[probes.PingRun]) -> probes.PingRun:
    assert parsed.unparsed == (), parsed.unparsed
    assert len(parsed.records) == 1
    return parsed.records[0]


# --- ping ------------------------------------------------------------------------------


@REAL
def test_iputils_echo_replies_and_statistics(captured):
    run = only(probes.parse_ping(captured["small"]))
    assert (run.flavour, run.target, run.payload, run.packet) == ("iputils", SERVER_IP, 56, 84)
    assert (run.sent, run.received, run.errors, run.loss_pct) == (3, 3, 0, 0.0)
    assert len(run.replies) == 3 and run.replies[0].bytes == 64 and run.replies[0].ttl == 63
    assert run.rtt_min_ms is not None and run.rtt_min_ms <= run.rtt_max_ms
    assert run.complete and run.outcome == "passed" and run.icmp_errors == ()


@REAL
def test_frag_needed_from_the_router_names_the_next_hop_mtu(captured):
    run = only(probes.parse_ping(captured["frag-needed"]))
    assert run.outcome == "failed" and run.errors and run.errors >= 1
    error = run.icmp_errors[0]
    assert (error.kind, error.source, error.mtu) == ("frag-needed", ROUTER_IP, 1300)
    assert run.reported_mtu == 1300


@REAL
@pytest.mark.parametrize(("sample", "mtu"), [("local-mtu", 1300), ("local-mtu-1500", 1500)])
def test_local_message_too_long_names_the_mtu(captured, sample, mtu):
    run = only(probes.parse_ping(captured[sample]))
    assert run.outcome == "failed"
    assert [(e.kind, e.mtu) for e in run.icmp_errors] == [("message-too-long", mtu)]
    assert "ping: local error: message too long" in run.icmp_errors[0].text


@REAL
def test_destination_unreachable_from_the_router(captured):
    run = only(probes.parse_ping(captured["net-unreachable"]))
    assert run.outcome == "failed"
    assert {(e.kind, e.source) for e in run.icmp_errors} == {("net-unreachable", ROUTER_IP)}


@REAL
def test_busybox_ping(captured):
    run = only(probes.parse_ping(captured["busybox-small"]))
    assert (run.flavour, run.payload, run.packet, run.sent, run.received) == (
        "busybox",
        56,
        None,
        3,
        3,
    )
    assert run.replies[0].seq == 0 and run.rtt_avg_ms is not None and run.outcome == "passed"
    lost = only(probes.parse_ping(captured["busybox-lost"]))
    assert lost.outcome == "failed" and lost.loss_pct == 100.0


def test_known_text_forms():
    text = (
        b"PING 10.244.2.1 (10.244.2.1) 1422(1450) bytes of data.\n"
        b"From 10.244.1.0 icmp_seq=1 Frag needed and DF set (mtu = 1400)\n"
        b"ping: sendmsg: Message too long\n"
        b"From 10.0.0.1 icmp_seq=2 Destination Port Unreachable\n"
        b"From 10.0.0.1 icmp_seq=3 Time to live exceeded\n"
        b"\n--- 10.244.2.1 ping statistics ---\n"
        b"3 packets transmitted, 0 received, +3 errors, 100% packet loss, time 2003ms\n"
        b"pipe 3\n"
    )
    run = only(probes.parse_ping(text))
    assert [e.kind for e in run.icmp_errors] == [
        "frag-needed",
        "message-too-long",
        "port-unreachable",
        "time-exceeded",
    ]
    assert run.reported_mtu == 1400 and run.errors == 3


@REAL
def test_a_run_cut_before_its_statistics_is_truncated(captured):
    data = captured["small"]
    cut = probes.parse_ping(data[: data.index(b"---")])
    assert cut.truncated and cut.records[0].sent is None and cut.records[0].outcome == "unknown"
    assert len(cut.records[0].replies) == 3


# --- counters --------------------------------------------------------------------------


@REAL
def test_link_stats_json_and_text_agree(captured):
    reading = captured["start"][CLIENT]
    json_form = counters.parse_link_stats(reading["link-json"])
    text_form = counters.parse_link_stats(reading["link-text"])
    assert json_form.clean and text_form.clean
    assert [(r.ifname, r.ifindex) for r in json_form.records] == [
        (r.ifname, r.ifindex) for r in text_form.records
    ]
    for from_json, from_text in zip(json_form.records, text_form.records, strict=True):
        assert dict(from_json.counters) == dict(from_text.counters)
        assert {"rx_packets", "rx_over_errors", "tx_dropped", "tx_carrier_errors"} <= set(
            from_json.counters
        )


@REAL
def test_nstat_forms_agree_with_proc_net(captured):
    reading = captured["start"][CLIENT]
    text = counters.parse_nstat(reading["nstat"])
    json_form = counters.parse_nstat(reading["nstat-json"])
    proc = [
        *counters.parse_proc_snmp(reading["snmp"]).records,
        *counters.parse_proc_snmp(reading["netstat"]).records,
    ]
    assert text.clean and json_form.clean
    by_text = {c.name: c.value for c in text.records}
    assert by_text == {c.name: c.value for c in json_form.records}
    shared = [c for c in proc if c.name in by_text]
    assert len(shared) > 100
    # the client is idle between the reads: the same counters, the same values
    assert {c.name: c.value for c in shared if c.group in ("Udp", "IcmpMsg")} == {
        c.name: by_text[c.name] for c in shared if c.group in ("Udp", "IcmpMsg")
    }
    from_proc = counters.protocol_counters(None, reading["snmp"], reading["netstat"])
    assert {c.name for c in from_proc.records} == {c.name for c in proc}
    assert counters.protocol_counters(reading["nstat"], reading["snmp"]).records == text.records
    assert counters.counter_group("UdpNoPorts") == "Udp"
    assert counters.counter_group("IcmpMsgInType3") == "IcmpMsg"


@REAL
def test_softnet_stat_columns(captured):
    parsed = counters.parse_softnet_stat(captured["start"][CLIENT]["softnet"])
    assert parsed.clean and len(parsed.records) == os.cpu_count()
    assert [cpu.cpu for cpu in parsed.records] == list(range(len(parsed.records)))
    assert all(cpu.processed >= 0 and cpu.flow_limit_count is not None for cpu in parsed.records)


def _protocol(reading: dict[str, bytes]) -> list[counters.Counter]:
    return list(counters.parse_nstat(reading["nstat"]).records)


def _deltas(start: dict[str, bytes], end: dict[str, bytes]) -> dict[str, int | None]:
    return {d.name: d.delta for d in counters.counter_deltas(_protocol(start), _protocol(end))}


@REAL
def test_deltas_show_the_probes_drops_and_refusals(captured):
    start, end = captured["start"], captured["end"]
    links = counters.link_deltas(
        counters.parse_link_stats(start[CLIENT]["link-json"]).records,
        counters.parse_link_stats(end[CLIENT]["link-json"]).records,
    )
    by_name = {delta.ifname: delta for delta in links}
    assert by_name["eth0"].delta("tx_packets") >= 6 and not by_name["eth0"].recreated
    assert by_name["spare0"].recreated  # deleted and made again: a new ifindex
    server = counters.counter_deltas(
        _protocol(start[SERVER]), _protocol(end[SERVER]), sorted(counters.WATCHED_COUNTERS)
    )
    watched = {d.name: d.delta for d in server}
    assert watched["UdpNoPorts"] == 1 and watched["IcmpOutDestUnreachs"] >= 1
    router = {
        d.name: d.delta
        for d in counters.counter_deltas(_protocol(start[ROUTER]), _protocol(end[ROUTER]))
    }
    assert router["IpFragFails"] >= 1  # the DF echo it could not forward
    client = {
        d.name: d.delta
        for d in counters.counter_deltas(_protocol(start[CLIENT]), _protocol(end[CLIENT]))
    }
    assert client["IcmpInDestUnreachs"] >= 2  # frag needed, net unreachable
    softnet = counters.softnet_deltas(
        counters.parse_softnet_stat(start[CLIENT]["softnet"]).records,
        counters.parse_softnet_stat(end[CLIENT]["softnet"]).records,
    )
    assert all(d.delta is not None and d.delta >= 0 for _cpu, ds in softnet for d in ds)


def test_a_counter_that_went_down_is_a_reset_not_a_negative_delta():
    link = counters.LinkCounters
    before = [link("eth0", 2, {"rx_packets": 100, "tx_packets": 50})]
    after = [
        link("eth0", 2, {"rx_packets": 7, "tx_packets": 60}),
        link("new0", 9, {"rx_packets": 1}),
    ]
    eth0, new0 = counters.link_deltas(before, after)
    assert eth0.recreated and eth0.delta("rx_packets") is None and eth0.delta("tx_packets") == 10
    assert next(d for d in eth0.deltas if d.name == "rx_packets").reset
    assert new0.missing == "start"
    gone = counters.link_deltas(before, [])
    assert gone[0].missing == "end"
    proto = counters.counter_deltas(
        [counters.Counter("UdpNoPorts", "Udp", 9)], [counters.Counter("UdpNoPorts", "Udp", 2)]
    )
    assert proto[0].reset and proto[0].delta is None


# --- hostile input ---------------------------------------------------------------------

PARSERS: list[Callable[[bytes], Parsed[Any]]] = [
    probes.parse_ping,
    counters.parse_link_stats,
    counters.parse_link_stats_json,
    counters.parse_link_stats_text,
    counters.parse_nstat,
    counters.parse_nstat_json,
    counters.parse_nstat_text,
    counters.parse_proc_snmp,
    counters.parse_softnet_stat,
]


def samples(found: dict[str, Any]) -> list[bytes]:
    flat = [value for value in found.values() if isinstance(value, bytes)]
    for phase in ("start", "end"):
        for reading in found[phase].values():
            flat.extend(reading.values())
    return flat


@REAL
@pytest.mark.parametrize("parser", PARSERS, ids=lambda p: p.__name__)
def test_every_cut_of_a_real_output_parses(captured, parser):
    for data in samples(captured):
        for cut in range(0, len(data), max(1, len(data) // 97)):
            result = parser(data[:cut])
            assert isinstance(result, Parsed)


GARBAGE = [
    b"",
    b"\x00\xff" * 100,
    b"[" * 10000,
    b'{"kernel": {"UdpNoPorts": "x", "": 1, "A B": 2}}',
    b'[{"ifname": "eth0", "stats64": {"rx": {"packets": -1, "bytes": 1e400}}}]',
    b"Udp: InDatagrams NoPorts\nUdp: 1\nIp: 1 2\n",
    b"zz zz zz\n0000000g 1 2\n",
    b"PING x (x) 99999999999999999999(1) bytes of data.\nFrom  icmp_seq=x\n",
    b"3 packets transmitted, 9 received, +1 errors, 900% packet loss\n",
    "ping: local error: message too long, mtu=١٢".encode(),
]


@pytest.mark.parametrize("parser", PARSERS, ids=lambda p: p.__name__)
@pytest.mark.parametrize("data", GARBAGE)
def test_garbage_never_raises(parser, data):
    assert isinstance(parser(data), Parsed)


@pytest.mark.parametrize("parser", PARSERS, ids=lambda p: p.__name__)
@settings(
    max_examples=int(os.environ.get("NEEDLE_FUZZ_EXAMPLES", "100")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.binary(max_size=2000))
def test_random_bytes_never_raise(parser, data):
    assert isinstance(parser(data), Parsed)
