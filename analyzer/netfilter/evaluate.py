"""Follow one packet through one built-in chain of an iptables ruleset, as Linux does.

Rules are compiled once (`Ruleset.from_save`) into tuples of small predicates, each
answering True, False or None ("this match is not modelled, or reads a field the packet
does not know"). A traversal then walks chains with an explicit jump stack (no Python
recursion, so a hostile ruleset cannot raise RecursionError) and forks where the answer
depends on something it cannot know:

- a rule whose matches are unknown (and none is known False) forks into "matched" and
  "not matched"; when both branches end the same way the rule did not matter, otherwise
  the verdict is ``unknown`` naming that rule. So an unknown match on a LOG rule, or on a
  rule whose branches both accept, never makes a trace unknown;
- ``-m statistic --mode random`` (kube-proxy's endpoint choice) forks into "chosen" and
  "not chosen", and every branch becomes one of the verdict's ``alternatives``.

Forks, steps and jump depth are bounded; past a bound the answer is ``unknown`` and says
which bound, never an exception.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache

from needle.analyzer.gcpause import paused_gc
from needle.analyzer.netfilter.rules import Match, Option, Rule
from needle.analyzer.netfilter.save import Section, parse_rule, sections
from needle.analyzer.netfilter.verdict import Packet, Verdict

MAX_FORKS = 4096  # branches per traversal: kube-proxy forks once per endpoint of a Service
MAX_STEPS = 1_000_000  # rules looked at per traversal, over all branches
MAX_DEPTH = 128  # nested jumps

_FULL = 0xFFFFFFFF
_LEGACY_WARNING = b"iptables-legacy tables present"
_INCOMPATIBLE = re.compile(rb"# Table `(\S+?)' is incompatible, use 'nft' tool")


class _Ctx:
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


Pred = Callable[[_Ctx, "int | None"], "bool | None"]

# What a compiled rule does when it matches.
_CONTINUE, _ACCEPT, _DROP, _RETURN, _JUMP, _GOTO, _NAT, _MARK, _MARK_LOST, _UNKNOWN = range(10)
_INERT_TARGETS = frozenset(
    {
        "LOG", "NFLOG", "ULOG", "TRACE", "AUDIT", "TCPMSS", "TOS", "DSCP", "TTL", "HL",
        "CLASSIFY", "CHECKSUM", "SECMARK", "CONNSECMARK", "NOTRACK", "CT", "IDLETIMER",
        "LED", "RATEEST", "TEE", "ECN",
    }
)  # fmt: skip
_NAT_TARGETS = frozenset({"DNAT", "SNAT", "MASQUERADE", "REDIRECT", "NETMAP"})


@dataclass(slots=True)
class _Compiled:
    rule: Rule
    preds: tuple[Pred, ...]
    whys: tuple[str, ...]  # per predicate: the match's text, for an unknown answer
    random: float | None  # -m statistic --mode random --probability
    limit: bool  # -m limit: treated as matching (under its rate), said in the reason
    action: int
    arg: object = None


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


def _cidr(text: str) -> tuple[int, int] | None:
    """(network, mask) of "a.b.c.d", "a.b.c.d/n" or "a.b.c.d/m.m.m.m"."""
    addr, _, bits = text.partition("/")
    value = ip_int(addr)
    if value is None:
        return None
    if not bits:
        mask = _FULL
    elif bits.isascii() and bits.isdigit() and int(bits) <= 32:
        mask = (_FULL << (32 - int(bits))) & _FULL
    else:
        dotted = ip_int(bits)
        if dotted is None:
            return None
        mask = dotted
    return value & mask, mask


@lru_cache(maxsize=64)
def _local_ints(addresses: frozenset[str]) -> frozenset[int]:
    return frozenset(v for v in map(ip_int, addresses) if v is not None)


def _unknown(_c: _Ctx, _m: int | None) -> bool | None:
    return None


def _addr_pred(field: str, value: str, negated: bool) -> Pred | None:
    nets = [_cidr(part) for part in value.split(",")]
    if not nets or any(net is None for net in nets):
        return None
    pairs = tuple(net for net in nets if net is not None)
    if len(pairs) == 1:
        (net, mask), neg = pairs[0], negated
        if field == "src":

            def src1(c: _Ctx, _m: int | None) -> bool | None:
                a = c.src
                return None if a is None else ((a & mask) == net) is not neg

            return src1

        def dst1(c: _Ctx, _m: int | None) -> bool | None:
            a = c.dst
            return None if a is None else ((a & mask) == net) is not neg

        return dst1

    def many(c: _Ctx, _m: int | None) -> bool | None:
        a = c.src if field == "src" else c.dst
        if a is None:
            return None
        return any((a & m) == n for n, m in pairs) is not negated

    return many


def _iface_pred(field: str, name: str, negated: bool) -> Pred:
    prefix = name[:-1] if name.endswith("+") else None

    def iface(c: _Ctx, _m: int | None) -> bool | None:
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

    def proto_is(c: _Ctx, _m: int | None) -> bool | None:
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
    def port(c: _Ctx, _m: int | None) -> bool | None:
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

    def either(c: _Ctx, _m: int | None) -> bool | None:
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

    def state(c: _Ctx, _m: int | None) -> bool | None:
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

    def addrtype(c: _Ctx, _m: int | None) -> bool | None:
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
                hit = True if a == _FULL else None  # a subnet's broadcast: not known here
            if hit:
                answer = True
                break
            if hit is None:
                answer = None
        return None if answer is None else answer is not negated

    return addrtype


def _int(text: str) -> int | None:
    try:
        return int(text, 0) & _FULL
    except ValueError:
        return None


def _value_mask(text: str) -> tuple[int, int] | None:
    value, _, mask = text.partition("/")
    v = _int(value)
    m = _int(mask) if mask else _FULL
    return None if v is None or m is None else (v, m)


def _mark_pred(text: str, negated: bool) -> Pred | None:
    vm = _value_mask(text)
    if vm is None:
        return None
    value, mask = vm

    def mark(_c: _Ctx, m: int | None) -> bool | None:
        if m is None:
            return None
        return ((m & mask) == value) is not negated

    return mark


_ICMP_TYPES = {
    "any": None,
    "echo-reply": (0, None),
    "pong": (0, None),
    "destination-unreachable": (3, None),
    "network-unreachable": (3, 0),
    "host-unreachable": (3, 1),
    "protocol-unreachable": (3, 2),
    "port-unreachable": (3, 3),
    "fragmentation-needed": (3, 4),
    "source-quench": (4, None),
    "redirect": (5, None),
    "echo-request": (8, None),
    "ping": (8, None),
    "router-advertisement": (9, None),
    "router-solicitation": (10, None),
    "time-exceeded": (11, None),
    "ttl-exceeded": (11, None),
    "parameter-problem": (12, None),
    "timestamp-request": (13, None),
    "timestamp-reply": (14, None),
    "address-mask-request": (17, None),
    "address-mask-reply": (18, None),
}


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

    def icmp(c: _Ctx, _m: int | None) -> bool | None:
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

    def in_range(c: _Ctx, _m: int | None) -> bool | None:
        a = c.src if field == "src" else c.dst
        return None if a is None else (lo <= a <= hi) is not negated

    return in_range


def _length_pred(text: str, negated: bool) -> Pred | None:
    ranges = _port_ranges(text)
    if ranges is None:
        return None

    def length(c: _Ctx, _m: int | None) -> bool | None:
        if c.length is None:
            return None
        return any(lo <= c.length <= hi for lo, hi in ranges) is not negated

    return length


def _syn_pred(negated: bool) -> Pred:
    def syn(c: _Ctx, _m: int | None) -> bool | None:
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


def _compile_match(match: Match, preds: list[Pred], whys: list[str]) -> tuple[float | None, bool]:
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


def _nat_text(target: str, options: tuple[Option, ...]) -> str:
    opts = {o.name: " ".join(o.args) for o in options}
    if target == "DNAT":
        dest = " ".join(" ".join(o.args) for o in options if o.name == "to-destination")
        return f"DNAT {dest}".rstrip()
    if target == "SNAT":
        return (
            f"SNAT {' '.join(' '.join(o.args) for o in options if o.name == 'to-source')}".rstrip()
        )
    if target == "REDIRECT":
        return f"REDIRECT {opts['to-ports']}" if "to-ports" in opts else "REDIRECT"
    if target == "NETMAP":
        return f"NETMAP {opts.get('to', '')}".rstrip()
    return f"MASQUERADE {opts['to-ports']}" if "to-ports" in opts else "MASQUERADE"


def _mark_action(options: tuple[Option, ...]) -> tuple[str, int, int] | None:
    for option in options:
        arg = option.args[0] if option.args else ""
        if option.name in ("set-mark", "set-xmark"):
            vm = _value_mask(arg)
            if vm is None:
                return None
            return ("set" if option.name == "set-mark" else "xset", vm[0], vm[1])
        if option.name in ("or-mark", "and-mark", "xor-mark"):
            v = _int(arg)
            return None if v is None else (option.name[:-5], v, 0)
    return None


def _apply_mark(op: tuple[str, int, int], mark: int | None) -> int | None:
    kind, value, mask = op
    if kind in ("set", "xset"):
        if mark is None:
            return value if mask == _FULL else None
        kept = mark & ~mask & _FULL
        return (kept | value) if kind == "set" else (kept ^ value)
    if mark is None:
        return 0 if kind == "and" and value == 0 else None
    if kind == "or":
        return mark | value
    if kind == "and":
        return mark & value
    return mark ^ value


def _compile(
    table: str, rule: Rule, chain_names: frozenset[str], builtin: frozenset[str]
) -> _Compiled:
    preds: list[Pred] = []
    whys: list[str] = []
    random: float | None = None
    limit = False
    for match in rule.matches:
        p, lim = _compile_match(match, preds, whys)
        random = p if p is not None else random
        limit = limit or lim
    target = rule.target
    action, arg = _CONTINUE, None
    if target is None or target in _INERT_TARGETS:
        action = _CONTINUE
    elif rule.goto or (target in chain_names and target not in builtin):
        if target in chain_names and target not in builtin:
            action, arg = (_GOTO if rule.goto else _JUMP), target
        else:
            action, arg = (
                _UNKNOWN,
                f"rule {rule.number} of {rule.chain} goes to {target}, "
                f"not a chain of table {table}",
            )
    elif target == "ACCEPT":
        action = _ACCEPT
    elif target in ("DROP", "REJECT"):
        action = _DROP
    elif target == "RETURN":
        action = _RETURN
    elif target in _NAT_TARGETS and table == "nat":
        action, arg = _NAT, _nat_text(target, rule.target_options)
    elif target == "MARK":
        op = _mark_action(rule.target_options)
        action, arg = (_MARK, op) if op else (_MARK_LOST, None)
    elif target == "CONNMARK":
        restores = any(o.name == "restore-mark" for o in rule.target_options)
        action = _MARK_LOST if restores else _CONTINUE
    else:
        action, arg = (
            _UNKNOWN,
            f"target {target} of rule {rule.number} of {rule.chain} is not modelled",
        )
    return _Compiled(rule, tuple(preds), tuple(whys), random, limit, action, arg)


@dataclass(frozen=True, slots=True)
class _Fork:
    rule: str
    chain: str
    why: str
    random: bool  # True: a random choice (an alternative); False: an unknown match


@dataclass(frozen=True, slots=True)
class _Outcome:
    verdict: str
    rule: str | None
    reason: str
    decided_in: str | None
    path: tuple[str, ...]
    nat: tuple[str, ...]
    mark: int | None


@dataclass(slots=True)
class _Node:
    """A fork of the traversal: what followed with the rule matching (taken) or not."""

    fork: _Fork
    taken: _Node | _Outcome | None = None
    other: _Node | _Outcome | None = None


_Slot = tuple[_Node, bool] | None  # where a branch's result goes: (fork, taken) or the root


def _attach(root: list[_Node | _Outcome], slot: _Slot, child: _Node | _Outcome) -> None:
    if slot is None:
        root.append(child)
    elif slot[1]:
        slot[0].taken = child
    else:
        slot[0].other = child


class _Frame:
    """One level of the jump stack: a chain, the next rule, chains left by -g here."""

    __slots__ = ("chain", "gone", "idx")

    def __init__(self, chain: str, idx: int = 0, gone: tuple[str, ...] = ()) -> None:
        self.chain = chain
        self.idx = idx
        self.gone = gone


class _State:
    __slots__ = ("frames", "mark", "notes", "path", "slot")

    def __init__(
        self,
        frames: list[_Frame],
        mark: int | None,
        path: tuple[str, ...],
        slot: _Slot,
        notes: tuple[str, ...],
    ) -> None:
        self.frames = frames
        self.mark = mark
        self.path = path
        self.slot = slot
        self.notes = notes

    def copy(self) -> _State:
        frames = [_Frame(f.chain, f.idx, f.gone) for f in self.frames]
        return _State(frames, self.mark, self.path, self.slot, self.notes)


class _Lazy:
    """A rule not compiled yet, with its plain ``-d`` destination when it has one.

    kube-proxy's KUBE-SERVICES holds one rule per Service port, each with ``-d
    CLUSTER-IP``; a packet is compared with every one. Checking that destination on the
    raw text and compiling only rules whose destination matches makes the first traversal
    of a 100,000-rule dump cost a string search per rule, not a parse."""

    __slots__ = ("mask", "net", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.net, self.mask = _plain_dst(text) if _PREFILTER else (0, None)


_PREFILTER = True  # tests turn it off to check it never changes an answer


def _plain_dst(text: str) -> tuple[int, int | None]:
    """(network, mask) of the rule's un-negated ``-d``, or (0, None) when that cannot be
    read safely from the text (quotes with escapes, a negation, a list, another spelling)."""
    if "\\" in text:
        return 0, None
    if '"' in text:
        if text.count('"') % 2:
            return 0, None
        text = " ".join(text.split('"')[::2])  # the words outside quoted strings
    at = text.find(" -d ")
    if at < 0 or text[:at].endswith(" !"):
        return 0, None
    rest = text[at + 4 :].split(None, 1)
    found = _cidr(rest[0]) if rest else None
    return (0, None) if found is None else found


class _Table:
    """One table of a Ruleset: its chains' rules as text, compiled when first needed."""

    __slots__ = ("builtin", "committed", "entries", "lines", "name", "names", "policies")

    def __init__(self, section: Section) -> None:
        self.name = section.name
        self.policies = section.policies
        self.lines = section.lines
        self.committed = section.committed
        self.names = frozenset(section.policies)
        self.builtin = frozenset(c for c, p in section.policies.items() if p is not None)
        self.entries: dict[str, list[_Compiled | _Lazy]] = {}

    def rules(self, chain: str) -> list[_Compiled | _Lazy]:
        entries = self.entries.get(chain)
        if entries is None:
            entries = [_Lazy(text) for text in self.lines[chain]]
            self.entries[chain] = entries
        return entries

    def compile(self, chain: str, idx: int) -> _Compiled:
        entries = self.rules(chain)
        entry = entries[idx]
        if isinstance(entry, _Compiled):
            return entry
        rule = parse_rule(entry.text, idx + 1) or Rule(chain, idx + 1, entry.text, (Match("?"),))
        compiled = _compile(self.name, rule, self.names, self.builtin)
        entries[idx] = compiled
        return compiled


