"""Which data plane a bundle's cluster runs, and the evidence for it.

In order of authority: `--backend` (the user knows best); flannel's net-conf.json in its
config map (Backend.Type, DirectRouting, VNI, Port), with Canal told apart from plain
flannel by the config map it lives in or a `calico` plugin in a node's CNI conflist; the
nodes' flannel backend-type annotations; and last what the devices show (a flannel
VXLAN device; `cali*` veths and no pod bridge). Each clue found is kept as evidence, so a
report can say why it judged the cluster as it did.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from needle.analyzer.backends.base import Backend, Evidence
from needle.analyzer.backends.canal import CNI_PLUGIN, CONFIG_MAPS, VETH_PREFIX, canal
from needle.analyzer.backends.flannel import (
    BRIDGE,
    UNANALYSED,
    VXLAN_KIND,
    host_gw,
    unanalysed,
    vxlan,
)
from needle.analyzer.errors import AnalyzerError
from needle.analyzer.model.kube_objects import load_json
from needle.analyzer.parsers.rancher import parse_rancher_cmdline

if TYPE_CHECKING:  # the model imports the backends (build.py): types only here
    from needle.analyzer.model.entities import Model, Node
    from needle.analyzer.parsers.flannel import FlannelNetConf

# the k3s/RKE2 settings that name a data plane
RANCHER_KEYS = ("flannel-backend", "cni")
# what --backend takes
CHOICES = ("vxlan", "vxlan-directrouting", "host-gw", "canal", *sorted(UNANALYSED))


@dataclass(frozen=True)
class Detection:
    backend: Backend
    source: str  # "option" (--backend), "detected", or "unknown"
    evidence: tuple[Evidence, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "backend": self.backend.name,
            "label": self.backend.label,
            "analysed": self.backend.analysed,
            "source": self.source,
            "evidence": [item.to_json() for item in self.evidence],
        }

    def summary(self) -> str:
        """One line for a report: what, how it was known, and whether it is analysed."""
        how = {"option": "chosen with --backend", "detected": "detected"}.get(
            self.source, "not detected"
        )
        verdict = "" if self.backend.analysed else "; recognised, not analysed"
        return f"{self.backend.label} ({how}{verdict})"


UNKNOWN = Backend(name="unknown", label="unknown data plane", analysed=False)
# RKE2's `cni:` choices other than Canal, recognised and not analysed
OTHER_CNIS = {
    "calico": Backend(name="calico", label="Calico (RKE2 cni)", analysed=False),
    "cilium": Backend(name="cilium", label="Cilium (RKE2 cni)", analysed=False),
}


def _clues(model: Model) -> tuple[list[Evidence], dict[str, bool]]:
    """Everything in the bundle that speaks for one data plane or another."""
    evidence: list[Evidence] = []
    seen = {"canal": False, "flannel-cni": False, "routed-veths": False, "overlay": False}
    conf = model.net_conf
    if conf is None:  # k3s: flannel runs inside k3s, its net-conf.json is a node file
        for node in model.nodes.values():
            if node.net_conf is not None:
                evidence.append(
                    Evidence(
                        node.outputs.get("k3s_net_conf", ""),
                        f"k3s flannel net-conf.json on {node.name}: Backend.Type "
                        f"{node.net_conf.backend_type or '(none)'}"
                        + (", DirectRouting true" if node.net_conf.direct_routing else ""),
                    )
                )
                break
    for node in model.nodes.values():
        settings, where = _settings(node)
        flags = {key: settings[key] for key in RANCHER_KEYS if key in settings}
        if flags:
            shown = ", ".join(f"{key} {value}" for key, value in flags.items())
            evidence.append(Evidence(where, f"{node.name}: {shown}"))
            if flags.get("cni") == "canal":
                seen["canal"] = True
            break
    if conf is not None:
        file, name = model.net_conf_origin or ("cluster/configmaps.json", "")
        evidence.append(
            Evidence(
                file,
                f"config map {name} net-conf.json: Backend.Type {conf.backend_type or '(none)'}"
                + (", DirectRouting true" if conf.direct_routing else ""),
            )
        )
        if name.rpartition("/")[2] in CONFIG_MAPS:
            seen["canal"] = True
    for node in model.nodes.values():
        for file_name, config in sorted(node.cni_configs.items()):
            types = {plugin.type for plugin in getattr(config, "plugins", ())}
            where = f"nodes/{node.name}/host/cni-net.d/{file_name}"
            if CNI_PLUGIN in types and not seen["canal"]:
                seen["canal"] = True
                evidence.append(Evidence(where, f"CNI plugin {CNI_PLUGIN}"))
            if "flannel" in types and not seen["flannel-cni"]:
                seen["flannel-cni"] = True
                evidence.append(Evidence(where, "CNI plugin flannel"))
        host = node.host
        if host is None:
            continue
        links = node.outputs.get("links", "")
        kinds = {interface.kind for interface in host.interfaces.values()}
        if not seen["overlay"] and any(
            i.kind == VXLAN_KIND and i.name.startswith("flannel.") for i in host.interfaces.values()
        ):
            seen["overlay"] = True
            evidence.append(Evidence(links, f"{node.name} has a flannel VXLAN device"))
        routed = any(
            i.kind == "veth" and i.name.startswith(VETH_PREFIX) for i in host.interfaces.values()
        )
        bridged = BRIDGE in host.interfaces or "bridge" in kinds
        if routed and not bridged and not seen["routed-veths"]:
            seen["routed-veths"] = True
            evidence.append(Evidence(links, f"{node.name}: {VETH_PREFIX}* veths and no pod bridge"))
    return evidence, seen


def _annotated_type(model: Model) -> tuple[str | None, list[Evidence]]:
    """The backend-type most nodes' flannel annotation names."""
    counts = Counter(
        node.api.backend_type.lower()
        for node in model.nodes.values()
        if node.api is not None and node.api.backend_type
    )
    if not counts:
        return None, []
    kind, count = counts.most_common(1)[0]
    detail = f"{count} of {len(model.nodes)} nodes annotated backend-type {kind}"
    return kind, [Evidence("cluster/nodes.json", detail)]


