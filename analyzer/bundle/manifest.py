"""Checks a bundle manifest against the shipped JSON Schema of format v1."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any

import fastjsonschema

from analyzer.errors import BundleError

FORMAT = "needle.bundle/v1"
FORMAT_FAMILY = "needle.bundle/"


@cache
def manifest_schema() -> dict[str, Any]:
    text = (resources.files("analyzer") / "schemas" / "manifest.v1.schema.json").read_text()
    return json.loads(text)


def parse_manifest(data: bytes, origin: str) -> dict[str, Any]:
    """Decode and validate manifest.json; raise BundleError with a one-line reason."""
    try:
        manifest = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{origin}: manifest.json is not valid JSON ({exc})") from None
    if not isinstance(manifest, dict):
        raise BundleError(f"{origin}: manifest.json is not a JSON object")
    declared = manifest.get("format")
    if isinstance(declared, str) and declared.startswith(FORMAT_FAMILY) and declared != FORMAT:
        raise BundleError(
            f"{origin}: bundle format {declared} is not one this needle reads ({FORMAT}); "
            "upgrade needle to read it"
        )
    if declared != FORMAT:
        raise BundleError(f"{origin}: not a needle bundle (manifest format is {declared!r})")
    try:
        manifest_validator()(manifest)
    except fastjsonschema.JsonSchemaValueException as error:
        where = "/".join(str(part) for part in error.path[1:]) or "(top level)"
        message = error.message.removeprefix(error.name).strip()
        raise BundleError(f"{origin}: manifest.json is invalid at {where}: {message}") from None
    return manifest


@cache
def manifest_validator() -> Callable[[Any], Any]:
    """The schema compiled to Python: a 1,000-node manifest holds ~10^6 command records,
    which the interpreting validator (jsonschema) takes minutes over."""
    schema = dict(manifest_schema())
    # the schema uses nothing past draft-07; fastjsonschema knows drafts up to 07
    schema["$schema"] = "http://json-schema.org/draft-07/schema#"
    return fastjsonschema.compile(schema)
