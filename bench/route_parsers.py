"""Benchmark: our ``ip route show table all`` text parser against insights-core's and jc's.

Generates a realistic output of about 100,000 lines (every route type, named and numbered
tables, multipath routes with ``nexthop`` continuation lines, IPv4 and IPv6 ``cache``
lines, metrics with ``lock``, ``onlink``/``linkdown``/``dead`` flags, ``nhid``, ``encap``,
``pref``/``expires``), keeps the truth for every route, parses the text with each parser
in the same process, and prints the time and how many routes each one lost or mangled.

Not a test: numbers go in notes. Needs ``pip install insights-core jc`` for the other two
parsers (they are skipped with a note when absent).

    python bench/route_parsers.py [--lines 100000] [--seed 6] [--repeat 3]
"""

from __future__ import annotations

import argparse
import gc
import importlib
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from needle.analyzer.parsers.ip_route import Nexthop, Route, make_route, parse_ip_route_text

Facts = dict[str, Any]

# --- generator -------------------------------------------------------------------------

TABLE_NAMES = ["100", "200", "254", "1000", "red_mgmt", "vrf-blue", "4242"]
DEVICES = ["eth0", "eth1", "bond0.300", "cni0", "flannel.1", "tun0", "enp0s25", "ens33"]
PROTOS = ["kernel", "static", "bird", "zebra", "dhcp", "ra", "196"]


@dataclass
class Generated:
    text: str
    truth: list[Route]
    lines_of: list[int]  # lines per route, same order as truth


def _v4(rng: random.Random) -> str:
    return f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def _v4_prefix(rng: random.Random) -> str:
    plen = rng.choice([8, 16, 20, 24, 24, 24, 26, 30, 32])
    if plen == 32:
        return _v4(rng)
    return f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.0/{plen}"


def _v6(rng: random.Random) -> str:
    return (
        f"2001:db8:{rng.randrange(65536):x}:{rng.randrange(65536):x}::{rng.randrange(1, 65536):x}"
    )


def _v6_prefix(rng: random.Random) -> str:
    return f"2001:db8:{rng.randrange(65536):x}:{rng.randrange(65536):x}::/64"


def _route_of(**fields: Any) -> Route:
    """The truth record: the generator states the family, which Route itself derives."""
    fields.pop("family", None)
    return make_route(fields)


