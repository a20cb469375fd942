"""nftables rules (`nft list ruleset`, text) evaluated by the iptables evaluator.

Each IPv4 base chain (family `ip` or `inet`, type filter or nat) becomes one iptables
table whose built-in chain is its hook, with its table's regular chains as user chains;
each rule is translated to the iptables rule that means the same (addresses, interfaces,
protocol and ports, conntrack state, mark, fib's address type, ICMP type, comment, limit;
accept, drop, reject, return, jump, goto, masquerade, snat, dnat, redirect, mark set).
An expression with no iptables equivalent here (a named set, a map or verdict map,
numgen, `th`, a concatenation ...) becomes a match the evaluator cannot decide, so the
rule answers `unknown` with its own nft text wherever it can change the outcome.

At one hook every base chain runs, in priority order: a drop (or an unknown) in one of
them decides; an accept passes the packet to the next one; the first nat rewrite wins.
A `netdev` table's ingress chain sees every packet and is not evaluated: it makes every
hook `unknown`. `ip6`, `arp` and `bridge` tables do not see the routed IPv4 packets the
trace follows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from needle.analyzer.netfilter.evaluate import Ruleset
from needle.analyzer.netfilter.nft import nft_only
from needle.analyzer.netfilter.verdict import Packet, Verdict
from needle.analyzer.parsers.common import decode, looks_like_json

HOOKS = ("prerouting", "input", "forward", "output", "postrouting")
PRIORITIES = {"raw": -300, "mangle": -150, "dstnat": -100, "filter": 0, "security": 50}
PRIORITIES["srcnat"] = 100
_TABLE = re.compile(r"^table\s+(\S+)\s+(\S+)\s*\{$")
_CHAIN = re.compile(r"^chain\s+(\S+)\s*\{$")
_BLOCK = re.compile(r"^(set|map|flowtable|counter|quota|limit|ct|secmark|synproxy)\b.*\{$")
_BASE = re.compile(
    r"type\s+(\w+)\s+hook\s+(\w+)(?:\s+device\s+\S+)?\s+priority\s+([^;]+);"
    r"(?:\s*policy\s+(\w+)\s*;)?"
)
_VERDICTS = frozenset(
    {"accept", "drop", "reject", "return", "jump", "goto", "masquerade", "snat", "dnat"}
    | {"redirect", "continue", "queue", "vmap"}  # a verdict map decides as a verdict does
)


@dataclass(frozen=True)
class BaseChain:
    family: str
    table: str
    chain: str
    type: str  # filter | nat | route
    hook: str
    priority: int
    ruleset: Ruleset  # one table: `*filter` or `*nat`, its built-in chain the hook
    originals: dict[str, str] = field(default_factory=dict)  # translated line -> nft text

    @property
    def where(self) -> str:
        return f"nft table {self.family} {self.table} chain {self.chain}"


@dataclass
class NftRuleset:
    """A node's nftables base chains, ready for traversals like an iptables Ruleset."""

    chains: list[BaseChain] = field(default_factory=list)
    unevaluated: list[str] = field(default_factory=list)  # base chains no hook evaluates

    def __bool__(self) -> bool:
        return bool(self.chains or self.unevaluated)

    def traverse(
        self,
        table: str,
        chain: str,
        packet: Packet,
        *,
        local_addresses: frozenset[str] = frozenset(),
    ) -> Verdict:
        """What the base chains at the hook of `chain` do with `packet`: the filter
        table's hooks run the filter chains; nat's also run the filter chains of
        prerouting and postrouting, which the trace has no filter hook for."""
        hook = chain.lower()
        base = Verdict("accept", table, chain, None, "", (chain,), mark=packet.mark)
        if self.unevaluated:
            return replace(
                base,
                verdict="unknown",
                reason=f"{self.unevaluated[0]} sees the packet and is not evaluated",
            )
        wanted = {"filter": ("filter",), "nat": ("nat",)}.get(table, ())
        if table == "nat" and hook in ("prerouting", "postrouting"):
            wanted = ("filter", "route", "nat")
        chosen = sorted(
            (c for c in self.chains if c.hook == hook and c.type in wanted),
            key=lambda c: c.priority,
        )
        if not chosen:
            return replace(base, reason=f"no nftables base chain on the {hook} hook")
        mark, passed, rewrite = packet.mark, [], None
        for base_chain in chosen:
            if rewrite is not None and base_chain.type == "nat":
                continue  # the connection's nat mapping is made: later nat chains are skipped
            name = "nat" if base_chain.type == "nat" else "filter"
            verdict = base_chain.ruleset.traverse(
                name,
                hook.upper(),
                replace(packet, mark=mark),
                local_addresses=local_addresses,
            )
            verdict = replace(
                verdict,
                table=table,
                chain=chain,
                rule=base_chain.originals.get(verdict.rule or "", verdict.rule),
                reason=f"{base_chain.where}: {verdict.reason}",
            )
            if verdict.verdict != "accept" or verdict.alternatives:
                return verdict
            mark = verdict.mark
            passed.append(verdict)
            if verdict.nat:
                rewrite = verdict
        last = rewrite or passed[-1]
        return replace(last, mark=mark, reason="; ".join(v.reason for v in passed))