class Ruleset:
    """A node's iptables ruleset, ready for traversals.

    Splitting the dump into tables and chains happens here; a chain's rules are parsed
    and compiled the first time a traversal enters it, so a 100,000-rule kube-proxy dump
    costs only the chains a packet actually crosses."""

    def __init__(
        self, found: list[Section], unparsed: tuple[str, ...] = (), truncated: bool = False
    ) -> None:
        self._tables: dict[str, _Table] = {}
        self.duplicated: set[str] = set()
        self.legacy_hidden = False
        self.incompatible: set[str] = set()
        self.unparsed = unparsed
        self.truncated = truncated
        for section in found:
            if section.name in self._tables:
                # Two sections for one table: iptables-legacy-save and iptables-nft-save
                # concatenated. Both sets of hooks run in the kernel; one list cannot say.
                self.duplicated.add(section.name)
                continue
            self._tables[section.name] = _Table(section)

    @classmethod
    def from_save(cls, data: bytes) -> Ruleset:
        found, unparsed, truncated = sections(data)
        ruleset = cls(found, tuple(unparsed), truncated)
        # iptables-nft-save's own warning: legacy (x_tables) rules are loaded as well; the
        # kernel runs both, and this dump shows only the nft ones.
        ruleset.legacy_hidden = _LEGACY_WARNING in data
        # iptables-nft-save prints this instead of a table holding nft rules it cannot
        # express (added with `nft` into iptables' own table): its rules are not shown.
        ruleset.incompatible = {
            m.group(1).decode(errors="replace") for m in _INCOMPATIBLE.finditer(data)
        }
        return ruleset

    @property
    def table_names(self) -> tuple[str, ...]:
        return tuple(self._tables)

    def policies(self, table: str) -> dict[str, str | None]:
        """Each chain of a table and its policy (None for a user chain)."""
        section = self._tables.get(table)
        return dict(section.policies) if section is not None else {}

    def lines(self, table: str, chain: str) -> tuple[str, ...]:
        """The `-A` lines of one chain as the dump holds them (none when it has no such
        chain): for readers that look for rules by shape, such as kube-proxy's Services."""
        section = self._tables.get(table)
        return tuple(section.lines.get(chain, ())) if section is not None else ()

    def traverse(
        self,
        table: str,
        chain: str,
        packet: Packet,
        *,
        local_addresses: frozenset[str] = frozenset(),
    ) -> Verdict:
        """What `chain` (a built-in chain) of `table` does with `packet`."""
        verdict = self._traverse(table, chain, packet, local_addresses)
        if self.legacy_hidden and verdict.verdict != "unknown":
            return replace(
                verdict,
                verdict="unknown",
                reason="iptables-legacy tables are loaded too and this dump does not show "
                f"them; its own rules say {verdict.verdict}: {verdict.reason}",
            )
        return verdict

    def _traverse(
        self, table: str, chain: str, packet: Packet, local_addresses: frozenset[str]
    ) -> Verdict:
        base = Verdict("unknown", table, chain, None, "", (chain,), mark=packet.mark)
        if table in self.incompatible:
            return replace(
                base,
                reason=f"iptables-save could not show the {table} table (it holds nft rules "
                "iptables cannot express): see `nft list ruleset`",
            )
        if table in self.duplicated:
            return replace(
                base,
                reason=f"the dump holds two *{table} sections (legacy and nft?): "
                "both run, which one decides is not known",
            )
        if table not in self._tables:
            return replace(
                base,
                verdict="accept",
                reason=f"the ruleset has no {table} table: nothing to do",
                decided_in=chain,
            )
        if not self._tables[table].committed:
            return replace(
                base,
                reason=f"the {table} table's dump ends without COMMIT (cut off): "
                "rules may be missing",
            )
        policy = self._tables[table].policies.get(chain, "")
        if policy is None or policy == "":
            what = "a user chain" if policy is None else "not a chain of this table"
            return replace(base, reason=f"{chain} is {what}; traversals start at a built-in chain")
        if table == "nat" and (packet.state or "").upper() != "NEW":
            return replace(
                base,
                verdict="accept",
                reason="nat rules see only a connection's first packet; conntrack applies "
                f"its translation to this {packet.state} one",
                decided_in=chain,
            )
        ctx = _Ctx(packet, _local_ints(frozenset(local_addresses)))
        with paused_gc():  # a first traversal may compile thousands of rules
            root = self._run(self._tables[table], chain, policy, ctx, packet.mark)
        alternatives = _decide(root)
        verdicts = [_verdict(o, table, chain) for o in alternatives]
        if not verdicts:
            return replace(base, reason="the traversal came to no outcome")
        if len(verdicts) == 1:
            return verdicts[0]
        return _combine(verdicts, root, table, chain)

    def _run(
        self,
        chains: _Table,
        start: str,
        policy: str,
        ctx: _Ctx,
        mark: int | None,
    ) -> _Node | _Outcome:
        """The tree of forks the traversal went through, outcomes at its leaves."""
        stack = [_State([_Frame(start)], mark, (start,), None, ())]
        root: list[_Node | _Outcome] = []
        budget = [MAX_STEPS, MAX_FORKS]
        while stack:
            state = stack.pop()
            outcome = self._walk(state, chains, start, policy, ctx, stack, budget, root)
            _attach(root, state.slot, outcome)
        return root[0]

    def _walk(
        self,
        st: _State,
        chains: _Table,
        start: str,
        policy: str,
        ctx: _Ctx,
        stack: list[_State],
        budget: list[int],
        root: list[_Node | _Outcome],
    ) -> _Outcome:
        def end(
            verdict: str,
            rule: str | None,
            reason: str,
            where: str | None,
            nat: tuple[str, ...] = (),
        ) -> _Outcome:
            if st.notes and verdict != "unknown":
                reason = f"{reason} ({'; '.join(st.notes)})"
            return _Outcome(verdict, rule, reason, where, st.path, nat, st.mark)

        def by_policy(why: str) -> _Outcome:
            verdict = {"ACCEPT": "accept", "DROP": "drop"}.get(policy, "unknown")
            return end(
                verdict, f":{start} {policy}", f"{why}: policy {policy} of {start} decides", start
            )

        while True:
            frame = st.frames[-1]
            name = frame.chain
            rules = chains.rules(name)
            idx = frame.idx
            if idx >= len(rules):
                if len(st.frames) == 1:
                    return by_policy(f"no rule of {name} decided")
                st.frames.pop()
                continue
            frame.idx = idx + 1
            budget[0] -= 1
            if budget[0] < 0:
                return end(
                    "unknown",
                    None,
                    f"more than {MAX_STEPS} rule visits: the ruleset is too large "
                    "or forks too often to follow",
                    name,
                )
            c = rules[idx]
            if c.__class__ is _Lazy:
                dst = ctx.dst
                if c.mask is not None and dst is not None and (dst & c.mask) != c.net:
                    continue  # its -d does not match: no need to compile it
                c = chains.compile(name, idx)
            unknown_at = -1
            matched = True
            mark = st.mark
            for i, pred in enumerate(c.preds):
                answer = pred(ctx, mark)
                if answer is False:
                    matched = False
                    break
                if answer is None and unknown_at < 0:
                    unknown_at = i
            if not matched:
                continue
            action = c.action
            if action == _CONTINUE:
                continue
            if action in (_MARK, _MARK_LOST):
                new = _apply_mark(c.arg, st.mark) if action == _MARK else None  # type: ignore[arg-type]
                # An unknown match on a MARK rule: the mark is one of two values, so it
                # becomes unknown; whatever later reads it says so.
                certain = unknown_at < 0 and (c.random is None or c.random >= 1.0)
                st.mark = new if certain or new == st.mark else None
                continue
            fork_random = c.random is not None and c.random < 1.0 and unknown_at < 0
            if c.random is not None and c.random <= 0.0:
                continue
            if unknown_at >= 0 or fork_random:
                budget[1] -= 1
                if budget[1] < 0:
                    return end(
                        "unknown",
                        c.rule.text,
                        f"more than {MAX_FORKS} branches "
                        "(random choices or unmodelled matches) to follow",
                        name,
                    )
                why = "-m statistic --mode random" if fork_random else c.whys[unknown_at]
                node = _Node(_Fork(c.rule.text, c.rule.chain, why, fork_random))
                _attach(root, st.slot, node)
                other = st.copy()
                other.slot = (node, False)
                stack.append(other)
                st.slot = (node, True)
            if c.limit:
                st.notes = (
                    *st.notes,
                    f"-m limit of rule {c.rule.number} of {c.rule.chain} taken as under its rate",
                )
            what = f"rule {c.rule.number} of {c.rule.chain}"
            if action == _ACCEPT:
                return end("accept", c.rule.text, f"ACCEPT {what} matched", c.rule.chain)
            if action == _DROP:
                word = c.rule.target or "DROP"
                extra = " (a drop for the trace)" if word == "REJECT" else ""
                return end("drop", c.rule.text, f"{word} {what} matched{extra}", c.rule.chain)
            if action == _NAT:
                return end(
                    "accept",
                    c.rule.text,
                    f"{c.rule.target} {what} matched: {c.arg}",
                    c.rule.chain,
                    (str(c.arg),),
                )
            if action == _UNKNOWN:
                return end("unknown", c.rule.text, str(c.arg), c.rule.chain)
            if action == _RETURN:
                if len(st.frames) == 1:
                    return by_policy(f"RETURN {what} ends the built-in chain")
                st.frames.pop()
                continue
            target = str(c.arg)
            if any(target == f.chain or target in f.gone for f in st.frames):
                loop = _loop_text(st.frames, target)
                return end(
                    "unknown",
                    c.rule.text,
                    f"jump loop: {loop} (iptables would refuse this ruleset)",
                    c.rule.chain,
                )
            st.path = (*st.path, target)
            if action == _JUMP:
                if len(st.frames) >= MAX_DEPTH:
                    return end(
                        "unknown",
                        c.rule.text,
                        f"chains nest deeper than {MAX_DEPTH} jumps",
                        c.rule.chain,
                    )
                st.frames.append(_Frame(target))
            else:  # -g: this frame continues in the target; RETURN goes to the caller's caller
                frame.gone = (*frame.gone, frame.chain)
                frame.chain = target
                frame.idx = 0


