"""Match predicates: what one iptables match says about one packet.

A rule's matches are compiled once into small predicates, each answering True, False or
None ("this match is not modelled, or reads a field the packet does not know"). A
predicate reads the packet's fields from a `Ctx` and the packet's mark as it is at that
rule (a traversal changes it as MARK rules match).
"""

from __future__ import annotations

from collections.abc import Callable

from needle.analyzer.netfilter.rules import Match, Option
from needle.analyzer.netfilter.verdict import Packet

FULL = 0xFFFFFFFF


class Ctx:
    """The packet's fields in the form the predicates read (addresses as ints)."""

    __slots__ = (
        "dport",
        "dst",
        "icmp_type",
        "iif",
        "length",
        "local",
        "oif",
        "proto",
        "sport",
        "src",
        "state",
    )

    def __init__(self, packet: Packet, local: frozenset[int]) -> None:
        self.src = ip_int(packet.src)
        self.dst = ip_int(packet.dst)
        self.proto = (packet.proto or "").lower()
        self.sport = packet.sport
        self.dport = packet.dport
        self.iif = packet.iif
        self.oif = packet.oif
        self.state = (packet.state or "").upper()
        self.length = packet.length
        self.icmp_type = packet.icmp_type if self.proto == "icmp" else None
        self.local = local


Pred = Callable[[Ctx, "int | None"], "bool | None"]


def ip_int(text: str | None) -> int | None:
    """An IPv4 address as an int, or None when `text` is not one."""
    if not text:
        return None
    parts = text.split(".")
    if len(parts) != 4:
        return None
    value = 0
    for part in parts:
        if not (part.isascii() and part.isdigit()) or len(part) > 3:
            return None
        octet = int(part)
        if octet > 255:
            return None
        value = value << 8 | octet
    return value


def cidr(text: str) -> tuple[int, int] | None:
    """(network, mask) of "a.b.c.d", "a.b.c.d/n" or "a.b.c.d/m.m.m.m"."""
    addr, _, bits = text.partition("/")
    value = ip_int(addr)
    if value is None:
        return None
    if not bits:
        mask = FULL
    elif bits.isascii() and bits.isdigit() and int(bits) <= 32:
        mask = (FULL << (32 - int(bits))) & FULL
    else:
        dotted = ip_int(bits)
        if dotted is None:
            return None
        mask = dotted
    return value & mask, mask


def _unknown(_c: Ctx, _m: int | None) -> bool | None:
    return None


def _addr_pred(field: str, value: str, negated: bool) -> Pred | None:
    nets = [cidr(part) for part in value.split(",")]
    if not nets or any(net is None for net in nets):
        return None
    pairs = tuple(net for net in nets if net is not None)
    if len(pairs) == 1:
        (net, mask), neg = pairs[0], negated
        if field == "src":

            def src1(c: Ctx, _m: int | None) -> bool | None:
                a = c.src
                return None if a is None else ((a & mask) == net) is not neg

            return src1

        def dst1(c: Ctx, _m: int | None) -> bool | None:
            a = c.dst
            return None if a is None else ((a & mask) == net) is not neg

        return dst1

    def many(c: Ctx, _m: int | None) -> bool | None:
        a = c.src if field == "src" else c.dst
        if a is None:
            return None
        return any((a & m) == n for n, m in pairs) is not negated

    return many


def _iface_pred(field: str, name: str, negated: bool) -> Pred:
    prefix = name[:-1] if name.endswith("+") else None

    def iface(c: Ctx, _m: int | None) -> bool | None:
        value = c.iif if field == "in" else c.oif
        if value is None:
            return None
        hit = value.startswith(prefix) if prefix is not None else value == name
        return hit is not negated

    return iface


_PROTO_NUMBERS = {"1": "icmp", "6": "tcp", "17": "udp", "0": "all"}


def _proto_pred(value: str, negated: bool) -> Pred | None:
    proto = _PROTO_NUMBERS.get(value, value.lower())
    if proto == "all":
        return None if not negated else (lambda _c, _m: False)

    def proto_is(c: Ctx, _m: int | None) -> bool | None:
        return (c.proto == proto) is not negated

    return proto_is


def _port_ranges(text: str) -> tuple[tuple[int, int], ...] | None:
    """Ports "80", "1000:2000", ":2000", "1000:" and comma lists of them."""
    out = []
    for part in text.split(","):
        low, sep, high = part.partition(":")
        try:
            lo = int(low) if low else 0
            hi = (int(high) if high else 65535) if sep else lo
        except ValueError:
            return None  # a service name: iptables-save prints numbers
        out.append((lo, hi))
    return tuple(out)