def _words(line: str, sets: dict[str, str] | None = None) -> list[str]:
    """A rule's words: quoted strings and `{ ... }` sets are one word each; a `#`
    outside quotes starts a comment (`# handle 5`); `@name` is the named set's elements
    when `sets` knows them."""
    words: list[str] = []
    i, n = 0, len(line)
    while i < n:
        ch = line[i]
        if ch.isspace():
            i += 1
        elif ch == "#":
            break
        elif ch == '"':
            end = line.find('"', i + 1)
            end = n if end < 0 else end
            words.append(line[i : end + 1])
            i = end + 1
        elif ch == "{":
            end = line.find("}", i)
            end = n - 1 if end < 0 else end
            words.append(line[i : end + 1])
            i = end + 1
        else:
            j = i
            while j < n and not line[j].isspace() and line[j] not in '"{':
                j += 1
            word = line[i:j]
            words.append((sets or {}).get(word[1:], word) if word.startswith("@") else word)
            i = j
    return words


def _items(word: str) -> list[str]:
    """The elements of `{ a, b }`, or the one word."""
    if word.startswith("{"):
        return [w.strip() for w in word.strip("{}").split(",") if w.strip()]
    return [word]


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class _Unknown(Exception):
    """An expression with no iptables equivalent here."""


def _addresses(word: str) -> str:
    items = _items(word)
    if any(not re.fullmatch(r"[0-9./]+", item) for item in items):
        raise _Unknown(word)
    return ",".join(items)


def _ports(word: str) -> tuple[str, bool]:
    """iptables' port text for an nft port, range or set, and whether it needs multiport."""
    items = _items(word)
    if any(not re.fullmatch(r"\d+(-\d+)?", item) for item in items):
        raise _Unknown(word)
    return ",".join(item.replace("-", ":") for item in items), len(items) > 1


def _plain(word: str, pattern: str) -> str:
    """`word` when it has the shape of the value expected (it goes into iptables text
    as is: a hostile one must not read as an option there), else not understood."""
    if not re.fullmatch(pattern, word):
        raise _Unknown(word)
    return word


def _iface(word: str) -> str:
    name = _plain(word.strip('"'), r"[\w.:@+*][\w.:@+*-]*")
    return name[:-1] + "+" if name.endswith("*") else name


def _negation(words: list[str], i: int) -> tuple[str, int]:
    """("! " or "", the index of the value) for an operator that may follow at `i`."""
    if i < len(words) and words[i] == "!=":
        return "! ", i + 1
    if i < len(words) and words[i] == "==":
        return "", i + 1
    return "", i


