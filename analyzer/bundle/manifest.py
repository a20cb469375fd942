"""Checks a bundle manifest against the shipped JSON Schema of format v1."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any

import fastjsonschema
import orjson
from needle.analyzer.errors import BundleError

FORMAT = "needle.bundle/v1"
FORMAT_FAMILY = "needle.bundle/"


@cache
def manifest_schema() -> dict[str, Any]:
    text = (resources.files("needle.analyzer") / "schemas" / "manifest.v1.schema.json").read_text()
    return json.loads(text)


def parse_manifest(data: bytes, origin: str) -> dict[str, Any]:
    """Decode and validate manifest.json; raise BundleError with a one-line reason."""
    manifest = decode_manifest(data, origin)
    validate_manifest(manifest, origin)
    return manifest


def decode_manifest(data: bytes, origin: str) -> dict[str, Any]:
    """The manifest as a dict, checked only for being JSON of this format's family (the
    quick part: validate_manifest() is the thorough one)."""
    try:
        manifest = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if "UTF-8" in exc.msg:  # orjson reads bytes: its decoding errors say so
            raise BundleError(f"{origin}: manifest.json is not UTF-8 text") from None
        where = f"{exc.msg} at line {exc.lineno}, column {exc.colno}"
        raise BundleError(f"{origin}: manifest.json is not valid JSON ({where})") from None
    if not isinstance(manifest, dict):
        raise BundleError(f"{origin}: manifest.json is not a JSON object")
    if len(data) <= DUPLICATE_CHECK_BYTES:
        _refuse_duplicate_keys(data, origin)
    declared = manifest.get("format")
    if isinstance(declared, str) and declared.startswith(FORMAT_FAMILY) and declared != FORMAT:
        raise BundleError(
            f"{origin}: bundle format {declared} is not one this needle reads ({FORMAT}); "
            "upgrade needle to read it"
        )
    if declared != FORMAT:
        raise BundleError(f"{origin}: not a needle bundle (manifest format is {declared!r})")
    return manifest


# Up to this size a manifest is checked for keys given twice in one object (JSON
# decoders keep the last silently: a hand-edited or hostile manifest could show one
# value to a reader and another to needle). The check parses again at ~90 ns a byte,
# so a collector's large manifest (~17 MB at 100 nodes, machine-written) is not held to it.
DUPLICATE_CHECK_BYTES = 4 * 1024 * 1024


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return found


def _refuse_duplicate_keys(data: bytes, origin: str) -> None:
    try:
        json.loads(data, object_pairs_hook=_unique_pairs)
    except _DuplicateKey as duplicate:
        raise BundleError(
            f"{origin}: manifest.json gives the key {duplicate.key!r} twice in one object; "
            "refusing it (which value is meant?)"
        ) from None
    except (ValueError, RecursionError):
        return  # orjson read it: what the stdlib parser refuses is not a duplicate


def validate_manifest(
    manifest: dict[str, Any], origin: str, reference: dict[str, Any] | None = None
) -> None:
    """Raise BundleError naming where `manifest` breaks the schema.

    With a `reference` (the other manifest of a diff, validated too), a record equal to
    the reference's record at the same place is valid exactly when that one is, and is
    not checked twice: two snapshots of a cluster share most of their ~10^6 records.
    """
    # the outline by the compiled schema, each node's own fields too; their long lists
    # (~10^6 command and ~10^5 netns records) by hand-written checks held to the schema
    # (tests/test_manifest_commands.py): the compiled schema took ~1 ms per node
    _check(_outline_validator(), manifest, origin, ())
    known_nodes = _list(reference, "nodes") if reference is not None else []
    for n, node in enumerate(manifest["nodes"]):
        known = known_nodes[n] if n < len(known_nodes) else None
        if known is not None and _same(node, known):
            continue
        known = known if type(known) is dict else {}
        outline = dict(node) if type(node) is dict else node
        for key in ("netns", "commands"):
            if type(outline) is dict and type(outline.get(key)) is list:
                outline[key] = []
        _check(_node_validator(), outline, origin, ("nodes", n))
        for key, problem_of in (("netns", netns_problem), ("commands", command_problem)):
            records = _list(node, key)
            _check_records(records, _list(known, key), problem_of, origin, f"nodes/{n}/{key}")


def _same(record: object, known: object) -> bool:
    """Equal as JSON: == alone takes true for 1 and 1 for 1.0, and a schema does not."""
    return record == known and orjson.dumps(record) == orjson.dumps(known)


def _list(record: dict[str, Any], key: str) -> list[Any]:
    value = record.get(key)
    return value if type(value) is list else []


def _check_records(
    records: list[Any],
    known: list[Any],
    problem_of: Callable[[object], str | None],
    origin: str,
    where: str,
) -> None:
    """Each record not equal to the known one at its place, by `problem_of`."""
    for i, record in enumerate(records):
        if i < len(known) and _same(record, known[i]):
            continue
        problem = problem_of(record)
        if problem is not None:
            raise BundleError(f"{origin}: manifest.json is invalid at {where}/{i}: {problem}")


def _check(
    validator: Callable[[Any], Any], value: object, origin: str, at: tuple[str | int, ...]
) -> None:
    try:
        validator(value)
    except fastjsonschema.JsonSchemaValueException as error:
        where = "/".join(str(part) for part in (*at, *error.path[1:])) or "(top level)"
        raise BundleError(
            f"{origin}: manifest.json is invalid at {where}: {_schema_problem(error)}"
        ) from None


def _schema_problem(error: fastjsonschema.JsonSchemaValueException) -> str:
    """The schema's complaint without the validator's wording of Python lists."""
    if error.rule == "required" and type(error.value) is dict:
        missing = [key for key in error.rule_definition or () if key not in error.value]
        if missing:
            return "missing " + ", ".join(missing)
    return error.message.removeprefix(error.name).strip()


def _compilable_schema() -> dict[str, Any]:
    """The schema for fastjsonschema, with command and netns records left to
    command_problem() and netns_problem()."""
    schema = copy.deepcopy(manifest_schema())
    # the schema uses nothing past draft-07; fastjsonschema knows drafts up to 07
    schema["$schema"] = "http://json-schema.org/draft-07/schema#"
    schema["$defs"]["command"] = {"type": "object"}
    schema["$defs"]["netns"] = {"type": "object"}
    return schema


@cache
def _outline_validator() -> Callable[[Any], Any]:
    """The schema with node records left to _node_validator() (fastjsonschema compiles
    it to Python: the interpreting jsonschema took minutes over a 1,000-node manifest)."""
    schema = _compilable_schema()
    schema["properties"]["nodes"]["items"] = {"type": "object"}
    return fastjsonschema.compile(schema)


@cache
def _node_validator() -> Callable[[Any], Any]:
    """One node record (its commands left to command_problem())."""
    return fastjsonschema.compile(_definition(_compilable_schema(), "node"))


def _definition(schema: dict[str, Any], name: str) -> dict[str, Any]:
    return {"$schema": schema["$schema"], "$defs": schema["$defs"], "$ref": f"#/$defs/{name}"}


_OPTIONAL_TEXT = ("netns", "interface")
_OPTIONAL_PATHS = ("output", "stderr")
_OPTIONAL_FLAGS = ("truncated", "missing_tool")


def is_relpath(value: str) -> bool:
    """A path inside the bundle: relative, no '.', '..' or empty parts, no NUL. (Said
    with substring tests, which run in C: a bundle has ~10^6 paths to check.)"""
    return (
        bool(value)
        and value[0] != "/"
        and value[-1] != "/"
        and "\\" not in value
        and "\x00" not in value
        and "//" not in value
        and value not in (".", "..")
        and not value.startswith(("./", "../"))
        and not value.endswith(("/.", "/.."))
        and "/./" not in value
        and "/../" not in value
    )


def _integral(value: object) -> bool:
    """JSON Schema's "integer": an int, or a float with no fraction (never a bool)."""
    return type(value) is int or (type(value) is float and value.is_integer())