def _port_pred(
    field: str, ranges: tuple[tuple[int, int], ...], negated: bool, protos: frozenset[str]
) -> Pred:
    def port(c: Ctx, _m: int | None) -> bool | None:
        if c.proto not in protos:
            return False  # a port match never matches a packet without ports
        value = c.sport if field == "s" else c.dport
        if value is None:
            return None
        hit = False
        for lo, hi in ranges:
            if lo <= value <= hi:
                hit = True
                break
        return hit is not negated

    return port


def _both_ports_pred(ranges: tuple[tuple[int, int], ...], negated: bool) -> Pred:
    """multiport --ports: source or destination port."""

    def either(c: Ctx, _m: int | None) -> bool | None:
        if c.proto not in ("tcp", "udp"):
            return False
        known = [p for p in (c.sport, c.dport) if p is not None]
        hit = any(lo <= p <= hi for p in known for lo, hi in ranges)
        if not hit and len(known) < 2:
            return None
        return hit is not negated

    return either


_CT_STATES = frozenset({"INVALID", "NEW", "ESTABLISHED", "RELATED", "UNTRACKED", "SNAT", "DNAT"})


def _state_pred(values: str, negated: bool) -> Pred | None:
    states = frozenset(v.upper() for v in values.split(","))
    if not states <= _CT_STATES:
        return None
    nat_bits = bool(states & {"SNAT", "DNAT"})

    def state(c: Ctx, _m: int | None) -> bool | None:
        if c.state in states:
            return not negated
        if nat_bits:
            return None  # whether conntrack NATed this connection is not known here
        return negated

    return state


def _addrtype_pred(field: str, values: str, negated: bool) -> Pred | None:
    types = [t.upper() for t in values.split(",")]
    if not set(types) <= {"LOCAL", "MULTICAST", "BROADCAST"}:
        return None

    def addrtype(c: Ctx, _m: int | None) -> bool | None:
        a = c.src if field == "src" else c.dst
        if a is None:
            return None
        answer: bool | None = False
        for kind in types:
            if kind == "LOCAL":
                hit: bool | None = a in c.local or a >> 24 == 127
            elif kind == "MULTICAST":
                hit = a >> 28 == 0xE
            else:
                hit = True if a == FULL else None  # a subnet's broadcast: not known here
            if hit:
                answer = True
                break
            if hit is None:
                answer = None
        return None if answer is None else answer is not negated

    return addrtype


def u32(text: str) -> int | None:
    """A 32-bit value as iptables-save prints it (``0x4000``, ``16384``), or None."""
    try:
        return int(text, 0) & FULL
    except ValueError:
        return None


def value_mask(text: str) -> tuple[int, int] | None:
    """(value, mask) of "value" or "value/mask" (a mark), or None."""
    value, _, mask = text.partition("/")
    v = u32(value)
    m = u32(mask) if mask else FULL
    return None if v is None or m is None else (v, m)


def _mark_pred(text: str, negated: bool) -> Pred | None:
    vm = value_mask(text)
    if vm is None:
        return None
    value, mask = vm

    def mark(_c: Ctx, m: int | None) -> bool | None:
        if m is None:
            return None
        return ((m & mask) == value) is not negated

    return mark


_ICMP_TYPES = {
    "any": None,
    "echo-reply": (0, None), "pong": (0, None),
    "destination-unreachable": (3, None), "network-unreachable": (3, 0),
    "host-unreachable": (3, 1), "protocol-unreachable": (3, 2), "port-unreachable": (3, 3),
    "fragmentation-needed": (3, 4), "source-quench": (4, None), "redirect": (5, None),
    "echo-request": (8, None), "ping": (8, None),
    "router-advertisement": (9, None), "router-solicitation": (10, None),
    "time-exceeded": (11, None), "ttl-exceeded": (11, None), "parameter-problem": (12, None),
    "timestamp-request": (13, None), "timestamp-reply": (14, None),
    "address-mask-request": (17, None), "address-mask-reply": (18, None),
}  # fmt: skip


def _icmp_pred(text: str, negated: bool) -> Pred | None:
    spec: tuple[int, int | None] | None
    if text in _ICMP_TYPES:
        known = _ICMP_TYPES[text]
        if known is None:
            return lambda c, _m: False if c.proto != "icmp" else not negated
        spec = known
    else:
        kind, _, code = text.partition("/")
        if not kind.isdigit() or (code and not code.isdigit()):
            return None
        spec = (int(kind), int(code) if code else None)
    want_type, want_code = spec

    def icmp(c: Ctx, _m: int | None) -> bool | None:
        if c.proto != "icmp":
            return False
        if c.icmp_type is None:
            return None
        if c.icmp_type != want_type:
            return negated
        if want_code is not None and not (want_type in (0, 8) and want_code == 0):
            return None  # the packet's ICMP code is not known (echo's is always 0)
        return not negated

    return icmp