def _translate(words: list[str], chains: dict[str, str]) -> str:
    """The iptables options (matches, then target) of one nft rule."""
    out: list[str] = []
    target = ""
    i, n = 0, len(words)

    def at(k: int) -> str:
        return words[k] if k < n else ""

    while i < n:
        w, nxt = words[i], at(i + 1)
        if w == "counter":
            i += 1
            while at(i) in ("packets", "bytes"):
                i += 2
        elif w == "ip" and nxt in ("saddr", "daddr"):
            neg, k = _negation(words, i + 2)
            value = at(k)
            if re.fullmatch(r"[0-9.]+-[0-9.]+", value):
                kind = "src" if nxt == "saddr" else "dst"
                out.append(f"-m iprange {neg}--{kind}-range {value}")
            else:
                out.append(f"{neg}{'-s' if nxt == 'saddr' else '-d'} {_addresses(value)}")
            i = k + 1
        elif (w == "ip" and nxt == "protocol") or (w == "meta" and nxt == "l4proto"):
            neg, k = _negation(words, i + 2)
            if at(k) not in ("tcp", "udp", "icmp"):
                raise _Unknown(at(k))
            out.append(f"{neg}-p {at(k)}")
            i = k + 1
        elif w in ("iifname", "oifname", "iif", "oif") or (
            w == "meta" and nxt in ("iifname", "oifname", "iif", "oif")
        ):
            key = nxt if w == "meta" else w
            neg, k = _negation(words, i + (2 if w == "meta" else 1))
            out.append(f"{neg}{'-i' if key.startswith('i') else '-o'} {_iface(at(k))}")
            i = k + 1
        elif w in ("tcp", "udp") and nxt in ("dport", "sport"):
            neg, k = _negation(words, i + 2)
            ports, many = _ports(at(k))
            if many:
                out.append(f"-p {w} -m multiport {neg}--{nxt}s {ports}")
            else:
                out.append(f"-p {w} -m {w} {neg}--{nxt} {ports}")
            i = k + 1
        elif w == "ct" and nxt == "state":
            neg, k = _negation(words, i + 2)
            states = ",".join(
                _plain(s, "[a-z]+").upper() for item in _items(at(k)) for s in item.split(",")
            )
            out.append(f"-m conntrack {neg}--ctstate {states}")
            i = k + 1
        elif (w == "meta" and nxt == "mark") or w == "mark":
            k = i + (2 if w == "meta" else 1)
            if at(k) == "set":
                target = f"-j MARK --set-xmark {_plain(at(k + 1), _NUMBER)}/0xffffffff"
                i = k + 2
                continue
            mask = ""
            if at(k) == "&":
                mask, k = f"/{_plain(at(k + 1), _NUMBER)}", k + 2
            neg, k = _negation(words, k)
            out.append(f"-m mark {neg}--mark {_plain(at(k), _NUMBER)}{mask}")
            i = k + 1
        elif w == "fib" and nxt == "daddr" and at(i + 2) == "type":
            neg, k = _negation(words, i + 3)
            if at(k) != "local":
                raise _Unknown(at(k))
            out.append(f"-m addrtype {neg}--dst-type LOCAL")
            i = k + 1
        elif w == "icmp" and nxt == "type":
            neg, k = _negation(words, i + 2)
            items = _items(at(k))
            if len(items) != 1:
                raise _Unknown(at(k))
            kind = _plain(items[0], _ICMP)
            out.append(f"-p icmp -m icmp {neg}--icmp-type {kind}")
            i = k + 1
        elif w == "comment":
            out.append(f"-m comment --comment {_quote(nxt.strip(chr(34)))}")
            i += 2
        elif w == "log":
            i += 1
            while at(i) in ("prefix", "level", "flags", "group", "snaplen", "queue-threshold"):
                i += 2
        elif w == "limit" and nxt == "rate" and at(i + 2) != "over":
            out.append(f"-m limit --limit {_plain(at(i + 2), _RATE)}")
            i += 3
            if at(i) == "burst":
                i += 3 if at(i + 2) == "packets" else 2
        elif w in ("accept", "drop", "return"):
            target = f"-j {w.upper()}"
            i += 1
        elif w == "reject":
            target = "-j REJECT"
            i += 1
            if at(i) == "with":
                i += 3
        elif w in ("jump", "goto") and nxt in chains:
            target = f"{'-j' if w == 'jump' else '-g'} {chains[nxt]}"
            i += 2
        elif w == "masquerade":
            target = "-j MASQUERADE"
            i += 1
            while at(i) in ("random", "fully-random", "persistent", "to"):
                i += 2 if at(i) == "to" else 1
        elif w in ("snat", "dnat"):
            k = i + 1
            if at(k) == "ip":
                k += 1
            if at(k) != "to" or not re.fullmatch(r"[0-9.]+(:\d+)?", at(k + 1)):
                raise _Unknown(" ".join(words[i:]))
            option = "--to-source" if w == "snat" else "--to-destination"
            target = f"-j {w.upper()} {option} {at(k + 1)}"
            i = k + 2
        elif w == "redirect":
            port = at(i + 2).lstrip(":") if nxt == "to" else ""
            target = "-j REDIRECT" + (f" --to-ports {port}" if port.isdigit() else "")
            i += 3 if nxt == "to" else 1
        elif w == "notrack":
            i += 1
        else:
            raise _Unknown(w)
    return " ".join([*out, target]).strip()


