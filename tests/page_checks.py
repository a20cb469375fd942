"""Reading a report page as a browser's parser would (html.parser): its elements with
their attributes, its text, and the checks every page must pass whatever it shows."""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from needle.cli import run

# every element the page is made of; anything else came from a bundle string
KNOWN_TAGS = frozenset(
    [
        "html",
        "head",
        "meta",
        "title",
        "style",
        "body",
        "header",
        "h1",
        "h2",
        "h3",
        "h4",
        "p",
        "span",
        "code",
        "nav",
        "a",
        "input",
        "main",
        "section",
        "ul",
        "li",
        "div",
        "svg",
        "line",
        "text",
        "g",
        "rect",
        "circle",
        "path",
        "details",
        "summary",
        "pre",
        "strong",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
        "br",
        "figure",
        "figcaption",
        "footer",
        "script",
    ]
)


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    classes: set[str]


@dataclass
class Page:
    elements: list[Element] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    scripts: list[str] = field(default_factory=list)
    styles: list[str] = field(default_factory=list)

    def all(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> list[Element]:
        return [
            e
            for e in self.elements
            if (tag is None or e.tag == tag)
            and (cls is None or cls in e.classes)
            and all(e.attrs.get(k.replace("_", "-")) == v for k, v in attrs.items())
        ]


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page()
        self.inside: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        self.page.elements.append(Element(tag, values, set(values.get("class", "").split())))
        if tag in ("script", "style"):
            self.inside = tag

    def handle_endtag(self, tag: str) -> None:
        if tag == self.inside:
            self.inside = None

    def handle_data(self, data: str) -> None:
        if self.inside == "script":
            self.page.scripts.append(data)
        elif self.inside == "style":
            self.page.styles.append(data)
        else:
            self.page.text.append(data)


def read_page(text: str) -> Page:
    reader = _Reader()
    reader.feed(text)
    reader.close()
    return reader.page


def render(bundle: Path, out: Path, *extra: str) -> str:
    """`needle analyze BUNDLE --format html -o OUT`, in this process; the page's text."""
    code = run(["analyze", str(bundle), "--format", "html", "-o", str(out), *extra], "needle")
    assert code in (0, 1), code
    return out.read_text()


def _digest(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


def assert_self_contained(text: str) -> Page:
    """One inline style sheet and one inline script, allowed by hash and nothing else; no
    element, attribute or URL the page did not make itself."""
    page = read_page(text)
    assert {e.tag for e in page.elements} <= KNOWN_TAGS
    assert len(page.all("script")) == 1 and "src" not in page.all("script")[0].attrs
    assert len(page.all("style")) == 1
    (policy,) = [
        e.attrs["content"]
        for e in page.all("meta")
        if e.attrs.get("http-equiv") == "Content-Security-Policy"
    ]
    assert "default-src 'none'" in policy
    assert f"'{_digest(''.join(page.scripts))}'" in policy
    assert f"'{_digest(''.join(page.styles))}'" in policy
    for element in page.elements:
        for name, value in element.attrs.items():
            assert not name.startswith("on"), (element.tag, name)
            assert name not in ("src", "srcset", "style", "action", "formaction"), name
            if name == "href":
                assert value.startswith("#") or re.match(r"https?://", value), value
    return page
