"""The output boundary (terminal.py's safe_text, safe_markup, markdown_text and
markdown_code) and the renderers that route bundle strings through it, held to
docs/untrusted-bundles.md ("Output") with Hypothesis: whatever a bundle holds, nothing
a terminal would obey and no HTML reaches a person, the escape stays visible, ordinary
text is left alone, rich never chokes on markup and every finding keeps its own lines.
"""

from __future__ import annotations

import html
import io
import re
import subprocess
import sys
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from needle.analyzer.diff.render import render_markdown as diff_markdown
from needle.analyzer.diff.render import render_text as diff_text
from needle.analyzer.report.markdown import render_markdown
from needle.analyzer.report.text import render_text
from needle.analyzer.terminal import (
    make_console,
    markdown_code,
    markdown_text,
    safe_markup,
    safe_text,
)
from rich.text import Text

from needle.console import error_line

FAST = settings(max_examples=200, deadline=None)
SLOW = settings(max_examples=60, deadline=None)

# What no human-readable output may carry raw: C0 controls, DEL, C1, bidi controls, and
# (within one value) line and paragraph separators.
UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
UNSAFE_IN_LINES = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)
# An HTML tag, comment, declaration or processing instruction as markdown passes them on.
RAW_TAG = re.compile(r"<[A-Za-z/!?]")

ANY_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
HOSTILE_PIECES = st.sampled_from(
    [
        "\\[",  # rich 15 reads it as an escaped bracket, wherever it is
        ":ab:",  # an emoji code, as in a MAC (02:ab:cd:...)
        "\x1b[2J",
        "\x1b]0;title\x07",
        "\x1b]8;;https://evil.example/\x1b\\link\x1b]8;;\x1b\\",
        "\x9b31m",
        "\u202e",
        "\u2066",
        "\nERROR fake",
        "\r",
        "[bold]",
        "[/]",
        "[link=https://x]",
        "\\",
        "<img src=x onerror=alert(1)>",
        "<script>",
        "&amp;",
        "`",
        "``",
        "|",
        "*",
        "_",
        "# ",
        "- ",
        "1. ",
        "    ",
        "![x](y)",
        "[a](javascript:b)",
    ]
)
HOSTILE = st.lists(st.one_of(ANY_TEXT, HOSTILE_PIECES), max_size=6).map("".join)
ORDINARY = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zl", "Zp", "Cf")), max_size=40
)

COMMONMARK = MarkdownIt("commonmark", {"html": True}).enable("table")


# -- the boundary itself ----------------------------------------------------------------