def _route(rng: random.Random) -> Route:
    """One route, drawn from a mix close to a busy Kubernetes node's table all."""
    kind = rng.random()
    dev = rng.choice(DEVICES)
    if kind < 0.22:  # plain unicast via a gateway, main or another table
        table = "main" if rng.random() < 0.7 else rng.choice(TABLE_NAMES)
        return _route_of(
            dst=_v4_prefix(rng),
            gateway=_v4(rng),
            dev=dev,
            table=table,
            proto=rng.choice(["boot", "static", "bird"]),
            metric=rng.choice([None, 20, 100, 1024]),
            family="inet",
        )
    if kind < 0.32:  # connected, kernel proto, scope link, src
        return _route_of(
            dst=_v4_prefix(rng),
            dev=dev,
            proto="kernel",
            scope="link",
            src=_v4(rng),
            flags=("linkdown",) if rng.random() < 0.1 else (),
            family="inet",
        )
    if kind < 0.40:  # flannel peer subnets
        gw = f"10.244.{rng.randrange(256)}.0"
        return _route_of(
            dst=gw + "/24", gateway=gw, dev="flannel.1", flags=("onlink",), family="inet"
        )
    if kind < 0.53:  # local table: local / broadcast
        rtype = rng.choice(["local", "broadcast"])
        return _route_of(
            dst=_v4(rng),
            type=rtype,
            dev=dev,
            table="local",
            proto="kernel",
            scope="host" if rtype == "local" else "link",
            src=_v4(rng),
            family="inet",
        )
    if kind < 0.58:  # special types
        rtype = rng.choice(["blackhole", "unreachable", "prohibit", "throw", "nat", "anycast"])
        fields: dict[str, Any] = {"dst": _v4_prefix(rng), "type": rtype, "family": "inet"}
        if rtype == "throw":
            fields["table"] = rng.choice(TABLE_NAMES)
        if rtype == "unreachable":
            fields["metric"] = rng.choice([7, 1024])
        if rtype == "nat":
            fields["gateway"] = _v4(rng)
        if rtype == "anycast":
            fields.update(dev=dev, table="local", scope="link")
        return _route_of(**fields)
    if kind < 0.63:  # multipath
        legs = tuple(
            Nexthop(
                gateway=_v4(rng),
                dev=rng.choice(DEVICES),
                weight=rng.randrange(1, 5),
                flags=("dead", "linkdown") if rng.random() < 0.1 else (),
            )
            for _ in range(rng.randrange(2, 5))
        )
        return _route_of(
            dst=_v4_prefix(rng),
            table=rng.choice(["main", "main", *TABLE_NAMES]),
            proto=rng.choice(["boot", "zebra"]),
            metric=rng.choice([None, 20]),
            nexthops=legs,
            family="inet",
        )
    if kind < 0.66:  # metrics with lock
        locked = ("mtu",) if rng.random() < 0.5 else ()
        return _route_of(
            dst=_v4_prefix(rng),
            gateway=_v4(rng),
            dev=dev,
            src=_v4(rng),
            metrics={"mtu": rng.choice([1400, 1450, 8950]), "advmss": 1360, "rtt": 10},
            locked=locked,
            family="inet",
        )
    if kind < 0.68:  # nexthop objects and encap
        if rng.random() < 0.5:
            return _route_of(
                dst=_v4_prefix(rng),
                nhid=rng.randrange(1, 100),
                gateway=_v4(rng),
                dev=dev,
                family="inet",
            )
        return _route_of(
            dst=_v4_prefix(rng),
            encap=(
                "ip",
                "id",
                str(rng.randrange(1, 4096)),
                "src",
                "0.0.0.0",
                "dst",
                _v4(rng),
                "ttl",
                "0",
                "tos",
                "0",
            ),
            dev="flannel.1",
            scope="link",
            family="inet",
        )
    if kind < 0.70:  # IPv4 cache entries
        return _route_of(
            dst=_v4(rng),
            gateway=_v4(rng),
            dev=dev,
            cached=True,
            expires=rng.randrange(1, 600),
            metrics={"mtu": 1280},
            family="inet",
        )
    if kind < 0.88:  # IPv6 unicast / kernel / ra
        proto = rng.choice(["boot", "kernel", "ra"])
        return _route_of(
            dst=rng.choice([_v6_prefix(rng), "fe80::/64", "default"]),
            gateway=None if proto == "kernel" else f"fe80::{rng.randrange(1, 65536):x}",
            dev=dev,
            table=rng.choice(["main", "main", "100"]),
            proto=proto,
            metric=rng.choice([256, 1024]),
            expires=rng.randrange(1, 9000) if proto == "ra" else None,
            pref=rng.choice(["medium", "medium", "high", "low"]),
            flags=("linkdown",) if rng.random() < 0.05 else (),
            family="inet6",
        )
    if kind < 0.92:  # IPv6 local / multicast / unreachable
        rtype = rng.choice(["local", "multicast", "unreachable", "blackhole", "prohibit"])
        return _route_of(
            dst=_v6(rng) if rtype == "local" else _v6_prefix(rng),
            type=rtype,
            dev="lo" if rtype in ("unreachable", "blackhole", "prohibit") else dev,
            table="local" if rtype in ("local", "multicast") else "main",
            proto="kernel" if rtype in ("local", "multicast") else "boot",
            metric=0 if rtype == "local" else 1024,
            pref="medium",
            family="inet6",
        )
    if kind < 0.95:  # old-kernel IPv6 cache entries
        return _route_of(
            dst=_v6(rng),
            gateway=f"fe80::{rng.randrange(1, 65536):x}",
            dev=dev,
            metric=0,
            cached=True,
            metrics={"mtu": 1492, "hoplimit": 255},
            family="inet6",
        )
    if kind < 0.97:  # IPv6 multipath
        legs = tuple(
            Nexthop(
                gateway=f"fe80::{rng.randrange(1, 65536):x}",
                dev=rng.choice(DEVICES),
                weight=rng.randrange(1, 4),
            )
            for _ in range(rng.randrange(2, 4))
        )
        return _route_of(
            dst=_v6_prefix(rng), metric=1024, pref="medium", nexthops=legs, family="inet6"
        )
    # default routes in many tables
    return _route_of(
        dst="default",
        gateway=_v4(rng),
        dev=dev,
        table=rng.choice(TABLE_NAMES),
        proto=rng.choice(PROTOS),
        metric=rng.choice([None, 100]),
        family="inet",
    )


