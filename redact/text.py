"""The one pass that rewrites text: every address, MAC, bridge id and name in a command's
output, a file name or a manifest string, found by one regular expression and replaced
through the bundle's maps.

Text is decoded with surrogateescape, so bytes that are not UTF-8 come back out
unchanged; what is not an address, a MAC or a known name is never touched. Plain words
(`link`, `master`) are never taken for names here: a node named `master` is mapped where
a name is expected (the Kubernetes objects, the manifest, file names), never in `ip`'s
output, where the word has its own meaning.

Speed: PATTERN says what is replaced, not how a text is searched. Every match, and every
character its lookarounds read, lies inside one maximal run of `_RUN` characters, and
outside a run a lookaround sees what it sees at the text's ends; so a run is rewritten
the same wherever it stands. A text is cut into runs, only the runs that can hold a
match go through PATTERN, each distinct run once (it is remembered), and the rest is
copied: a 100,000-route table is millions of runs but a few hundred thousand distinct.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from needle.redact.addresses import AddressMapper
from needle.redact.macs import MacMapper
from needle.redact.names import NameMap

_HEX = "[0-9A-Fa-f]"
_MAC = rf"(?<![0-9A-Za-z:]){_HEX}{{2}}(?::{_HEX}{{2}}){{5}}(?![0-9A-Za-z:])"
# a bridge id: priority, then the MAC as brctl (12 digits) or ip -d (unpadded) prints it
_BRIDGE = (
    r"(?<![0-9A-Za-z.])[0-9a-f]{4}\."
    r"(?P<bridge_mac>[0-9a-f]{12}|[0-9a-f]{1,2}(?::[0-9a-f]{1,2}){5})(?![0-9A-Za-z:])"
)
# an address, then what may not follow it (after its prefix length, if it has one)
_V6_ADDRESS = (
    # the dotted tail first: ::ffff:10.244.1.2 is one address, not ::ffff:10 and a rest
    rf"(?<![0-9A-Za-z:.])(?:{_HEX}{{0,4}}:){{2,7}}(?:\d{{1,3}}(?:\.\d{{1,3}}){{3}}|{_HEX}{{1,4}})?"
)
_V6_END = r"(?![0-9A-Za-z:])"
_V6 = rf"{_V6_ADDRESS}(?:/(?P<v6len>\d{{1,3}}))?{_V6_END}"
_V4_ADDRESS = r"(?<![0-9A-Za-z.])\d{1,3}(?:\.\d{1,3}){3}"
_V4_END = r"(?!\d|\.\d)"
_V4 = rf"{_V4_ADDRESS}(?:/(?P<v4len>\d{{1,2}})(?!\d))?{_V4_END}"
# a word a name can be: lowercase, with a digit, a dash or a dot in it
_WORD = (
    r"(?<![A-Za-z0-9_.-])(?=[a-z0-9_.-]*[0-9.-])[a-z0-9][a-z0-9_.-]*(?<![.-])"
    r"(?![A-Za-z0-9_-])(?!\.[A-Za-z0-9_])"
)
_EMBEDDED_V4 = re.compile(
    r"(?<![0-9.])\d{1,3}(?:\.\d{1,3}){3}(?:/(?P<v4len>\d{1,2})(?!\d))?(?![0-9]|\.\d)"
)
PATTERN = re.compile(
    f"(?P<mac>{_MAC})|(?P<bridge>{_BRIDGE})|(?P<v6>{_V6})|(?P<v4>{_V4})|(?P<word>{_WORD})"
)
# Addresses worth mapping in one batch before a large text is rewritten: PATTERN's, but
# for their prefix lengths.
_ADDRESSES = re.compile(f"{_V4_ADDRESS}{_V4_END}|{_V6_ADDRESS}{_V6_END}")
BATCH_FROM = 256 * 1024  # characters
_MACS = re.compile(_MAC)
_MACS_FROM = 8 * 1024  # characters: the new MACs of a text this long are mapped in a batch

# --- how texts are searched (see the module docstring) ---------------------------------------
# Characters a match can hold or a lookaround can read: ASCII letters and digits, `_.:/-`,
# and every non-ASCII character (\d matches other scripts' digits). `_search_by_runs`
# checks that PATTERN keeps to them.
_RUN = r"0-9A-Za-z_.:/\-\u0080-\U0010FFFF"
# Every match needs a digit, '.' or '-' in its run (matched or looked ahead at), or two
# ':' (a MAC, an IPv6 address): `_search_by_runs` checks that too. So runs of the other
# characters (`_PLAIN`) with at most one ':' are skipped.
_NEEDED, _TWICE = "0123456789.-", ":"
_PLAIN = r"A-Za-z_/\u0080-\U0010FFFF"
# Pairs (what comes before the next run that could hold a match, that run): the first
# group takes separators, and runs of plain characters with at most one ':', whole, so
# the second starts where a run starts and takes all of it. The last pair has the text's
# tail and no run.
_CANDIDATES = re.compile(
    rf"((?:[^{_RUN}]++|[{_PLAIN}]++(?::[{_PLAIN}]*+)?+(?![{_RUN}])|:[{_PLAIN}]*+(?![{_RUN}]))*+)"
    rf"([{_RUN}]++)?"
)
_SEPARATOR = re.compile(f"[^{_RUN}]")
_PIECE = 1024 * 1024  # characters: a longer text is cut into pieces between runs
_REMEMBERED = 256  # characters: texts up to this long are remembered whole, like runs
_MEMO_LIMIT = 1 << 17  # runs and texts remembered (some 25 MB), then all forgotten
_MEMO_KEPT = 1 << 16  # ... and past this many, forgotten between members (see trim)
_FOLDERS_KEPT = 1 << 12  # the folders of the members last written

# a text rewritten: its new form, and the (addresses, MACs, names) replaced, None for none
_Entry = tuple[str, tuple[int, int, int] | None]


@dataclass
class Counts:
    """What one rewriter replaced (for the redaction record; never the values)."""

    addresses: int = 0
    macs: int = 0
    names: int = 0


class TextRewriter:
    def __init__(self, addresses: AddressMapper, macs: MacMapper, names: NameMap) -> None:
        self.addresses = addresses
        self.macs = macs
        self.names = names
        self.counts = Counts()
        # what the handlers replaced: in the run being rewritten, or in the whole text
        self._found = Counts() if _BY_RUNS else self.counts
        # a run or a short text -> its rewritten form, and what that replaced
        self._memo: dict[str, _Entry] = {}
        self._plain: tuple[set[str], re.Pattern[str]] | None = None  # digitless veths
        self._folders: dict[str, _Entry] = {}  # a member's folder -> its path, rewritten
        self._handlers: dict[str, Callable[[re.Match[str]], str]] = {
            "mac": self._mac,
            "bridge": self._bridge,
            "v6": self._v6,
            "v4": self._v4,
            "word": self._word,
        }

    # --- entry points ------------------------------------------------------------------
    def text(self, text: str) -> str:
        """`text` with every match of PATTERN replaced, and counted."""
        rewritten = self._text(text)
        plain = self.names.plain_interfaces
        if plain and any(name in rewritten for name in plain):
            if self._plain is None or len(self._plain[0]) != len(plain):
                names = "|".join(sorted(map(re.escape, plain), key=len, reverse=True))
                self._plain = (
                    set(plain),
                    re.compile(rf"(?<![A-Za-z0-9_])(?:{names})(?![A-Za-z0-9_])"),
                )
            rewritten = self._plain[1].sub(self._plain_interface, rewritten)
        return rewritten

    def _plain_interface(self, match: re.Match[str]) -> str:
        self.counts.names += 1
        return self.names.interface(match.group()) or match.group()

    def _text(self, text: str) -> str:
        if not _BY_RUNS:
            if len(text) >= BATCH_FROM:
                self.addresses.prepare(_ADDRESSES.findall(text))
            return PATTERN.sub(self._replace, text)
        entry = self._memo.get(text)  # a name, a path's part, a run: met before
        if entry is None:
            if len(text) > _PIECE:
                return "".join(self._counted(self._by_runs(piece)) for piece in _pieces(text))
            entry = self._by_runs(text)
            if len(text) <= _REMEMBERED:
                self._remember(text, entry)
        return self._counted(entry)

    def _counted(self, entry: _Entry) -> str:
        if entry[1] is not None:
            counts = self.counts
            counts.addresses += entry[1][0]
            counts.macs += entry[1][1]
            counts.names += entry[1][2]
        return entry[0]

    def _by_runs(self, text: str) -> _Entry:
        """`text` rewritten run by run, and what that replaced."""
        pairs = _CANDIDATES.findall(text)
        if not pairs[0][1]:
            return text, None  # no run that could hold a match
        memo = self._memo
        if len(text) >= _MACS_FROM:  # map what is new in one batch, not one by one
            fresh = " ".join({run for _, run in pairs}.difference(memo))
            macs = [bytes.fromhex(mac.replace(":", "")) for mac in _MACS.findall(fresh)]
            if macs:
                self.macs.map_many(macs)
            if len(text) >= BATCH_FROM:
                self.addresses.prepare(_ADDRESSES.findall(fresh))
        out: list[str] = []
        append = out.append
        tallies: list[tuple[int, int, int]] = []
        for before, run in pairs:
            append(before)
            if run:
                entry = memo.get(run)
                if entry is None:
                    entry = self._run(run)
                append(entry[0])
                if entry[1] is not None:
                    tallies.append(entry[1])
        if not tallies:
            return "".join(out), None
        addresses = macs = names = 0
        for tally in tallies:
            addresses += tally[0]
            macs += tally[1]
            names += tally[2]
        return "".join(out), (addresses, macs, names)

    def _run(self, run: str) -> _Entry:
        """A run rewritten by PATTERN, and what that replaced; remembered."""
        found = self._found
        found.addresses = found.macs = found.names = 0
        rewritten = PATTERN.sub(self._replace, run)
        tally = (found.addresses, found.macs, found.names)
        entry = (rewritten, tally if any(tally) else None)
        self._remember(run, entry)
        return entry

    def _remember(self, text: str, entry: _Entry) -> None:
        if len(self._memo) >= _MEMO_LIMIT:
            self._memo.clear()
        self._memo[text] = entry

    def trim(self) -> None:
        """Let the maps forget what they hold past their bounds (between members, records,
        items: never while a text is rewritten, which counts on what it mapped in a batch).
        The memory of runs too: a large member (a 100,000-route table) may fill it up to
        _MEMO_LIMIT, but the many small ones of a large cluster no further than half."""
        if len(self._memo) > _MEMO_KEPT:
            self._memo.clear()
        self.addresses.trim()
        self.macs.trim()
        self.names.trim()

    def data(self, data: bytes) -> bytes:
        return self.text(data.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")

    def path(self, path: str) -> str:
        """A member name: each part mapped as a whole name first (a node named `master`
        has its directory), then as text."""
        folder, slash, leaf = path.rpartition("/")
        if not slash:
            return self.part(path)
        entry = self._folders.get(folder)  # the five files of a pod share theirs
        if entry is None:
            counts = self.counts
            before = (counts.addresses, counts.macs, counts.names)
            rewritten = "/".join(self.part(part) for part in folder.split("/"))
            tally = (
                counts.addresses - before[0],
                counts.macs - before[1],
                counts.names - before[2],
            )
            if len(self._folders) >= _FOLDERS_KEPT:
                self._folders.clear()
            self._folders[folder] = (rewritten, tally)
            return f"{rewritten}/{self.part(leaf)}"
        return f"{self._counted(entry)}/{self.part(leaf)}"

    def part(self, part: str) -> str:
        exact = self.names.lookup(part)
        if exact is not None:
            self.counts.names += 1
            return exact
        return self.text(part)

    def strings(self, values: Iterable[str]) -> list[str]:
        return [self.text(value) for value in values]

    # --- matches -----------------------------------------------------------------------
    def _replace(self, match: re.Match[str]) -> str:
        return self._handlers[match.lastgroup or "word"](match)

    def _mac(self, match: re.Match[str]) -> str:
        self._found.macs += 1
        return self.macs.map_text(match.group())

    def _bridge(self, match: re.Match[str]) -> str:
        text = match.group()
        mac = match.group("bridge_mac")
        start = match.start("bridge_mac") - match.start()
        if ":" in mac:
            octets = bytes(int(octet, 16) for octet in mac.split(":"))
            mapped = ":".join(f"{octet:x}" for octet in self.macs.map(octets))
        else:
            mapped = self.macs.map(bytes.fromhex(mac)).hex()
        self._found.macs += 1
        return text[:start] + mapped

    def _v4(self, match: re.Match[str]) -> str:
        text = match.group()
        length = match.group("v4len")
        address = text if length is None else text[: -len(length) - 1]
        octets = [int(octet) for octet in address.split(".")]
        if any(octet > 255 for octet in octets):
            return text  # a version number or the like, not an address
        address = ".".join(map(str, octets))  # 10.01.02.03 is 10.1.2.3 to whom reads it
        self._found.addresses += 1
        if length is None:
            return self.addresses.map_address(address)
        if int(length) > 32:
            return f"{self.addresses.map_address(address)}/{length}"
        return f"{self.addresses.map_network(address, int(length))}/{length}"

    def _v6(self, match: re.Match[str]) -> str:
        text = match.group()
        length = match.group("v6len")
        address = text if length is None else text[: -len(length) - 1]
        try:
            if length is None or int(length) > 128:
                mapped = self.addresses.map_address(address)
                result = mapped if length is None else f"{mapped}/{length}"
            else:
                result = f"{self.addresses.map_network(address, int(length))}/{length}"
        except ValueError:
            return text  # a time of day, a port range: not an address
        self._found.addresses += 1
        return result

    def _word(self, match: re.Match[str]) -> str:
        word = match.group()
        mapped = self.names.lookup(word)
        if mapped is None:
            mapped = self.names.interface(word)
        if mapped is not None:
            self._found.names += 1
            return mapped
        if "." not in word:
            return word
        # an address inside a word (node-10.244.1.5, ip_10.244.1.2): the word took it
        # before the address alternative could
        word = _EMBEDDED_V4.sub(self._v4, word)
        # a hostname's first label, a sysctl key's interface (net.ipv4.conf.vethX.rp_filter)
        parts = word.split(".")
        changed = False
        for index, part in enumerate(parts):
            replacement = self.names.lookup(part) or self.names.interface(part)
            if replacement is not None:
                parts[index] = replacement
                changed = True
        if not changed:
            return word
        self._found.names += 1
        return ".".join(parts)


# --- whether the run-by-run search is PATTERN's --------------------------------------------
def _pieces(text: str) -> Iterator[str]:
    """`text` in pieces of about _PIECE characters, cut only between runs."""
    start = 0
    while len(text) - start > _PIECE:
        cut = _SEPARATOR.search(text, start + _PIECE)
        if cut is None:
            break
        yield text[start : cut.start()]
        start = cut.start()
    yield text[start:]


def _search_by_runs(pattern: re.Pattern[str]) -> bool:
    """Whether rewriting run by run finds what `pattern.sub` on the whole text finds:
    every character the pattern matches or looks at is a run character, it has no anchor
    but \\b and \\B, no backreference and no empty match (so a run is rewritten the same
    wherever it stands), and each of its alternatives needs a digit, '.' or '-', matched
    or looked ahead at, or two ':' of its own (the runs without are skipped). Read off
    the parsed pattern; if it does not hold, text is searched whole: slower, as right."""
    try:
        return _holds(pattern)
    except (ImportError, AttributeError, IndexError, TypeError):  # another Python's parser
        return False


def _holds(pattern: re.Pattern[str]) -> bool:
    from re import _constants as c  # type: ignore[attr-defined]
    from re import _parser  # type: ignore[attr-defined]

    tree = _parser.parse(pattern.pattern, pattern.flags)
    run_char = re.compile(f"[{_RUN}]")
    outside = [chr(code) for code in range(128) if not run_char.match(chr(code))]
    categories = {c.CATEGORY_DIGIT: r"\d", c.CATEGORY_WORD: r"\w", c.CATEGORY_SPACE: r"\s"}
    repeats = (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT)

    def matches(op: object, av: object, char: str) -> bool:  # one character's atom
        if op is c.LITERAL:
            return chr(av) == char  # type: ignore[arg-type]
        items = av if op is c.IN else [(op, av)]
        for item, value in items:  # type: ignore[union-attr]
            if item is c.LITERAL and chr(value) == char:
                return True
            if item is c.RANGE and value[0] <= ord(char) <= value[1]:
                return True
            if item is c.CATEGORY and value in categories:
                if re.match(categories[value], char, pattern.flags & re.ASCII):
                    return True
            elif item not in (c.LITERAL, c.RANGE):
                return True  # a negation, any character, another category: assume so
        return False

    def within(op: object, av: object, chars: str) -> bool:  # only ever one of `chars`
        if op is c.LITERAL:
            return chr(av) in chars  # type: ignore[arg-type]
        if op is not c.IN:
            return False
        for item, value in av:  # type: ignore[attr-defined]
            span = range(value[0], value[1] + 1) if item is c.RANGE else range(0)
            if not (
                (item is c.LITERAL and chr(value) in chars)
                or (item is c.RANGE and len(span) <= 128 and all(chr(x) in chars for x in span))
            ):
                return False
        return True

    def only_runs(items: Any) -> bool:
        for op, av in items:
            if op in (c.LITERAL, c.IN, c.NOT_LITERAL, c.ANY):
                if any(matches(op, av, char) for char in outside):
                    return False
            elif op is c.SUBPATTERN:
                if not only_runs(av[3]):
                    return False
            elif op is c.BRANCH:
                if not all(only_runs(branch) for branch in av[1]):
                    return False
            elif op in repeats:
                if not only_runs(av[2]):
                    return False
            elif op in (c.ASSERT, c.ASSERT_NOT):
                if not only_runs(av[1]):
                    return False
            elif op is c.ATOMIC_GROUP:
                if not only_runs(av):
                    return False
            elif op is not c.AT or av not in (c.AT_BOUNDARY, c.AT_NON_BOUNDARY):
                return False
        return True

    def needs(items: Any, chars: str) -> bool:  # every match matches or sees one of `chars`
        for op, av in items:
            if (
                within(op, av, chars)
                or (op is c.SUBPATTERN and needs(av[3], chars))
                or (op is c.ATOMIC_GROUP and needs(av, chars))
                or (op is c.ASSERT and needs(av[1], chars))
                or (op in repeats and av[0] >= 1 and needs(av[2], chars))
                or (op is c.BRANCH and all(needs(branch, chars) for branch in av[1]))
            ):
                return True
        return False

    def least(items: Any, char: str) -> int:  # how many `char` every match holds at least
        total = 0
        for op, av in items:
            if within(op, av, char):
                total += 1
            elif op is c.SUBPATTERN:
                total += least(av[3], char)
            elif op is c.ATOMIC_GROUP:
                total += least(av, char)
            elif op in repeats:
                total += av[0] * least(av[2], char)
            elif op is c.BRANCH:
                total += min(least(branch, char) for branch in av[1])
        return total

    top = tree.data
    alternatives = top[0][1][1] if len(top) == 1 and top[0][0] is c.BRANCH else [tree]
    return (
        tree.getwidth()[0] > 0
        and only_runs(tree)
        and all(needs(branch, _NEEDED) or least(branch, _TWICE) >= 2 for branch in alternatives)
    )


_BY_RUNS = _search_by_runs(PATTERN)