def _range_pred(field: str, text: str, negated: bool) -> Pred | None:
    low, _, high = text.partition("-")
    lo, hi = ip_int(low), ip_int(high or low)
    if lo is None or hi is None:
        return None

    def in_range(c: Ctx, _m: int | None) -> bool | None:
        a = c.src if field == "src" else c.dst
        return None if a is None else (lo <= a <= hi) is not negated

    return in_range


def _length_pred(text: str, negated: bool) -> Pred | None:
    ranges = _port_ranges(text)
    if ranges is None:
        return None

    def length(c: Ctx, _m: int | None) -> bool | None:
        if c.length is None:
            return None
        return any(lo <= c.length <= hi for lo, hi in ranges) is not negated

    return length


def _syn_pred(negated: bool) -> Pred:
    def syn(c: Ctx, _m: int | None) -> bool | None:
        if c.proto != "tcp":
            return False
        # The first packet of a TCP connection (NEW) is its SYN; a later one's flags are
        # not known here.
        return (not negated) if c.state == "NEW" else None

    return syn


def _option_pred(module: str, option: Option) -> Pred | None:
    """The predicate of one module option, or None when needle does not model it."""
    name, neg = option.name, option.negated
    arg = option.args[0] if option.args else ""
    if module in ("tcp", "udp"):
        if name in ("sport", "source-port", "dport", "destination-port"):
            ranges = _port_ranges(arg)
            field = "s" if name in ("sport", "source-port") else "d"
            return None if ranges is None else _port_pred(field, ranges, neg, frozenset({module}))
        if name == "syn" and module == "tcp":
            return _syn_pred(neg)
        return None
    if module == "multiport":
        ranges = _port_ranges(arg)
        if ranges is None:
            return None
        if name in ("sports", "source-ports"):
            return _port_pred("s", ranges, neg, frozenset({"tcp", "udp"}))
        if name in ("dports", "destination-ports"):
            return _port_pred("d", ranges, neg, frozenset({"tcp", "udp"}))
        if name == "ports":
            return _both_ports_pred(ranges, neg)
        return None
    if module in ("conntrack", "state") and name in ("ctstate", "state"):
        return _state_pred(arg, neg)
    if module == "addrtype" and name in ("src-type", "dst-type"):
        return _addrtype_pred("src" if name == "src-type" else "dst", arg, neg)
    if module == "mark" and name == "mark":
        return _mark_pred(arg, neg)
    if module == "icmp" and name == "icmp-type":
        return _icmp_pred(arg, neg)
    if module == "iprange" and name in ("src-range", "dst-range"):
        return _range_pred("src" if name == "src-range" else "dst", arg, neg)
    if module == "length" and name == "length":
        return _length_pred(arg, neg)
    return None


# Modules that never change whether a rule matches.
_NO_CONDITION = frozenset({"comment"})


def compile_match(match: Match, preds: list[Pred], whys: list[str]) -> tuple[float | None, bool]:
    """Append `match`'s predicates; return (random probability, is -m limit)."""
    kind = match.kind
    basic: Pred | None
    if kind in ("src", "dst"):
        basic = _addr_pred(kind, match.value, match.negated)
    elif kind in ("in", "out"):
        basic = _iface_pred(kind, match.value, match.negated)
    elif kind == "proto":
        basic = _proto_pred(match.value, match.negated)
        if basic is None and not match.negated:
            return None, False  # -p all
    else:
        basic = None
    if kind in ("src", "dst", "in", "out", "proto"):
        preds.append(basic or _unknown)
        whys.append(match.text if basic else f"{match.text} (not understood)")
        return None, False
    if kind in _NO_CONDITION:
        return None, False
    if kind == "limit":
        return None, True
    if kind == "statistic":
        opts = {o.name: o for o in match.options}
        mode = opts.get("mode")
        prob = opts.get("probability")
        if mode and mode.args == ("random",) and prob and prob.args and not prob.negated:
            try:
                p = float(prob.args[0])
            except ValueError:
                p = -1.0
            if 0.0 <= p <= 1.0:
                return p, False
        preds.append(_unknown)
        whys.append(f"{match.text} (not modelled)")
        return None, False
    if kind == "?":
        preds.append(_unknown)
        whys.append(f"{match.text} (not iptables-save syntax)")
        return None, False
    if kind in ("tcp", "udp", "icmp"):
        # -m tcp itself requires the protocol (iptables insists on -p tcp with it)
        proto = kind
        preds.append(lambda c, _m: c.proto == proto)
        whys.append(match.text)
    for option in match.options:
        pred = _option_pred(kind, option)
        preds.append(pred or _unknown)
        whys.append(match.text if pred else f"{match.text} (not modelled)")
    if not match.options and kind not in ("tcp", "udp", "icmp"):
        preds.append(_unknown)
        whys.append(f"{match.text} (not modelled)")
    return None, False