def _format(route: Route) -> list[str]:
    """The lines iproute2 6.1 prints for a route (same order of attributes, trailing space)."""
    words: list[str] = []
    if route.type != "unicast":
        words.append(route.type)
    words.append(route.dst)
    if route.nhid is not None:
        words += ["nhid", str(route.nhid)]
    if route.encap:
        words += ["", "encap", *route.encap]  # iproute2 prints two spaces before encap
    if route.gateway:
        words += ["via", route.gateway]
    if route.dev:
        words += ["dev", route.dev]
    if route.table != "main":
        words += ["table", route.table]
    if route.proto != "boot":
        words += ["proto", route.proto]
    if route.scope != "global":
        words += ["scope", route.scope]
    if route.src:
        words += ["src", route.src]
    if route.metric is not None:
        words += ["metric", str(route.metric)]
    words += list(route.flags)
    cache: list[str] = []
    tail: list[str] = []
    if route.expires is not None:
        tail += ["expires", f"{route.expires}sec"]
    for name, value in route.metrics.items():
        tail.append(name)
        if name in route.locked:
            tail.append("lock")
        tail.append(f"{value}ms" if name == "rtt" else str(value))
    if route.cached:
        cache, tail = tail, []
    if route.pref:
        tail += ["pref", route.pref]
    lines = [" ".join(words + tail) + " "]
    for leg in route.nexthops:
        nh = ["nexthop", "via", leg.gateway or "", "dev", leg.dev or "", "weight", str(leg.weight)]
        lines.append("\t" + " ".join(nh + list(leg.flags)) + " ")
    if route.cached:
        if route.family == "inet6":  # the old kernels' layout: two spaces after "cache"
            lines.append("    cache  " + " ".join(cache))
        else:
            lines.append("    cache " + " ".join(cache) + " ")
    return lines


def generate(target_lines: int, seed: int) -> Generated:
    rng = random.Random(seed)
    lines: list[str] = []
    truth: list[Route] = []
    counts: list[int] = []
    while len(lines) < target_lines:
        route = _route(rng)
        formatted = _format(route)
        truth.append(route)
        counts.append(len(formatted))
        lines.extend(formatted)
    return Generated("\n".join(lines) + "\n", truth, counts)


# --- one fact set per route, whichever parser produced it ------------------------------


def truth_facts(route: Route) -> Facts:
    return {
        "type": route.type,
        "dst": route.dst,
        "table": route.table,
        "dev": route.dev,
        "gateway": route.gateway,
        "proto": route.proto,
        "scope": route.scope,
        "src": route.src,
        "metric": None if route.metric is None else str(route.metric),
        "flags": tuple(sorted(route.flags)),
        "nexthops": tuple((n.gateway, n.dev, n.weight, tuple(n.flags)) for n in route.nexthops),
        "metrics": tuple(sorted((k, str(v)) for k, v in route.metrics.items())),
        "locked": tuple(sorted(route.locked)),
        "expires": route.expires,
        "pref": route.pref,
        "cached": route.cached,
        "nhid": None if route.nhid is None else str(route.nhid),
        "encap": route.encap,
    }


_METRIC_NAMES = ("mtu", "advmss", "rtt", "hoplimit")


def insights_facts(record: Any) -> Facts:
    """Generous reading of an insights-core Route: every attribute it set is used."""
    data = dict(vars(record))
    metrics = []
    for name in _METRIC_NAMES:
        if data.get(name) is not None:
            value = str(data[name])
            metrics.append((name, value[:-2] if name == "rtt" and value.endswith("ms") else value))
    expires = data.get("expires")
    return {
        "type": data.get("type") or "unicast",
        "dst": data.get("prefix"),
        "table": data.get("table") or "main",
        "dev": data.get("dev"),
        "gateway": data.get("via"),
        "proto": data.get("proto") or "boot",
        "scope": data.get("scope") or "global",
        "src": data.get("src"),
        "metric": data.get("metric"),
        "flags": (),
        "nexthops": (),
        "metrics": tuple(sorted(metrics)),
        "locked": (),
        "expires": int(expires[:-3])
        if isinstance(expires, str) and expires[:-3].isdigit()
        else None,
        "pref": data.get("pref"),
        "cached": bool(data.get("cache")),
        "nhid": data.get("nhid"),
        "encap": (),
    }