@cache
def _netns_id_pattern() -> re.Pattern[str]:
    return re.compile(manifest_schema()["$defs"]["netns"]["properties"]["id"]["pattern"])


def netns_problem(netns: object) -> str | None:
    """Why a netns record breaks the schema's "netns" definition, or None.

    Hand-written for speed (~10^5 per manifest); tests/test_manifest_commands.py holds
    it to the schema."""
    if type(netns) is not dict:
        return "must be object"
    for key in ("id", "dir"):
        if key not in netns:
            return f"'{key}' is a required property"
    netns_id = netns["id"]
    if type(netns_id) is not str or not _netns_id_pattern().search(netns_id):
        return "id must be a name of letters, digits, '.', '_' and '-'"
    directory = netns["dir"]
    if type(directory) is not str or not is_relpath(directory):
        return "dir must be a relative path inside the bundle"
    value = netns.get("inode")
    if value is not None and (not _integral(value) or value < 0):
        return "inode must be an integer >= 0 or null"
    value = netns.get("nsid")
    if value is not None and not _integral(value):
        return "nsid must be integer or null"
    value = netns.get("name")
    if value is not None and type(value) is not str:
        return "name must be string or null"
    if "pids" in netns:
        pids = netns["pids"]
        if type(pids) is not list or not all(_integral(pid) and pid >= 0 for pid in pids):
            return "pids must be a list of integers >= 0"
    return None


def command_problem(command: object) -> str | None:
    """Why a command record breaks the schema's "command" definition, or None.

    Hand-written for speed; tests/test_manifest_commands.py holds it to the schema."""
    if type(command) is not dict:
        return "must be object"
    for key in ("id", "argv", "exit_code", "timed_out", "output"):
        if key not in command:
            return f"'{key}' is a required property"
    cid, argv = command["id"], command["argv"]
    if type(cid) is not str or not cid:
        return "id must be a non-empty string"
    if type(argv) is not list or any(type(arg) is not str for arg in argv):
        return "argv must be a list of strings"
    value = command.get("exit_code")
    if value is not None and not _integral(value):
        return "exit_code must be integer or null"
    if type(command["timed_out"]) is not bool:
        return "timed_out must be boolean"
    for key in _OPTIONAL_FLAGS:
        if key in command and type(command[key]) is not bool:
            return f"{key} must be boolean"
    for key in _OPTIONAL_TEXT:
        value = command.get(key)
        if value is not None and type(value) is not str:
            return f"{key} must be string or null"
    for key in _OPTIONAL_PATHS:
        value = command.get(key)
        if value is not None and (type(value) is not str or not is_relpath(value)):
            return f"{key} must be a relative path inside the bundle or null"
    for key in ("duration_s",):
        value = command.get(key)
        if value is not None and (type(value) not in (int, float) or value < 0):
            return f"{key} must be a number >= 0 or null"
    value = command.get("bytes")
    if value is not None and (not _integral(value) or value < 0):
        return "bytes must be an integer >= 0 or null"
    return None
