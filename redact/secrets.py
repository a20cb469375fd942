"""Free text that looks like a secret, removed: the value of a key or flag whose name says
token, password, secret, credential or key; bearer tokens, JWTs and private keys
wherever they appear.

The same words as the collector's node-side redaction (docs/collecting.md), so a value
the node already blanked and one that came another way are treated alike.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from typing import Any

REDACTED = "<redacted>"
_HIDDEN_WORDS = (
    r"(?:token|secret|passw(?:or)?d?|credential|api[_-]?key|access[_-]?key"
    r"|private[_-]?key|psk|auth[_-]?key|client[_-]?key|key[_-]?data)"
)
# name=value, name: value, --name value, "name": "value" (also inside YAML or INI text)
_ASSIGNMENT = re.compile(
    rf"""(?ix)
    (?P<name>(?<![A-Za-z0-9])[A-Za-z0-9_.-]*{_HIDDEN_WORDS}[A-Za-z0-9_.-]*)
    (?P<sep>["']?[ \t]*[:=][ \t]*|[ \t]+(?=[^\s-]))
    # a quoted value is removed whole; a bare one up to a space or a separator; an
    # object or a list (a JSON value under a name such as serviceAccountToken) is left
    # for what is inside it
    (?:"(?P<double>(?:[^"\\\n]|\\.)*)"|'(?P<single>[^'\n]*)'|(?P<value>[^\s"',;}}\]{{\[][^\s"',;}}\]]*))
    """
)
_FLAG = re.compile(rf"(?i)^--?[A-Za-z0-9_.-]*{_HIDDEN_WORDS}[A-Za-z0-9_.-]*$")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")
_PRIVATE_KEY = re.compile(
    r"-----BEGIN (?:[A-Z ]+ )?PRIVATE KEY-----.*?(?:-----END (?:[A-Z ]+ )?PRIVATE KEY-----|\Z)",
    re.DOTALL,
)
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/@]+:)[^\s@/]+@")
# Values that are not secrets even after a secret-sounding name: JSON literals, a path
# to where the secret is kept, the collector's own mark.
_HARMLESS = re.compile(r"(?i)^(?:true|false|null|none|\d+|<redacted>|/[^\s]*)$")
_SECRET_ENV = re.compile(rf"(?i){_HIDDEN_WORDS}")


def text(value: str) -> str:
    """`value` with every secret-looking value replaced by <redacted>."""
    if not value:
        return value
    value = _PRIVATE_KEY.sub(
        f"-----BEGIN PRIVATE KEY-----{REDACTED}-----END PRIVATE KEY-----", value
    )
    value = _JWT.sub(REDACTED, value)
    value = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", value)
    value = _URL_PASSWORD.sub(lambda m: f"{m.group(1)}{REDACTED}@", value)
    if not _SECRET_ENV.search(value):  # no name a secret follows: the costly pass finds none
        return value
    return _ASSIGNMENT.sub(_assignment, value)


def _assignment(match: re.Match[str]) -> str:
    double, single = match.group("double"), match.group("single")
    value = double if double is not None else single if single is not None else match["value"]
    spaced = not match.group("sep").strip()
    if _HARMLESS.match(value) or (spaced and not match.group("name").startswith("-")):
        return match.group()
    quote = '"' if double is not None else "'" if single is not None else ""
    return f"{match.group('name')}{match.group('sep')}{quote}{REDACTED}{quote}"


def argv(
    args: list[Any],
    private: Collection[str] = frozenset(),
    hidden: Callable[[object], None] | None = None,
) -> list[Any]:
    """A command line with the value after each secret flag (`--token X`) and inside each
    `--token=X` removed; and so the value of each flag in `private` (the collector's
    `--kubeconfig X`, `--kubeconfig=X`), which `hidden` is told of first (to be removed
    wherever else it is repeated). The private flags are read in what the secret pass
    leaves."""
    out: list[Any] = []
    hide_next = hide_private = False
    for arg in args:
        if not isinstance(arg, str):
            value, hide_next = arg, False
        elif hide_next and not arg.startswith("-"):
            value, hide_next = (arg if _HARMLESS.match(arg) else REDACTED), False
        else:
            hide_next = bool(_FLAG.match(arg))
            value = text(arg)
        if hide_private:
            if hidden is not None:
                hidden(value)
            out.append(REDACTED)
            hide_private = False
            continue
        flag, equals, inside = value.partition("=") if isinstance(value, str) else ("", "", "")
        if equals and flag in private:
            if hidden is not None:
                hidden(inside)
            out.append(f"{flag}={REDACTED}")
            continue
        hide_private = isinstance(value, str) and value in private
        out.append(value)
    return out


def env_entry(entry: dict[str, Any]) -> None:
    """A container's env entry whose name says secret loses its literal value (a
    valueFrom reference names where the secret is, not the secret: kept)."""
    name = entry.get("name")
    value = entry.get("value")
    if (
        isinstance(name, str)
        and _SECRET_ENV.search(name)
        and isinstance(value, str)
        and not _HARMLESS.match(value)
    ):
        entry["value"] = REDACTED