def jc_facts(record: dict[str, Any]) -> Facts:
    """Generous reading of a jc record: absent table/type/proto/scope mean the defaults."""
    metric = record.get("metric")
    return {
        "type": "unicast",
        "dst": record.get("ip"),
        "table": "main",
        "dev": record.get("dev"),
        "gateway": record.get("via"),
        "proto": record.get("proto") or "boot",
        "scope": record.get("scope") or "global",
        "src": record.get("src"),
        "metric": None if metric is None else str(metric),
        "flags": ("linkdown",) if record.get("status") == "linkdown" else (),
        "nexthops": (),
        "metrics": (),
        "locked": (),
        "expires": None,
        "pref": None,
        "cached": False,
        "nhid": None,
        "encap": (),
    }


def ours_facts(route: Route) -> Facts:
    return truth_facts(route)


@dataclass
class Score:
    intact: int = 0
    mangled: int = 0
    lost: int = 0
    spurious: int = 0
    lines_affected: int = 0


def score(truth: list[Route], lines_of: list[int], produced: list[Facts]) -> Score:
    """Matches produced records to the truth by destination: an exact match is intact,
    a record for the same destination with other facts is mangled, none is lost."""
    pool: dict[Any, list[Facts]] = defaultdict(list)
    for facts in produced:
        pool[facts["dst"]].append(facts)
    result = Score()
    unmatched: list[int] = []
    for i, route in enumerate(truth):
        expected = truth_facts(route)
        candidates = pool.get(route.dst, [])
        for j, facts in enumerate(candidates):
            if facts == expected:
                del candidates[j]
                result.intact += 1
                break
        else:
            unmatched.append(i)
    for i in unmatched:
        candidates = pool.get(truth[i].dst, [])
        if candidates:
            candidates.pop()
            result.mangled += 1
        else:
            result.lost += 1
        result.lines_affected += lines_of[i]
    result.spurious = sum(len(v) for v in pool.values())
    return result


# --- the three parsers -----------------------------------------------------------------


def run_ours(text: str) -> list[Facts]:
    parsed = parse_ip_route_text(text.encode())
    facts = [ours_facts(r) for r in parsed.records]
    # Lines we could not place count against us: they are reported, not silently dropped.
    facts.extend({"dst": f"<unparsed {line}>"} for line in parsed.unparsed)
    return facts


def load_insights() -> Callable[[str], list[Facts]] | None:
    try:
        context_module = importlib.import_module("insights.core.context")
        ip_module = importlib.import_module("insights.parsers.ip")
    except ImportError:
        return None

    def run(text: str) -> list[Facts]:
        # The minimal context RouteDevices needs: the content lines and a path.
        context = context_module.Context(
            content=text.splitlines(), path="insights_commands/ip_route_show_table_all"
        )
        parser = ip_module.RouteDevices(context)
        return [insights_facts(r) for routes in parser.data.values() for r in routes]

    return run


def load_jc() -> Callable[[str], list[Facts]] | None:
    try:
        jc_route = importlib.import_module("jc.parsers.ip_route")
    except ImportError:
        return None

    def run(text: str) -> list[Facts]:
        return [jc_facts(r) for r in jc_route.parse(text, quiet=True)]

    return run


def parse_only(name: str) -> Callable[[str], Any] | None:
    """Each parser's own entry point, doing its own decoding/splitting, nothing of ours."""
    if name == "needle":
        return lambda text: parse_ip_route_text(text.encode())
    try:
        if name == "insights-core":
            context_module = importlib.import_module("insights.core.context")
            ip_module = importlib.import_module("insights.parsers.ip")
            return lambda text: ip_module.RouteDevices(
                context_module.Context(
                    content=text.splitlines(), path="insights_commands/ip_route_show_table_all"
                )
            )
        jc_route = importlib.import_module("jc.parsers.ip_route")
    except ImportError:
        return None
    return lambda text: jc_route.parse(text, quiet=True)