def _net_conf(model: Model) -> FlannelNetConf | None:
    """flannel's net-conf.json: its config map's, else k3s's on a node."""
    if model.net_conf is not None:
        return model.net_conf
    return next((n.net_conf for n in model.nodes.values() if n.net_conf is not None), None)


# k3s and RKE2 write a node's command line (secrets starred) into these annotations:
# the flags survive where the process's own arguments were blanked after start
NODE_ARGS = ("k3s.io/node-args", "rke2.io/node-args")


def _settings(node: Node) -> tuple[dict[str, str], str]:
    """A node's k3s/RKE2 settings and the file they came from: its config files and
    command line, else its node-args annotation."""
    if node.rancher:
        return node.rancher, node.outputs.get("rancher", "")
    annotations = node.api.annotations if node.api is not None else {}
    for name in NODE_ARGS:
        args, why = load_json(annotations.get(name) or "")
        if why is None and isinstance(args, list):
            text = "\n".join(arg for arg in args if isinstance(arg, str)).encode()
            found = parse_rancher_cmdline(text).records
            return {setting.key: setting.value for setting in found}, "cluster/nodes.json"
    return {}, ""


def _flag(model: Model, key: str) -> str | None:
    """A k3s/RKE2 setting as most nodes have it."""
    counts = Counter(
        value.lower()
        for node in model.nodes.values()
        if (value := _settings(node)[0].get(key)) is not None
    )
    return counts.most_common(1)[0][0] if counts else None


def _backend(kind: str, model: Model, canal_seen: bool) -> Backend:
    conf = _net_conf(model)
    vni = conf.vni if conf is not None else None
    port = conf.port if conf is not None else None
    direct = bool(conf.direct_routing) if conf is not None else False
    if kind == "vxlan-directrouting":
        kind, direct = "vxlan", True
    if kind == "canal":
        return canal(vni, port, direct)
    if kind == "vxlan":
        return canal(vni, port, direct) if canal_seen else vxlan(vni, port, direct)
    if kind == "host-gw":
        return host_gw()
    return unanalysed(kind)


def detect(model: Model, choice: str | None = None) -> Detection:
    """The data plane of `model`'s cluster (`choice`: what --backend said, if anything)."""
    evidence, seen = _clues(model)
    canal_seen = seen["canal"] or seen["routed-veths"]
    if choice is not None:
        if choice not in CHOICES:
            raise AnalyzerError(
                f"--backend {choice!r} is not one needle knows (choose from {', '.join(CHOICES)})"
            )
        backend = _backend(choice, model, canal_seen=False)
        return Detection(backend, "option", (Evidence("", f"--backend {choice}"), *evidence))
    kind = None
    conf = _net_conf(model)
    cni = _flag(model, "cni")
    if conf is not None and conf.backend_type:
        kind = conf.backend_type.lower()
    elif _flag(model, "flannel-backend") is not None:
        kind = _flag(model, "flannel-backend")
    elif cni in OTHER_CNIS:  # RKE2 with another CNI than Canal: not flannel at all
        return Detection(OTHER_CNIS[cni], "detected", tuple(evidence))
    else:
        kind, annotated = _annotated_type(model)
        evidence.extend(annotated)
    if kind is None and seen["overlay"]:
        kind = "vxlan"
    if kind is None:
        return Detection(UNKNOWN, "unknown", tuple(evidence))
    return Detection(_backend(kind, model, canal_seen), "detected", tuple(evidence))


def backend_of(model: Model) -> Backend:
    """The model's data plane: as detected when it was built, or now if it was not."""
    if model.dataplane is None:
        model.dataplane = detect(model)
    return model.dataplane.backend