def _loop_text(frames: list[_Frame], target: str) -> str:
    chain: list[str] = []
    for f in frames:
        chain.extend(f.gone)
        chain.append(f.chain)
    start = chain.index(target) if target in chain else 0
    return " -> ".join([*chain[start:], target])


def _same(a: _Outcome, b: _Outcome) -> bool:
    return a.verdict == b.verdict and a.nat == b.nat


def _decide(root: _Node | _Outcome) -> list[_Outcome]:
    """The alternatives the fork tree comes to, resolving unknown-match forks.

    A random fork gives the chosen branch's alternatives, then the others'; an
    unknown-match fork gives its branches' alternatives when both sides agree (the match
    did not matter), else one unknown naming it. Iterative: a hostile ruleset can fork
    thousands of times in a row."""
    results: list[list[_Outcome]] = []
    work: list[tuple[bool, _Node | _Outcome | None]] = [(False, root)]
    while work:
        joined, item = work.pop()
        if item is None:  # a branch that produced nothing (cannot happen; be safe)
            results.append([])
        elif isinstance(item, _Outcome):
            results.append([item])
        elif not joined:
            work += [(True, item), (False, item.other), (False, item.taken)]
        else:
            right = results.pop()
            left = results.pop()
            results.append(_join(item.fork, left, right))
    return results[0] if results and results[0] else []