def _escaped(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


@FAST
@given(HOSTILE)
def test_safe_text_leaves_nothing_a_terminal_obeys_and_shows_every_escape(text):
    shown = safe_text(text)
    assert not UNSAFE.search(shown)
    for char in set(UNSAFE.findall(text)):
        assert _escaped(char) in shown
    assert safe_text(shown) == shown  # idempotent: escaping twice changes nothing
    assert not UNSAFE_IN_LINES.search(safe_text(text, lines=True))


@FAST
@given(ORDINARY)
def test_safe_text_leaves_ordinary_text_alone(text):
    assert safe_text(text) == text
    assert safe_markup(text) == text or "[" in text or "\\" in text


@FAST
@given(HOSTILE)
@example("\\[: collecting")
@example("a\\\\[b] \\[x")
def test_safe_markup_is_shown_as_typed_by_rich(text):
    # no MarkupError, and rich shows exactly what safe_text() shows
    assert Text.from_markup(safe_markup(text), emoji=False).plain == safe_text(text)
    stream = io.StringIO()
    make_console(stream, color=False, width=10_000).print(safe_markup(text), end="")
    assert stream.getvalue() == safe_text(text).replace("\t", "        ") or "\t" in text


def test_a_mac_or_an_ipv6_address_is_no_emoji():
    stream = io.StringIO()
    make_console(stream, color=False).print(safe_markup("02:ab:cd:ef:00:01 2001:db8:a:b::1"))
    assert stream.getvalue() == "02:ab:cd:ef:00:01 2001:db8:a:b::1\n"


def _paragraph(markdown: str) -> str:
    # how much trailing (Unicode) whitespace a paragraph keeps is not this test's business
    return re.sub(r"\s+</p>\n$", "</p>\n", COMMONMARK.render(markdown))


def _expected_paragraph(shown: str) -> str:
    return f"<p>{html.escape(('x ' + shown).rstrip(), quote=True)}</p>\n"


@FAST
@given(HOSTILE)
def test_markdown_text_renders_as_the_text_itself(text):
    escaped = markdown_text(text)
    assert not UNSAFE.search(escaped)
    assert "\n" not in escaped
    assert not RAW_TAG.search(escaped)
    # inline, after other words, it renders to exactly the text: no emphasis, link,
    # image, code span, HTML or entity of its own
    rendered = _paragraph("x " + escaped).replace("&#39;", "'")
    assert rendered == _expected_paragraph(safe_text(text)).replace("&#x27;", "'")


@FAST
@given(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9 :./,;=+-]{0,30}", fullmatch=True))
def test_markdown_text_leaves_plain_names_and_dates_alone(text):
    if re.match(r"\d+[.)]", text):  # "1." would start a list: escaped
        return
    assert markdown_text(text) == text
    assert markdown_code(text) == f"`{text}`"


@FAST
@given(HOSTILE)
def test_markdown_text_at_the_start_of_a_line_starts_no_block(text):
    rendered = COMMONMARK.render(markdown_text(text))
    assert rendered == "" or rendered.startswith(("<p>", "<pre><code>"))
    assert not re.search(r"<(h\d|ul|ol|li|blockquote|hr|img|script|a )", rendered)


@FAST
@given(HOSTILE)
def test_markdown_code_is_one_code_span_of_the_text(text):
    shown = safe_text(text)
    code = markdown_code(text)
    assert not UNSAFE.search(code)
    assert not RAW_TAG.search(code)
    rendered = _paragraph("x " + code)
    if "<" in shown:  # written as escaped text instead
        assert rendered.replace("&#39;", "'") == _expected_paragraph(shown).replace("&#x27;", "'")
    else:
        inner = html.escape(shown or " ", quote=True).replace("&#x27;", "'")
        assert rendered.replace("&#39;", "'") == f"<p>x <code>{inner}</code></p>\n"


@FAST
@given(HOSTILE, HOSTILE)
def test_markdown_in_a_table_cell_stays_in_its_cell(text, other):
    table = (
        "| a | b | c |\n|---|---|---|\n"
        f"| {markdown_text(text)} | {markdown_code(other, table=True)} | end |\n"
    )
    rendered = COMMONMARK.render(table)
    body = rendered.split("<tbody>")[1]
    assert body.count("<td>") == 3
    assert "<td>end</td>" in body


@FAST
@given(HOSTILE, HOSTILE)
def test_an_error_line_is_one_line_whatever_it_names(prog, message):
    line = error_line(prog, message, io.StringIO(), False)
    assert line.endswith("\n")
    assert line.count("\n") == 1
    assert not UNSAFE.search(line[:-1])


def test_an_error_naming_a_hostile_file_is_one_escaped_line(tmp_path):
    name = "bad\nname\x1b[2J.tar.gz"
    result = subprocess.run(
        [sys.executable, "-m", "needle", "analyze", str(tmp_path / name)],
        capture_output=True,
        text=True,
        check=False,
        env={"NO_COLOR": "1", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert "bad\\x0aname\\x1b[2J.tar.gz" in result.stderr
    assert "\x1b" not in result.stderr


# -- the renderers ------------------------------------------------------------------------

SEVERITY = st.sampled_from(["error", "warning", "info"])


@st.composite
def findings(draw: Any) -> dict[str, Any]:
    return {
        "rule": draw(HOSTILE),
        "severity": draw(SEVERITY),
        "title": draw(HOSTILE),
        "message": draw(HOSTILE),
        "subject": {"node": draw(HOSTILE)},
        "evidence": draw(
            st.lists(st.fixed_dictionaries({"file": HOSTILE, "detail": HOSTILE}), max_size=2)
        ),
        "remediation": draw(HOSTILE),
        "references": draw(st.lists(HOSTILE, max_size=2)),
    }


@st.composite
def reports(draw: Any) -> dict[str, Any]:
    found = draw(st.lists(findings(), max_size=4))
    summary = {s: sum(1 for f in found if f["severity"] == s) for s in ("error", "warning", "info")}
    reasons = st.lists(st.fixed_dictionaries({"rule": HOSTILE, "reason": HOSTILE}), max_size=2)
    return {
        "format": "needle.report/v1",
        "bundle": {
            "path": draw(HOSTILE),
            "nodes": draw(st.integers(0, 3)),
            "created": draw(HOSTILE),
            "status": draw(HOSTILE),
        },
        "findings": found,
        "summary": summary,
        "coverage": {
            "rules_run": draw(st.integers(0, 30)),
            "rules_skipped": draw(reasons),
            "rules_partial": draw(reasons),
            "rules_invalid": draw(reasons),
        },
    }


def _text_report(document: dict[str, Any], color: bool) -> str:
    stream = io.StringIO()
    render_text(document, stream, color=color)
    return stream.getvalue()


def _report_lines(document: dict[str, Any]) -> int:
    """How many lines the text report has: its structure, none from the values."""
    lines = 1
    for severity in ("error", "warning", "info"):
        group = [f for f in document["findings"] if f["severity"] == severity]
        if group:
            lines += 2
        for finding in group:
            lines += 3 + len(finding["evidence"]) + len(finding["references"])
    coverage = document["coverage"]
    return (
        lines
        + 2
        + sum(len(coverage[k]) for k in ("rules_skipped", "rules_partial", "rules_invalid"))
    )


def _tags(rendered_html: str) -> set[str]:
    return {match.lower() for match in re.findall(r"</?([A-Za-z][A-Za-z0-9]*)", rendered_html)}


ALLOWED_TAGS = {"h2", "h3", "p", "table", "thead", "tbody", "tr", "th", "td", "code", "ul", "li"}
ALLOWED_TAGS |= {"strong", "em", "a", "pre"}


@SLOW
@given(reports())
def test_the_text_report_shows_every_value_safely_on_its_own_lines(document):
    plain = _text_report(document, color=False)
    assert not UNSAFE_IN_LINES.search(plain)
    assert len(plain.splitlines()) == _report_lines(document)
    coloured = _text_report(document, color=True)  # markup in values: no MarkupError
    assert len(coloured.splitlines()) == _report_lines(document)


@SLOW
@given(reports())
def test_the_markdown_report_holds_no_html_of_its_own(document):
    markdown = render_markdown(document)
    assert not UNSAFE_IN_LINES.search(markdown)
    assert not RAW_TAG.search(markdown.replace("<https://", "").replace("<http://", ""))
    rendered = COMMONMARK.render(markdown)
    assert _tags(rendered) <= ALLOWED_TAGS
    assert re.findall(r'<a href="([^"]*)"', rendered) == [
        link for link in re.findall(r'<a href="([^"]*)"', rendered) if link.startswith("http")
    ]
    found = document["findings"]
    assert rendered.count("<h3>") == len(found)
    if found:
        body = rendered.split("<tbody>")[1].split("</tbody>")[0]
        assert body.count("<tr>") == len(found)
        assert body.count("<td>") == 3 * len(found)


KINDS = st.sampled_from(["interface", "route", "node", "pod", "neighbour", "fdb", "sysctl"])


@st.composite
def changes(draw: Any) -> dict[str, Any]:
    op = draw(st.sampled_from(["added", "removed", "changed"]))
    value = st.one_of(HOSTILE, st.dictionaries(HOSTILE, HOSTILE, max_size=2))
    before, after = draw(value), draw(value)
    if op == "changed" and isinstance(after, dict):
        before = {}
    return {
        "kind": draw(KINDS),
        "op": op,
        "node": draw(st.one_of(st.none(), HOSTILE)),
        "key": draw(st.lists(HOSTILE, min_size=1, max_size=3)),
        "before": before,
        "after": after,
        "noise": draw(st.one_of(st.none(), HOSTILE)),
    }


@st.composite
def diffs(draw: Any) -> dict[str, Any]:
    def finding() -> dict[str, Any]:
        return {"rule": draw(HOSTILE), "severity": draw(SEVERITY), "message": draw(HOSTILE)}

    new = [finding() for _ in range(draw(st.integers(0, 2)))]
    resolved = [finding() for _ in range(draw(st.integers(0, 2)))]
    listed = draw(st.lists(changes(), max_size=4))
    return {
        "format": "needle.diff/v1",
        "old": {"path": draw(HOSTILE), "created": draw(HOSTILE)},
        "new": {"path": draw(HOSTILE), "created": draw(HOSTILE)},
        "view": "changes",
        "findings": {"new": new, "resolved": resolved, "unchanged": []},
        "changes": listed,
        "not_compared": draw(st.lists(HOSTILE, max_size=2)),
        "summary": {
            "changes": len(listed),
            "new_findings": len(new),
            "resolved_findings": len(resolved),
            "unchanged_findings": 0,
            "by_kind": {},
            "left_out": {"per_boot": 0, "implied": 0},
        },
    }


@SLOW
@given(diffs())
def test_the_diff_text_shows_every_value_safely_on_its_own_line(document):
    text = diff_text(document)
    assert not UNSAFE_IN_LINES.search(text)
    found = len(document["findings"]["new"]) + len(document["findings"]["resolved"])
    listed = len(document["changes"])
    expected = 2 + (2 + listed if listed else 0) + (2 + found if found else 0)
    expected += 2 + len(document["not_compared"]) if document["not_compared"] else 0
    expected += 2 if not listed and not found else 0
    assert len(text.splitlines()) == expected


@SLOW
@given(diffs())
def test_the_diff_markdown_holds_no_html_of_its_own(document):
    markdown = diff_markdown(document)
    assert not UNSAFE_IN_LINES.search(markdown)
    assert not RAW_TAG.search(markdown)
    rendered = COMMONMARK.render(markdown)
    assert _tags(rendered) <= ALLOWED_TAGS - {"a"}
    found = len(document["findings"]["new"]) + len(document["findings"]["resolved"])
    listed = len(document["changes"]) + found + len(document["not_compared"])
    assert rendered.count("<li>") == listed


# -- collect's progress (node names and errors come from clusters) -----------------------


@SLOW
@given(HOSTILE, HOSTILE, st.booleans())
def test_collect_progress_shows_a_node_name_as_typed(name, error, live):
    from needle.collector.bundle.manifest import NodeRecord
    from needle.collector.progress import Progress

    stream = io.StringIO()
    with Progress(stream=stream, live=live, color=False) as progress:
        progress.queued(name, "netns")
        progress.running(name, "netns")
        progress.note(error)
        progress.finished(
            NodeRecord(
                name=name,
                transport="netns",
                dir="nodes/x",
                status="partial",
                errors=[error],
                duration_s=1.0,
            ),
            "netns",
        )
    shown = stream.getvalue()
    assert not UNSAFE_IN_LINES.search(shown)
    if not live:
        assert shown.count("\n") == 3
        assert f"needle: {safe_text(name)}: collecting from netns\n" in shown
