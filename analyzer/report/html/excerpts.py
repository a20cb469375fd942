"""The lines of an evidence file that bear on a finding, so the report's reader needs no
bundle: the objects of a JSON array (as `ip -j` prints) or the lines of a text output
that name what the finding names (its interface, addresses, MACs, pod), numbered."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

MAX_LINES = 80
LINE_WIDTH = 200
MAX_OBJECTS = 3
# a file larger than this is searched as text (10^5 routes: no JSON tree for an excerpt)
MAX_JSON_BYTES = 2_000_000
# words of a detail worth finding in a file: names and addresses, which have a digit
# (eth0, flannel.1, cni0, 10.244.1.0/24, MACs, pod names with their hash)
_TOKEN = re.compile(r"[A-Za-z0-9][\w.:/@-]*[\w]")
_MEANINGFUL = re.compile(r"\d")
_CIDR = re.compile(r"[\d.]+/\d+|[\da-fA-F:]+/\d+")


@dataclass
class Excerpt:
    file: str
    # (line number in the file, or None for a JSON entry's line; text; bears on it)
    lines: list[tuple[int | None, str, bool]] = field(default_factory=list)
    note: str = ""  # why there are no lines, or what was left out


# field names an evidence detail may name ("flannel.1 mtu 1450"): marked, not searched
_WORDS = frozenset(
    {"mtu", "state", "operstate", "master", "dst", "gateway", "dev", "lladdr", "mac", "flags"}
)


def tokens(*texts: str | None) -> set[str]:
    """The words of `texts` an excerpt looks for: `flannel.1`, `10.244.1.0/24`, MACs,
    and the field names among _WORDS they mention."""
    found: set[str] = set()
    for text in texts:
        found.update(word for word in re.findall(r"[a-z]+", text or "") if word in _WORDS)
        for word in _TOKEN.findall(text or ""):
            word = word.rstrip(".:")
            if len(word) >= 3 and _MEANINGFUL.search(word):
                found.add(word)
                if _CIDR.fullmatch(word):  # printed as its address and length apart too
                    found.add(word.split("/", 1)[0])
    return found


def _strings(value: object) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _json_excerpt(excerpt: Excerpt, data: object, wanted: set[str]) -> bool:
    """The array's objects with a value among `wanted`; False when `data` is no array."""
    items = data.get("items") if isinstance(data, dict) else data
    if not isinstance(items, list):
        return False
    # the entries that name most of what the finding names first
    searched = wanted - _WORDS
    scored = [(len(searched & set(_strings(item))), number) for number, item in enumerate(items)]
    chosen = [items[number] for score, number in sorted(scored, key=lambda s: -s[0]) if score]
    if not chosen:
        excerpt.note = f"none of its {len(items)} entries names {', '.join(sorted(searched)[:4])}"
        return True
    shown = chosen[:MAX_OBJECTS]
    for item in shown:
        excerpt.lines.extend(_entry_lines(item, wanted))
    if len(excerpt.lines) > MAX_LINES:
        del excerpt.lines[MAX_LINES:]
        excerpt.note = "cut short"
    if len(chosen) > len(shown):
        excerpt.note = f"{len(shown)} of {len(chosen)} matching entries shown"
    return True


def _entry_lines(item: object, wanted: set[str]) -> list[tuple[int | None, str, bool]]:
    """An entry a line per key (nested values on their key's line), the lines that name
    a wanted word (or are the key a wanted word names: `mtu` for "mtu 1450") marked."""
    if not isinstance(item, dict):
        text = json.dumps(item, sort_keys=True)[:LINE_WIDTH]
        return [(None, text, any(word in text for word in wanted))]
    lines: list[tuple[int | None, str, bool]] = [(None, "{", False)]
    for key in sorted(item):
        value = json.dumps(item[key], sort_keys=True)
        text = f"  {json.dumps(key)}: {value}"
        if len(text) > LINE_WIDTH:
            text = text[: LINE_WIDTH - 1] + "…"
        hit = key in wanted or any(word in value for word in wanted if word not in _WORDS)
        lines.append((None, text, hit))
    lines.append((None, "}", False))
    return lines


def _text_excerpt(excerpt: Excerpt, text: str, wanted: set[str]) -> None:
    lines = text.splitlines()
    searched = wanted - _WORDS or wanted
    hits = [number for number, line in enumerate(lines) if any(w in line for w in searched)]
    if not hits:
        excerpt.note = f"no line names {', '.join(sorted(searched)[:4])}; its first lines"
        hits = list(range(min(len(lines), 10)))
    keep: list[int] = []
    for number in hits:
        for near in (number - 1, number, number + 1):
            if 0 <= near < len(lines) and (not keep or near > keep[-1]):
                keep.append(near)
    if len(keep) > MAX_LINES:
        excerpt.note = f"first {MAX_LINES} of {len(keep)} lines that bear on it"
        keep = keep[:MAX_LINES]
    hit = set(hits) if wanted != {""} else set()
    excerpt.lines = [(number + 1, lines[number][:LINE_WIDTH], number in hit) for number in keep]


def excerpt_of(read: Callable[[str], str | None], file: str, wanted: set[str]) -> Excerpt:
    """What `file` (read by `read`, None: not in the bundle) says of the `wanted` words."""
    excerpt = Excerpt(file)
    text = read(file)
    if text is None:
        excerpt.note = "not in the bundle"
        return excerpt
    if not wanted - _WORDS:
        _text_excerpt(excerpt, text, {""})  # nothing to narrow it by: its first lines
        return excerpt
    if file.endswith(".json") and len(text) <= MAX_JSON_BYTES:
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if data is not None and _json_excerpt(excerpt, data, wanted):
            return excerpt
    _text_excerpt(excerpt, text, wanted)
    return excerpt


class Excerpts:
    """Excerpts of one bundle, each file read once, up to `limit` excerpts (a report of
    1,000 nodes embeds the first ones and says how many it left out)."""

    def __init__(self, read: Callable[[str], str | None], limit: int = 300) -> None:
        self.read = read
        self.limit = limit
        self.made = 0
        self.left_out = 0
        self._texts: dict[str, str | None] = {}

    def _cached(self, file: str) -> str | None:
        if file not in self._texts:
            if len(self._texts) > 64:
                self._texts.clear()
            self._texts[file] = self.read(file)
        return self._texts[file]

    def __call__(self, file: str, wanted: set[str]) -> Excerpt | None:
        if not file:
            return None
        if self.made >= self.limit:
            self.left_out += 1
            return None
        self.made += 1
        return excerpt_of(self._cached, file, wanted)