def _priority(text: str) -> int | None:
    """A base chain's priority: a number, or a name with an offset (`filter + 10`)."""
    found = re.fullmatch(r"\s*(-?\d+|[a-z]+)\s*(?:([+-])\s*(\d+))?\s*", text)
    if found is None:
        return None
    first, sign, offset = found.groups()
    value = PRIORITIES.get(first) if first.isalpha() else int(first)
    if value is None:
        return None
    return value + (int(offset) if sign == "+" else -int(offset)) if offset else value


@dataclass
class _Chain:
    name: str
    header: tuple[str, str, int, str] | None = None  # type, hook, priority, policy
    rules: list[str] = field(default_factory=list)


@dataclass
class _Table:
    family: str
    name: str
    chains: list[_Chain] = field(default_factory=list)
    sets: dict[str, str] = field(default_factory=dict)  # name -> "{ a, b }" (fixed sets)


def _set_literal(text: str) -> str | None:
    """A named set's elements as an anonymous set, when they are fixed addresses or
    ports (a set the data path updates, or of another type, is not)."""
    kind = re.search(r"\btype\s+(\S+)", text)
    if kind is None or kind.group(1) not in ("ipv4_addr", "inet_service"):
        return None
    if re.search(r"\b(dynamic|timeout)\b", text):
        return None
    elements = re.search(r"elements\s*=\s*\{([^}]*)\}", text)
    return "{ " + elements.group(1).strip() + " }" if elements else None


def _tables(text: str) -> list[_Table]:
    """Each table in `nft list ruleset` text."""
    tables: list[_Table] = []
    chain: _Chain | None = None
    skip = 0  # depth inside a set, map or other block that holds no rules
    named: tuple[str, list[str]] | None = None  # the set being read
    for raw in text.split("\n"):
        line = raw.strip()
        if not line:
            continue
        if skip:
            skip += line.count("{") - line.count("}")
            if named is not None:
                named[1].append(line)
                if skip <= 0 and tables:
                    literal = _set_literal(" ".join(named[1]))
                    if literal is not None:
                        tables[-1].sets[named[0]] = literal
                    named = None
            continue
        table = _TABLE.match(line)
        if table:
            tables.append(_Table(table.group(1), table.group(2)))
            continue
        start = _CHAIN.match(line)
        if start and tables:
            chain = _Chain(start.group(1))
            tables[-1].chains.append(chain)
            continue
        if _BLOCK.match(line):
            skip = 1
            set_name = re.match(r"set\s+(\S+)", line)
            named = (set_name.group(1), []) if set_name else None
            continue
        if line == "}":
            chain = None
            continue
        if chain is None:
            continue
        base = _BASE.search(line)
        if base and line.startswith("type "):
            priority = _priority(base.group(3))
            chain.header = (
                base.group(1),
                base.group(2),
                0 if priority is None else priority,
                (base.group(4) or "accept").upper(),
            )
        else:
            chain.rules.append(line)
    return tables


