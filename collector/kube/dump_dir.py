"""Reads Kubernetes objects from kubectl dumps: any *.json / *.yaml / *.yml under a
directory, each holding one object, a List, or (YAML) several documents."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from needle.collector.errors import CollectorError
from needle.collector.kube.selection import RESOURCE_BY_KIND, keeps

SUFFIXES = (".json", ".yaml", ".yml")
MAX_FILE_BYTES = 512 * 1024 * 1024


@dataclass
class DumpContents:
    items: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {resource: [] for resource in RESOURCE_BY_KIND.values()}
    )
    problems: list[str] = field(default_factory=list)
    secrets_skipped: int = 0
    files_read: int = 0


def _documents(path: Path) -> list[Any]:
    text = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix == ".json":
        return [json.loads(text)]
    return [doc for doc in yaml.safe_load_all(text) if doc is not None]


def _unreadable(exc: Exception) -> str:
    """Why a dump file could not be read, in one phrase that names the place."""
    if isinstance(exc, OSError):
        return f"cannot read it ({exc.strerror or 'I/O error'})"
    if isinstance(exc, json.JSONDecodeError):
        return f"not valid JSON ({exc.msg.lower()} at line {exc.lineno}, column {exc.colno})"
    if isinstance(exc, yaml.YAMLError):
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or "cannot be parsed"
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        return f"not valid YAML ({problem}{where})"
    return "not JSON or YAML Kubernetes objects"


def _objects(document: Any) -> list[dict[str, Any]]:
    if not isinstance(document, dict):
        return []
    if str(document.get("kind", "")).endswith("List") and isinstance(document.get("items"), list):
        found: list[dict[str, Any]] = []
        for item in document["items"]:
            found.extend(_objects(item))
        return found
    return [document]


def _identity(obj: dict[str, Any]) -> tuple[str, str, str]:
    meta = obj.get("metadata") or {}
    return (str(obj.get("kind")), str(meta.get("namespace") or ""), str(meta.get("name") or ""))


def read_dump_dir(directory: Path) -> DumpContents:
    if not directory.is_dir():
        raise CollectorError(f"--kube-dir {directory} is not a directory")
    contents = DumpContents()
    seen: set[tuple[str, str, str]] = set()
    files = sorted(p for p in directory.rglob("*") if p.is_file() and p.suffix in SUFFIXES)
    for path in files:
        if path.stat().st_size > MAX_FILE_BYTES:
            contents.problems.append(f"{path}: larger than {MAX_FILE_BYTES} bytes, skipped")
            continue
        try:
            documents = _documents(path)
        except (ValueError, yaml.YAMLError, OSError) as exc:
            contents.problems.append(f"{path}: {_unreadable(exc)}")
            continue
        contents.files_read += 1
        for document in documents:
            for obj in _objects(document):
                kind = str(obj.get("kind", ""))
                if kind == "Secret":
                    contents.secrets_skipped += 1
                    continue
                name = str((obj.get("metadata") or {}).get("name") or "")
                resource = RESOURCE_BY_KIND.get(kind)
                if resource is None or not keeps(kind, name):
                    continue
                identity = _identity(obj)
                if identity in seen:
                    continue
                seen.add(identity)
                contents.items[resource].append(obj)
    if contents.files_read == 0 and not contents.problems:
        raise CollectorError(f"--kube-dir {directory} holds no *.json or *.yaml files")
    return contents


def as_list(items: list[dict[str, Any]]) -> dict[str, Any]:
    """A List object as `kubectl get -o json` prints it."""
    return {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": items}