def _join(fork: _Fork, left: list[_Outcome], right: list[_Outcome]) -> list[_Outcome]:
    if fork.random:
        left.extend(right)
        return left
    if len(left) == len(right) and all(_same(a, b) for a, b in zip(left, right, strict=True)):
        merged = []
        for a, b in zip(left, right, strict=True):
            mark = a.mark if a.mark == b.mark else None
            reason = (
                f"{a.reason} (the same whether or not {fork.why} in {fork.chain} matches)"
                if a.verdict != "unknown"
                else a.reason
            )
            merged.append(replace(a, mark=mark, reason=reason))
        return merged
    first = (left or right)[0]
    reason = f"a rule of {fork.chain} matching on {fork.why} decides"
    return [_Outcome("unknown", fork.rule, reason, fork.chain, first.path, (), None)]


def _first_random(root: _Node | _Outcome) -> _Fork | None:
    work: list[_Node | _Outcome | None] = [root]
    while work:
        item = work.pop()
        if isinstance(item, _Node):
            if item.fork.random:
                return item.fork
            work += [item.other, item.taken]
    return None


def _verdict(o: _Outcome, table: str, chain: str) -> Verdict:
    return Verdict(
        o.verdict, table, chain, o.rule, o.reason, o.path, o.nat, (), o.mark, o.decided_in
    )


