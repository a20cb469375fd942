"""Typed access to the Kubernetes objects of a bundle: pydantic models of exactly the
fields the analyzer reads, each object validated once when the model is built.

A field of the wrong type (a `spec` that is a string, a `nodeName` that is a list, a
`podCIDR` that is a number, JSON nested deeper than `MAX_DEPTH`) is dropped and becomes
one `ObjectProblem` naming the object, the field and what was wrong; the rest of the
object, and every other object, is still read. An object with no usable name is dropped
whole, with its problem."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, ValidationError

MAX_DEPTH = 100
"""Deepest nesting of JSON read from a bundle's annotations and config maps."""

FLANNEL = "flannel.alpha.coreos.com/"
BACKEND_DATA = f"{FLANNEL}backend-data"


@dataclass(frozen=True, slots=True)
class ObjectProblem:
    """One invalid field of one object: what the report's `coverage.objects_invalid` lists."""

    kind: str  # Node, Pod, ConfigMap
    name: str  # namespace/name, name, or `<file>[index]` when the object has no name
    field: str  # the field's path, e.g. spec.podCIDR
    problem: str  # in plain words
    file: str  # the bundle file holding the object

    def to_json(self) -> dict[str, str]:
        return {
            "kind": self.kind,
            "name": self.name,
            "field": self.field,
            "problem": self.problem,
            "file": self.file,
        }


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class ObjectMeta(_Strict):
    name: str | None = None
    namespace: str | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


class NodeAddress(_Strict):
    type: str | None = None
    address: str | None = None


class NodeCondition(_Strict):
    type: str | None = None
    status: str | None = None


class NodeSpec(_Strict):
    podCIDR: str | None = None
    podCIDRs: list[str] | None = None


class NodeStatus(_Strict):
    addresses: list[NodeAddress] | None = None
    conditions: list[NodeCondition] | None = None


class NodeObject(_Strict):
    metadata: ObjectMeta | None = None
    spec: NodeSpec | None = None
    status: NodeStatus | None = None


class PodSpec(_Strict):
    nodeName: str | None = None
    hostNetwork: bool | None = None


class PodStatus(_Strict):
    podIP: str | None = None
    phase: str | None = None


class PodObject(_Strict):
    metadata: ObjectMeta | None = None
    spec: PodSpec | None = None
    status: PodStatus | None = None


class ConfigMapObject(_Strict):
    metadata: ObjectMeta | None = None
    data: dict[str, str] | None = None


class BackendData(_Strict):
    """flannel.alpha.coreos.com/backend-data: a JSON object in a string."""

    VtepMAC: str | None = None


class NetConfBackend(_Strict):
    Type: str | None = None
    VNI: int | None = None
    Port: int | None = None
    DirectRouting: bool | None = None


class NetConf(_Strict):
    """net-conf.json of flannel's config map."""

    Network: str | None = None
    IPv6Network: str | None = None
    SubnetLen: int | None = None
    Backend: NetConfBackend | None = None


Model = TypeVar("Model", bound=BaseModel)

_TYPE_WORDS = {
    "str": "text",
    "int": "a whole number",
    "bool": "true or false",
    "dict": "an object",
    "list": "a list",
    "NoneType": "null",
    "float": "a number",
}


def _type_word(value: object) -> str:
    name = type(value).__name__
    return _TYPE_WORDS.get(name, name)


def _field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int) or (path and ("." in part or "/" in part)):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path


def _plain(error: dict[str, Any]) -> str:
    kind = error["type"]
    value = error.get("input")
    expected = {
        "string_type": "text",
        "int_type": "a whole number",
        "bool_type": "true or false",
        "dict_type": "an object",
        "list_type": "a list",
        "model_type": "an object",
        "model_attributes_type": "an object",
    }.get(kind)
    if expected is not None:
        return f"is {_type_word(value)}, not {expected}"
    return str(error.get("msg", kind)).lower()


def nesting_exceeds(value: object, limit: int = MAX_DEPTH) -> bool:
    """Whether `value` (parsed JSON) nests containers deeper than `limit`; iterative, so
    any depth is safe to ask about."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def load_json(data: bytes | str, whole_file: bool = False) -> tuple[Any, str | None]:
    """(value, None), or (None, why not) for broken JSON or JSON nested deeper than
    `MAX_DEPTH` (never a RecursionError). A `whole_file` (a List of objects) is refused
    only past orjson's own limit (1,024 levels): the typed models read no deep field, so
    depth inside one object's other fields harms nothing."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if "depth" in str(exc).lower() or "recursion" in str(exc).lower():
            limit = 1024 if whole_file else MAX_DEPTH
            return None, f"is JSON nested deeper than {limit} levels"
        return None, f"is not JSON ({exc})"
    if not whole_file and nesting_exceeds(value):
        return None, f"is JSON nested deeper than {MAX_DEPTH} levels"
    return value, None


def _drop(target: Any, loc: tuple[int | str, ...]) -> None:
    """Remove the field at `loc` from `target` (list items become None, filtered later)."""
    for part in loc[:-1]:
        try:
            target = target[part]
        except (KeyError, IndexError, TypeError):
            return
    last = loc[-1] if loc else None
    if isinstance(target, dict) and last in target:
        del target[last]
    elif isinstance(target, list) and isinstance(last, int) and last < len(target):
        target[last] = _DROPPED


_DROPPED = object()


def _without_dropped(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_dropped(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_dropped(v) for v in value if v is not _DROPPED]
    return value


def _trim_loc(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """A list item's own field errors drop the whole item: `addresses[0].address`
    becomes `addresses[0]`, the shortest path whose removal leaves valid data."""
    for index, part in enumerate(loc):
        if isinstance(part, int):
            return loc[: index + 1]
    return loc


def validate(
    model: type[Model], value: Any, kind: str, name: str, file: str, prefix: str = ""
) -> tuple[Model | None, list[ObjectProblem]]:
    """`value` as `model`, each invalid field dropped with one problem; None when even the
    top level is of the wrong type."""
    try:
        return model.model_validate(value), []
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
    problems: list[ObjectProblem] = []
    if any(not error["loc"] for error in errors):
        where = prefix or "(the object)"
        problems.append(
            ObjectProblem(kind, name, where, f"is {_type_word(value)}, not an object", file)
        )
        return None, problems
    fixed = copy.deepcopy(value)
    seen: set[tuple[int | str, ...]] = set()
    for error in errors:
        full = tuple(error["loc"])
        loc = _trim_loc(full)  # a list item with a bad field is dropped whole
        if loc in seen:
            continue
        seen.add(loc)
        field = _field_path(full)
        if prefix:
            field = f"{prefix}.{field}" if not field.startswith("[") else prefix + field
        problems.append(ObjectProblem(kind, name, field, _plain(error), file))
        _drop(fixed, loc)
    try:
        return model.model_validate(_without_dropped(fixed)), problems
    except ValidationError:  # pragma: no cover - dropping every bad field leaves it valid
        return None, problems
