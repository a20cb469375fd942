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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

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


def _digest(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()


@dataclass
class NameMap:
    """The names of one bundle and their tokens. `register_*` while scanning; then
    `lookup` (exact names) and `interface` answer while rewriting."""

    key: bytes
    keep: bool = False  # --keep-names: nothing is mapped
    _kinds: dict[str, str] = field(default_factory=dict)  # name -> kind (stems, hosts, ...)
    _fixed: dict[str, str] = field(default_factory=dict)  # name -> its whole replacement
    _pods: list[tuple[str, str, str, str]] = field(default_factory=list)
    _mapped: dict[str, str] | None = None
    _interfaces: dict[str, str] = field(default_factory=dict)
    plain_interfaces: set[str] = field(default_factory=set)

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
        self._mapped = None

    def register_pod(
        self, namespace: object, name: object, generate_name: object, template_hash: object
    ) -> None:
        if self.keep or not isinstance(name, str) or not name or len(name) > 253:
            return
        namespace = namespace if isinstance(namespace, str) else ""
        generate = generate_name if isinstance(generate_name, str) else ""
        hash_ = template_hash if isinstance(template_hash, str) else ""
        self._pods.append((namespace, name, generate, hash_))
        self._mapped = None

    # --- answers -----------------------------------------------------------------------
    def token(self, kind: str, name: str) -> str:
        return f"{kind}-{_digest(self.key, name)[:_TOKEN_HEX]}"

    @property
    def mapped(self) -> Mapping[str, str]:
        """Every registered name and its replacement (also what --map-out writes)."""
        if self._mapped is None:
            self._mapped = self._build()
        return self._mapped

    def lookup(self, name: str) -> str | None:
        return self.mapped.get(name)

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

    def interfaces(self) -> Mapping[str, str]:
        return dict(self._interfaces)

    def _build(self) -> dict[str, str]:
        mapped = {name: self.token(kind, name) for name, kind in self._kinds.items()}
        nodes = sorted((n for n, k in self._kinds.items() if k == "node"), key=len, reverse=True)
        for namespace, name, generate, hash_ in self._pods:
            if name in mapped and self._kinds.get(name) != "pod":
                continue  # a pod named like a node keeps the node's token
            if namespace in SYSTEM_NAMESPACES:
                kept = _replace_embedded(name, nodes, mapped)
                if kept != name:
                    mapped[name] = kept
                continue
            for original, replacement in _pod_names(self, name, generate, hash_):
                mapped.setdefault(original, replacement)
        return mapped

    def summary(self) -> dict[str, int]:
        """How many names of each kind were mapped (never which)."""
        counts: dict[str, int] = {}
        for kind in self._kinds.values():
            counts[kind] = counts.get(kind, 0) + 1
        counts["pod"] = len(
            {name for namespace, name, _, _ in self._pods if namespace not in SYSTEM_NAMESPACES}
        )
        return counts


def _replace_embedded(name: str, nodes: Iterable[str], mapped: Mapping[str, str]) -> str:
    """A system pod's name with the node names it embeds (etcd-<node>) mapped."""
    for node in nodes:
        if node in name:
            name = name.replace(node, mapped[node])
    return name


def _pod_names(
    names: NameMap, name: str, generate: str, template_hash: str
) -> list[tuple[str, str]]:
    """The pod's name, and the names derived from it that appear elsewhere (its
    generateName, its owner's name, the stem a label may repeat), each with its
    replacement: the stem is mapped, the controller's hashes and the random suffix kept."""
    if generate and name.startswith(generate) and len(name) > len(generate):
        suffix = name[len(generate) :]
        base = generate.rstrip("-")
        hash_part = f"-{template_hash}" if template_hash else ""
        stem = base[: -len(hash_part)] if hash_part and base.endswith(hash_part) else base
        if not stem:
            return [(name, names.token("pod", name))]
        mid = base[len(stem) :]
        token = names.token("pod", stem)
        pairs = [(name, f"{token}{mid}-{suffix}"), (base, f"{token}{mid}"), (stem, token)]
        return pairs
    return [(name, names.token("pod", name))]