def _combine(verdicts: list[Verdict], root: _Node | _Outcome, table: str, chain: str) -> Verdict:
    kinds = {v.verdict for v in verdicts}
    verdict = kinds.pop() if len(kinds) == 1 else "unknown"
    nats = {v.nat for v in verdicts}
    marks = {v.mark for v in verdicts}
    fork = _first_random(root)
    rule = fork.rule if fork else None
    where = fork.chain if fork else None
    prefix: list[str] = []
    for names in zip(*(v.path for v in verdicts), strict=False):
        if len(set(names)) != 1:
            break
        prefix.append(names[0])
    if len({v.verdict for v in verdicts}) > 1:
        counts = {k: sum(v.verdict == k for v in verdicts) for k in ("accept", "drop", "unknown")}
        summary = "the alternatives differ: " + ", ".join(
            f"{n} {k}" for k, n in counts.items() if n
        )
    else:
        summary = f"each gives {verdict}"
    reason = (
        f"{len(verdicts)} alternatives, one chosen at random (-m statistic) in {where}: {summary}"
    )
    return Verdict(
        verdict,
        table,
        chain,
        rule,
        reason,
        tuple(prefix),
        nats.pop() if len(nats) == 1 else (),
        tuple(verdicts),
        marks.pop() if len(marks) == 1 else None,
        where,
    )
