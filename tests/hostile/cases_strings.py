"""Hostile strings: console markup, terminal escapes, HTML, backticks, pipes, forged
lines and bidi overrides in the names and values a bundle carries. Every human-readable
output (text report, markdown, diff, errors) must show them escaped and never obey them
(docs/untrusted-bundles.md, "Output"); JSON carries them exactly."""

from __future__ import annotations

import json
from pathlib import Path

from corpus import REPO, case, edit_items, load, pack, save

MTU_UNDERLAY = REPO / "samples" / "lab-mtu-underlay.tar.gz"
MTU_POD = REPO / "samples" / "lab-mtu-pod.tar.gz"

CLEAR = "\x1b[2J"
TITLE = "\x1b]0;pwned\x07"
OSC8 = "\x1b]8;;https://evil.example/\x1b\\click\x1b]8;;\x1b\\"
FORGED = "\nERROR fake"
BIDI = "\u202egnp.exe"
MARKUP = "[bold]B[/][/][link=https://evil.example]L[/link]"
HTML = "<img src=x onerror=alert(1)>"
TICKS = "`a``b`"
PIPES = "|c|d|"
C1 = "\x9b31m"

HOSTILE = f"h{CLEAR}{TITLE}{OSC8}{MARKUP}{HTML}{TICKS}{PIPES}{FORGED}{BIDI}{C1}"
"""Every kind at once: one value that would clear the screen, retitle the terminal, print
a hyperlink, apply markup, inject HTML, break a code span and a table, and forge a line."""

# How the text outputs must show them: visibly escaped.
SHOWN_CLEAR = "\\x1b[2J"
SHOWN_FORGED = "\\x0aERROR fake"


def _rename_everywhere(bundle: Path, old: str, new: str, under: str = "") -> None:
    """Replace the JSON string `old` by `new` in every JSON file under `under`."""
    for path in sorted((bundle / under).rglob("*.json")):
        text = path.read_text()
        if f'"{old}"' in text:
            path.write_text(text.replace(f'"{old}"', json.dumps(new)))


def _app_pods(items: list[dict]) -> list[dict]:
    return [pod for pod in items if pod["metadata"]["namespace"] != "kube-flannel"]


@case(
    "strings-pod-name",
    "sanitise",
    "markup",
    base=MTU_POD,
    must_report=(SHOWN_CLEAR, SHOWN_FORGED, "&lt;img"),
)
def pod_name(bundle: Path) -> None:
    """The pod whose MTU the MTU-pod sample's finding names, called everything at once:
    the finding's message and subject carry it into every report."""

    def change(items: list[dict]) -> None:
        for pod in items:
            if pod["metadata"]["name"] == "web-4zlwgwhn6k-2c6zz":
                pod["metadata"]["name"] = HOSTILE

    edit_items(bundle, "pods", change)


@case("strings-namespace", "sanitise", "markup", must_report=(SHOWN_CLEAR,))
def namespace(bundle: Path) -> None:
    """A namespace with markup, HTML and escapes, and labels and annotations too."""

    def change(items: list[dict]) -> None:
        for pod in _app_pods(items):
            pod["metadata"]["namespace"] = HOSTILE
            pod["metadata"].setdefault("labels", {})[HOSTILE] = HOSTILE
            pod["metadata"].setdefault("annotations", {})["note"] = HOSTILE

    edit_items(bundle, "pods", change)


@case("strings-node-objects", "sanitise", "markup")
def node_objects(bundle: Path) -> None:
    """A node object renamed (its pods follow), and another with hostile labels and
    flannel annotations' values."""

    def nodes(items: list[dict]) -> None:
        items[-1]["metadata"]["name"] = HOSTILE
        items[-1]["metadata"]["labels"]["kubernetes.io/hostname"] = HOSTILE
        annotations = items[0]["metadata"]["annotations"]
        annotations["flannel.alpha.coreos.com/public-ip"] = HOSTILE
        annotations["flannel.alpha.coreos.com/backend-data"] = json.dumps(
            {"VNI": 1, "VtepMAC": HOSTILE}
        )
        items[0]["metadata"]["labels"][MARKUP] = HTML

    renamed: list[str] = []

    def capture(items: list[dict]) -> None:
        renamed.append(items[-1]["metadata"]["name"])

    edit_items(bundle, "nodes", capture)
    edit_items(bundle, "nodes", nodes)

    def pods(items: list[dict]) -> None:
        for pod in items:
            if pod["spec"].get("nodeName") == renamed[0]:
                pod["spec"]["nodeName"] = HOSTILE

    edit_items(bundle, "pods", pods)


@case("strings-net-conf", "sanitise", "markup")
def net_conf(bundle: Path) -> None:
    """flannel's config map with a hostile backend type and network."""

    def change(items: list[dict]) -> None:
        for item in items:
            data = item.get("data", {})
            if "net-conf.json" in data:
                data["net-conf.json"] = json.dumps(
                    {"Network": HOSTILE, "Backend": {"Type": HOSTILE, "VNI": HOSTILE}}
                )

    edit_items(bundle, "configmaps", change)


@case("strings-ifname", "sanitise", "markup", must_report=(SHOWN_CLEAR,))
def interface_name(bundle: Path) -> None:
    """cni0 in node 1's ip-link.json called everything at once: the bridge is gone under
    its own name (findings), and diff lists the interface that came."""
    links = load(bundle, "nodes/lab-node-1/host/ip-link.json")
    bridge = next(link for link in links if link["ifname"] == "cni0")
    bridge["ifname"] = HOSTILE
    save(bundle, "nodes/lab-node-1/host/ip-link.json", links)


@case("strings-route", "sanitise", "markup", must_report=(SHOWN_CLEAR,))
def route_fields(bundle: Path) -> None:
    """Route fields (protocol, table, an added route's dev) carry hostile strings."""
    relpath = "nodes/lab-node-1/host/ip-route.json"
    routes = load(bundle, relpath)
    routes[0]["protocol"] = HOSTILE
    routes.append({"type": "unicast", "dst": "10.99.0.0/16", "dev": HOSTILE, "flags": []})
    save(bundle, relpath, routes)


@case(
    "strings-in-a-finding",
    "sanitise",
    "markup",
    base=MTU_UNDERLAY,
    must_report=(SHOWN_CLEAR, SHOWN_FORGED, "&lt;img"),
)
def finding_message(bundle: Path) -> None:
    """The underlay interface of the MTU-underlay sample (ens3 on lab-node-1, which its
    findings name) renamed everywhere on that node: the findings' messages, subjects and
    evidence carry the hostile name into every report."""
    _rename_everywhere(bundle, "ens3", HOSTILE, "nodes/lab-node-1")


@case("strings-bundle-path", "sanitise", "markup", must_report=("\\x0a",))
def bundle_path(bundle: Path) -> Path:
    """The bundle's own path holds a newline, an escape, markup and HTML: the report
    header, the diff header and any error print it."""
    hostile = bundle.parent / f"b\nERROR fake\x1b[2J[bold]{HTML}`|"
    bundle.rename(hostile)
    return hostile


@case("strings-bundle-path-archive", "sanitise", "markup", must_report=("\\x1b[2J",))
def bundle_path_archive(bundle: Path) -> Path:
    """An archive named with an escape and a newline."""
    archive = pack(bundle)
    hostile = archive.with_name(f"a\x1b[2J\nERROR fake{BIDI}.tar.gz")
    archive.rename(hostile)
    return hostile
