"""The page: Jinja2 templates with autoescape, and the one boundary every string crosses
on its way into it.

Every `{{ value }}` is first made safe to see (terminal.safe_text: control characters,
bidi overrides and line breaks shown escaped), then HTML-escaped by Jinja's autoescape,
in text and in attribute values alike. The page loads nothing: its one style sheet and
one script are inline, and its Content-Security-Policy allows exactly those two (by
hash) and nothing else, so even a string that slipped through could not fetch or run
anything."""

from __future__ import annotations

import base64
import functools
import hashlib
from importlib import resources
from typing import Any

from jinja2 import Environment, FunctionLoader, StrictUndefined
from markupsafe import Markup
from needle.analyzer.report.html.diff_scene import DiffScene
from needle.analyzer.report.html.layout import lay_out
from needle.analyzer.report.html.views import Scene
from needle.analyzer.terminal import plural, safe_text

_PACKAGE = "needle.analyzer.report.html"


def _asset(name: str) -> str:
    return resources.files(_PACKAGE).joinpath(name).read_text(encoding="utf-8")


def _template(name: str) -> str:
    return _asset(f"templates/{name}")


def _shown(value: Any) -> Any:
    """The boundary: what a person may safely see of `value` (Jinja escapes it next)."""
    if value is None or isinstance(value, Markup | int | float):
        return "" if value is None else value
    return safe_text(value)


def _digest(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


@functools.cache
def environment() -> Environment:
    """The templates' environment, made once (compiling the templates costs ~0.1 s)."""
    env = Environment(
        loader=FunctionLoader(_template),
        autoescape=True,
        finalize=_shown,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["plural"] = plural
    return env


def _render(template: str, **context: Any) -> str:
    style = _asset("assets/report.css")
    script = _asset("assets/report.js")
    policy = (
        f"default-src 'none'; style-src {_digest(style)}; script-src {_digest(script)}; "
        "img-src 'none'; base-uri 'none'; form-action 'none'"
    )
    return (
        environment()
        .get_template(template)
        .render(
            style=Markup(style),  # noqa: S704 - our own file, shipped with the package
            script=Markup(script),  # noqa: S704 - our own file, shipped with the package
            policy=policy,
            **context,
        )
    )


def render_page(scene: Scene) -> str:
    """`needle analyze --format html`."""
    return _render("report.html.j2", scene=scene, layout=lay_out(scene.nodes, scene.edges))


def render_diff_page(scene: DiffScene) -> str:
    """`needle diff --format html`."""
    return _render("diff.html.j2", scene=scene, layout=lay_out(scene.nodes, scene.edges))