def _section(
    kind: str, hook: str, policy: str, base: _Chain, table: _Table, names: dict[str, str]
) -> tuple[str, dict[str, str]]:
    """One iptables table for one base chain, and its translated lines' nft texts."""
    head = [f"*{kind}", f":{hook} {policy} [0:0]"]
    body: list[str] = []
    originals: dict[str, str] = {}
    for chain in [base, *(c for c in table.chains if c.header is None)]:
        name = hook if chain is base else names[chain.name]
        if chain is not base:
            head.append(f":{name} - [0:0]")
        for rule in chain.rules:
            try:
                options = _translate(_words(rule, table.sets), names)
            except _Unknown as unknown:
                # the rule's verdict still decides what its undecidable match can change
                verb = next((w for w in _words(rule) if w in _VERDICTS), "")
                target = verb.upper() if verb in ("accept", "drop", "return", "reject") else verb
                options = f"-m nft --expression {_quote(str(unknown))}" + (
                    f" -j {target if target.isupper() else 'NFT-' + target.upper()}"
                    if target
                    else ""
                )
            line = f"-A {name} {options}".rstrip()
            originals[line] = rule
            body.append(line)
    return "\n".join([*head, *body, "COMMIT", ""]), originals


def nft_ruleset(data: bytes, skip_compat: bool = False) -> NftRuleset:
    """The IPv4 base chains of `nft list ruleset` (text). `skip_compat`: leave out the
    `ip` tables iptables-nft keeps (filter, nat, mangle, raw, security), which
    iptables-save shows and the iptables evaluator reads already."""
    found = NftRuleset()
    if looks_like_json(data):
        if nft_only(data):
            found.unevaluated.append("the nft ruleset (collected as JSON, `nft -j`)")
        return found
    for table in _tables(decode(data)):
        family, chains = table.family, table.chains
        if family == "netdev" and any(c.header and c.rules for c in chains):
            found.unevaluated.append(f"nft table netdev {table.name}'s ingress chain")
        if family not in ("ip", "inet"):
            continue
        if skip_compat and family == "ip" and table.name in _COMPAT:
            continue
        # a regular chain named like a hook would read as the built-in chain, and a name
        # that is no plain word would not read as a chain at all
        names = {
            c.name: c.name
            if re.fullmatch(r"\w[\w.~:-]*", c.name) and c.name.upper() not in _HOOK_NAMES
            else f"nft-chain-{n}"
            for n, c in enumerate(chains)
        }
        for chain in chains:
            if chain.header is None:
                continue
            kind, hook, priority, policy = chain.header
            if hook not in HOOKS or kind not in ("filter", "nat", "route"):
                continue
            section, originals = _section(
                "nat" if kind == "nat" else "filter", hook.upper(), policy, chain, table, names
            )
            ruleset = Ruleset.from_save(section.encode())
            found.chains.append(
                BaseChain(family, table.name, chain.name, kind, hook, priority, ruleset, originals)
            )
    return found


_NUMBER = r"0x[0-9a-fA-F]+|\d+"
_ICMP = r"[a-z][a-z-]*|\d+"
_RATE = r"\d+/[a-z]+"
_COMPAT = frozenset({"filter", "nat", "mangle", "raw", "security"})
_HOOK_NAMES = frozenset(h.upper() for h in HOOKS)