def seconds(run: Callable[[str], Any], text: str, repeat: int, gc_on: bool) -> float:
    """Best of ``repeat`` runs. With ``gc_on=False`` the cyclic GC is off during each run,
    as timeit does: the parser's own work only."""
    best = float("inf")
    for _ in range(repeat):
        if not gc_on:
            gc.collect()
            gc.disable()
        try:
            start = time.perf_counter()
            result = run(text)
            best = min(best, time.perf_counter() - start)
        finally:
            gc.enable()
        del result
    return best


def seconds_in_fresh_interpreter(name: str, path: Path, repeat: int) -> float | None:
    """Times one parser in a new Python process that loads only that parser, GC on: what a
    run of the analyzer pays, without the other parsers' imports and objects (and without
    this script's 80,000 truth records) in its heap to make GC passes dearer."""
    child = subprocess.run(
        [sys.executable, __file__, "--time-only", name, "--input", str(path),
         "--repeat", str(repeat)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if child.returncode != 0:
        return None
    return float(child.stdout.strip())


def time_only(name: str, path: Path, repeat: int) -> None:
    run = parse_only(name)
    if run is None:
        raise SystemExit(1)
    print(f"{seconds(run, path.read_text(), repeat, gc_on=True):.6f}")


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    args.add_argument("--lines", type=int, default=100_000)
    args.add_argument("--seed", type=int, default=6)
    args.add_argument("--repeat", type=int, default=5)
    args.add_argument("--time-only", help=argparse.SUPPRESS)
    args.add_argument("--input", type=Path, help=argparse.SUPPRESS)
    options = args.parse_args()
    if options.time_only:
        time_only(options.time_only, options.input, options.repeat)
        return

    generated = generate(options.lines, options.seed)
    n_lines = generated.text.count("\n")
    print(
        f"input: {n_lines} lines, {len(generated.truth)} routes, "
        f"{len(generated.text) / 1e6:.1f} MB (seed {options.seed})"
    )
    scorers: list[tuple[str, Callable[[str], list[Facts]] | None]] = [
        ("needle", run_ours),
        ("insights-core", load_insights()),
        ("jc", load_jc()),
    ]
    workdir = Path(tempfile.mkdtemp(prefix="route-bench-"))
    path = workdir / "ip-route-show-table-all.txt"
    path.write_text(generated.text)
    header = (
        f"{'parser':<14} {'s gc on':>8} {'s gc off':>9} {'intact':>7} "
        f"{'mangled':>8} {'lost':>6} {'spurious':>9} {'lines lost/mangled':>19}"
    )
    print(header)
    print("-" * len(header))
    for name, scorer in scorers:
        run = parse_only(name)
        if scorer is None or run is None:
            print(f"{name:<14} not installed (pip install insights-core jc)")
            continue
        fresh = seconds_in_fresh_interpreter(name, path, options.repeat)
        off = seconds(run, generated.text, options.repeat, gc_on=False)
        result = score(generated.truth, generated.lines_of, scorer(generated.text))
        fresh_text = "n/a" if fresh is None else f"{fresh:.3f}"
        print(
            f"{name:<14} {fresh_text:>8} {off:>9.3f} {result.intact:>7} "
            f"{result.mangled:>8} {result.lost:>6} {result.spurious:>9} "
            f"{result.lines_affected:>19}"
        )
    shutil.rmtree(workdir, ignore_errors=True)
    print(
        "\nseconds: best of the runs of the parser's own entry point (its decode/split\n"
        "included). 'gc on': in a new interpreter that loads only that parser, as a run of\n"
        "the analyzer would; 'gc off': cyclic GC off during each run, as timeit measures.\n"
        "intact: a record equal to the truth on every fact; mangled: a record for that\n"
        "destination exists but some fact is wrong or missing; lost: no record at all;\n"
        "spurious: records matching no route (made from nexthop or cache lines);\n"
        "lines lost/mangled: input lines belonging to routes not intact."
    )


if __name__ == "__main__":
    main()
