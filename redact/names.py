"""Names mapped to stable tokens: nodes, namespaces, pods, hosts, and the interface names
that carry an identity (veth and the like).

A token is a keyed hash of the name, so one key gives one token in every bundle it
redacts (a before/after pair still diffs). Well-known namespaces (kube-system, ...) are
the same in every cluster and the analyzer looks for them, so their names are kept, and
so are the names of the system pods in them (kube-proxy-x7k2p says nothing about the
customer) but for the node names they embed (etcd-<node>). A pod a controller made keeps
the shape of its name, its stem mapped: web-7d4b9c8f6d-x2x7q becomes
pod-1a2b3c4d5e-7d4b9c8f6d-x2x7q, so the pods of one ReplicaSet still share an owner and
diff still recognises a rollout.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping

# Namespaces every cluster has or a CNI installs: no customer's data, and what the
# analyzer looks for to find the CNI's objects.
KEPT_NAMESPACES = frozenset(
    {
        "default",
        "kube-system",
        "kube-public",
        "kube-node-lease",
        "kube-flannel",
        "calico-system",
        "calico-apiserver",
        "tigera-operator",
        "cilium",
        "cilium-system",
    }
)
# Of those, the namespaces whose pods are the cluster's own components: their names are
# kept (the analyzer knows kube-proxy by its pods' names).
SYSTEM_NAMESPACES = KEPT_NAMESPACES - {"default"}

# Interface names made from a random or hashed suffix: the suffix is mapped, the prefix
# (which says what the device is) kept. Names that carry meaning (cni0, flannel.1, eth0,
# ens3) match none of these and stay.
_INTERFACE = re.compile(
    r"(veth|cali|lxc|tap|vnet|vxlan-v6-|cilium_|enc|azv|eni|gke)([0-9a-f]{6,15})"
)
_TOKEN_HEX = 10  # 40 bits: 110,000 pods give a collision once in ~200 such bundles
# Which kind a name takes when it is several at once (a node also a hostname).
_PRIORITY = ("node", "host", "ns", "pod")


_LIMIT = 1 << 14  # answers remembered (lookups, interfaces); past that, forgotten at a trim
_CHUNK = 1024  # pod names joined into one string
# How a registered name's replacement is made (a "recipe"), packed in an int: the kind
# (its place in the index's list) whose token replaces the first `s` characters, then
# characters s to b kept, then (when g > 0) "-" and the characters from g on. A pod
# web-7d4b9c8f6d-x2x7q: the token of "web", then "-7d4b9c8f6d", then "-x2x7q".
_FIXED = 0xFF  # the kind of a system pod's name with node names inside: kept as replaced
_SYSTEM = 1 << 24  # in a pod's registration: a pod of a system namespace


def _digest(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()


def _recipe(kind: int, s: int, b: int, g: int) -> int:
    return kind | s << 8 | b << 16 | g << 24


class NameMap:
    """The names of one bundle and their tokens. `register_*` while scanning; then
    `lookup` (exact names) and `interface` answer while rewriting.

    Memory: a cluster's pods are most of its names, so they are held packed (`_Pods`,
    `_Index`: some 60 bytes a pod, where dicts of strings took 300) and every answer is
    recomputed from the key when the bounded memories of recent answers forgot it."""

    def __init__(
        self,
        key: bytes,
        keep: bool = False,
        on_interface: Callable[[str, str], None] | None = None,
    ) -> None:
        self.key = key
        self.keep = keep  # --keep-names: nothing is mapped
        self._on_interface = on_interface  # told of every interface name mapped (the map)
        self._kinds: dict[str, str] = {}  # node, host, namespace name -> its kind
        self._pods = _Pods()
        self._index: _Index | None = None  # built from the above at the first lookup
        self._found: dict[str, str | None] = {}  # recent lookups
        self._interfaces: dict[str, str] = {}  # recent interface names mapped
        self.plain_interfaces: set[str] = set()

    # --- scanning ----------------------------------------------------------------------
    def register(self, kind: str, name: object) -> None:
        """A node ("node"), hostname ("host") or namespace ("ns") name."""
        if self.keep or not isinstance(name, str) or not name or len(name) > 253:
            return
        if kind == "ns" and name in KEPT_NAMESPACES:
            return
        current = self._kinds.get(name)
        if current is None or _PRIORITY.index(kind) < _PRIORITY.index(current):
            self._kinds[name] = kind
        self._changed()

    def register_pod(
        self, namespace: object, name: object, generate_name: object, template_hash: object
    ) -> None:
        if self.keep or not isinstance(name, str) or not name or len(name) > 253:
            return
        generate = generate_name if isinstance(generate_name, str) else ""
        hash_ = template_hash if isinstance(template_hash, str) else ""
        system = _SYSTEM if namespace in SYSTEM_NAMESPACES else 0
        s, b, g = _pod_shape(name, generate, hash_)
        self._pods.append(name, system | s | b << 8 | g << 16)
        self._changed()

    def _changed(self) -> None:
        if self._index is not None:  # answers were given: they may be others now
            self._index = None
            self._found.clear()

    # --- answers -----------------------------------------------------------------------
    def token(self, kind: str, name: str) -> str:
        return f"{kind}-{_digest(self.key, name)[:_TOKEN_HEX]}"

    @property
    def mapped(self) -> Mapping[str, str]:
        """Every registered name and its replacement, in one dict (for tests and small
        bundles: the redaction asks `lookup`, the map file `pairs`)."""
        return dict(self.pairs())

    def pairs(self) -> Iterator[tuple[str, str]]:
        """Every registered name and its replacement."""
        index = self._built()
        for position in range(len(index)):
            name = index.name(position, self._pods)
            yield name, self._replacement(name, index.recipes[position], index)

    def lookup(self, name: str) -> str | None:
        found = self._found.get(name, _UNKNOWN)
        if found is _UNKNOWN:
            index = self._built()
            recipe = index.find(name, self._pods)
            found = None if recipe is None else self._replacement(name, recipe, index)
            self._found[name] = found
        return found  # type: ignore[return-value]

    def _replacement(self, name: str, recipe: int, index: _Index) -> str:
        kind = recipe & 0xFF
        if kind == _FIXED:
            return index.fixed[name]
        s, b, g = recipe >> 8 & 0xFF, recipe >> 16 & 0xFF, recipe >> 24
        token = self.token(index.kind_names[kind], name[:s])
        return f"{token}{name[s:b]}-{name[g:]}" if g else f"{token}{name[s:b]}"

    def is_machine(self, name: str) -> bool:
        """Whether `name` is a node's or a host's name: mapped wherever it is a whole value
        (a label, an affinity term), plain word or not."""
        return self._kinds.get(name) in ("node", "host")

    def interface(self, name: str) -> str | None:
        """The mapped name of an interface whose name carries a random suffix, else None."""
        if self.keep:
            return None
        known = self._interfaces.get(name)
        if known is not None:
            return known
        match = _INTERFACE.fullmatch(name)
        if match is None:
            return None
        prefix, suffix = match.groups()
        mapped = prefix + _digest(self.key, "if:" + name)[: len(suffix)]
        self._interfaces[name] = mapped
        if self._on_interface is not None:
            self._on_interface(name, mapped)
        return mapped

    def register_interface(self, name: object) -> None:
        """A host interface whose mapped suffix has no digit (vethabcdefab): the text
        pass looks only at words with a digit, a dash or a dot, so it is listed."""
        if (
            isinstance(name, str)
            and not any(char.isdigit() for char in name)
            and self.interface(name) is not None
        ):
            self.plain_interfaces.add(name)

    def trim(self) -> None:
        """Forget the recent answers once there are too many (they are recomputed)."""
        if len(self._found) > _LIMIT:
            self._found.clear()
        if len(self._interfaces) > _LIMIT:
            self._interfaces.clear()

    def summary(self) -> dict[str, int]:
        """How many names of each kind were mapped (never which)."""
        counts: dict[str, int] = {}
        for kind in self._kinds.values():
            counts[kind] = counts.get(kind, 0) + 1
        counts["pod"] = self._built().pods
        return counts

    def _built(self) -> _Index:
        if self._index is None:
            self._index = _Index.build(self._kinds, self._pods, self.token)
        return self._index


_UNKNOWN = object()


class _Pods:
    """The pods registered, in order: each name, and its shape and whether it is a
    system pod (in one int), held as a few long strings and two arrays."""

    def __init__(self) -> None:
        self._joined: list[str] = []  # _CHUNK names each
        self._open: list[str] = []  # the names not yet joined
        self._ends = array("I")  # where each name ends in its chunk
        self.shapes = array("I")

    def append(self, name: str, shape: int) -> None:
        self._ends.append(len(name) + (self._ends[-1] if self._open else 0))
        self._open.append(name)
        self.shapes.append(shape)
        if len(self._open) == _CHUNK:
            self._joined.append("".join(self._open))
            self._open = []

    def __len__(self) -> int:
        return len(self.shapes)

    def name(self, position: int) -> str:
        chunk, within = divmod(position, _CHUNK)
        if chunk == len(self._joined):
            return self._open[within]
        start = self._ends[position - 1] if within else 0
        return self._joined[chunk][start : self._ends[position]]


class _Index:
    """Every registered name and its recipe, found by the name's hash: the names are not
    held again, but pointed to (the first `length` characters of a pod's name, or a name
    of `kinds`)."""

    def __init__(self) -> None:
        self.hashes = array("q")  # sorted
        self.recipes = array("I")
        self.sources = array("i")  # a pod's position, or ~ the position in `kinds`
        self.lengths = array("B")
        self.kinds: list[str] = []
        self.kind_names: list[str] = []  # what the recipes' kinds stand for
        self.fixed: dict[str, str] = {}  # system pods' names with node names replaced
        self.pods = 0  # distinct names of pods outside the system namespaces

    @classmethod
    def build(cls, kinds: dict[str, str], pods: _Pods, token: Callable[[str, str], str]) -> _Index:
        """Node, host and namespace names first, then each pod's names in the order
        registered, the first claim to a name winning (and a pod whose own name is taken
        adding none)."""
        index = cls()
        index.kinds = list(kinds)
        index.kind_names = list(dict.fromkeys(["pod", *kinds.values()]))
        code = {kind: number for number, kind in enumerate(index.kind_names)}
        # name -> (recipe, source, length): for this build only
        claimed: dict[str, tuple[int, int, int]] = {
            name: (_recipe(code[kind], len(name), len(name), 0), ~number, len(name))
            for number, (name, kind) in enumerate(kinds.items())
        }
        nodes = sorted((n for n, k in kinds.items() if k == "node"), key=len, reverse=True)
        tokens = {node: token("node", node) for node in nodes}
        counted: set[str] = set()
        for position in range(len(pods)):
            name, shape = pods.name(position), pods.shapes[position]
            if not shape & _SYSTEM:
                counted.add(name)
            if name in claimed and kinds.get(name) != "pod":
                continue  # a pod named like a node keeps the node's token
            if shape & _SYSTEM:
                kept = _replace_embedded(name, nodes, tokens)
                if kept != name:
                    claimed[name] = (_FIXED, position, len(name))
                    index.fixed[name] = kept
                continue
            s, b, g = shape & 0xFF, shape >> 8 & 0xFF, shape >> 16 & 0xFF
            pod = code["pod"]
            claimed.setdefault(name, (_recipe(pod, s, b, g), position, len(name)))
            if g:  # the owner's name and its stem
                claimed.setdefault(name[:b], (_recipe(pod, s, b, 0), position, b))
                claimed.setdefault(name[:s], (_recipe(pod, s, s, 0), position, s))
        index.pods = len(counted)
        del counted
        for name in sorted(claimed, key=hash):
            recipe, source, length = claimed[name]
            index.hashes.append(hash(name))
            index.recipes.append(recipe)
            index.sources.append(source)
            index.lengths.append(length)
        return index

    def __len__(self) -> int:
        return len(self.hashes)

    def name(self, position: int, pods: _Pods) -> str:
        source = self.sources[position]
        if source < 0:
            return self.kinds[~source]
        return pods.name(source)[: self.lengths[position]]

    def find(self, name: str, pods: _Pods) -> int | None:
        """The recipe of `name`, if it is registered."""
        hashed = hash(name)
        position = bisect_left(self.hashes, hashed)
        while position < len(self.hashes) and self.hashes[position] == hashed:
            if self.name(position, pods) == name:
                return self.recipes[position]
            position += 1
        return None


def _replace_embedded(name: str, nodes: Iterable[str], tokens: Mapping[str, str]) -> str:
    """A system pod's name with the node names it embeds (etcd-<node>) mapped."""
    for node in nodes:
        if node in name:
            name = name.replace(node, tokens[node])
    return name


def _pod_shape(name: str, generate: str, template_hash: str) -> tuple[int, int, int]:
    """Where the stem of a pod's name ends (s), its owner's name (b), and its random
    suffix starts after the generateName (g, or 0 for none): the names derived from it
    that appear elsewhere (its owner's name, the stem a label may repeat) are its first b
    and s characters; the stem is mapped, the controller's hashes and the random suffix
    kept."""
    if generate and name.startswith(generate) and len(name) > len(generate):
        base = generate.rstrip("-")
        hash_part = f"-{template_hash}" if template_hash else ""
        stem = base[: -len(hash_part)] if hash_part and base.endswith(hash_part) else base
        if stem:
            return len(stem), len(base), len(generate)
    return len(name), len(name), 0
