"""Checks a bundle manifest against the shipped JSON Schema of format v1."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import jsonschema

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
    error = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(manifest_schema()).iter_errors(manifest)
    )
    if error is not None:
        where = "/".join(str(part) for part in error.absolute_path) or "(top level)"
        raise BundleError(f"{origin}: manifest.json is invalid at {where}: {error.message}")
    return manifest
