"""What the packets say on their own, node by node: VXLAN to a port nobody listens on
(no-listener), with a VNI nobody uses (vni-mismatch) or to an address no node has
(unknown-destination); ICMP errors (frag-needed, unreachable); TCP retransmissions and
IPv4 fragments per pair of ends."""

from __future__ import annotations

from typing import Any

from needle.analyzer.observe.inputs import CorrelationSettings, NodeCaptures
from needle.analyzer.observe.observation import Observation
from needle.analyzer.observe.summary import PROTOCOLS


def tunnel_checks(
    nodes: list[NodeCaptures],
    owner: dict[str, str],
    by_name: dict[str, NodeCaptures],
) -> list[Observation]:
    """VXLAN to a node's address on a port it has no device for (no-listener), with a
    VNI its device on that port does not use (vni-mismatch), or to an underlay address
    no node in the bundle has (unknown-destination). Judged on the packets alone."""
    found: dict[tuple[str, str, str, int, int | None], list[Any]] = {}
    unreachable_back = _port_unreachable(nodes)
    for node in nodes:
        for capture in node.captures:
            for row in capture.summary.tunnels:
                tunnel = row.tunnel
                target = owner.get(tunnel.dst)
                if target is None:
                    if owner.get(tunnel.src) is not None:
                        key = ("unknown-destination", node.name, tunnel.dst, tunnel.port, None)
                        _tally(found, key, row.packets, tunnel.src, capture.file)
                    continue
                listeners = by_name[target].listeners
                if listeners is None:
                    continue  # the bundle does not say which devices it has
                on_port = [item for item in listeners if item.port == tunnel.port]
                if not on_port:
                    key = ("no-listener", node.name, target, tunnel.port, None)
                elif all(item.vni is not None and item.vni != tunnel.vni for item in on_port):
                    key = ("vni-mismatch", node.name, target, tunnel.port, tunnel.vni)
                else:
                    continue
                _tally(found, key, row.packets, tunnel.src, capture.file)
    # a port-unreachable from a node for a VXLAN port shows a missing listener on its own
    for (address, port), (_, file, seen_by) in unreachable_back.items():
        key = ("no-listener", seen_by, owner.get(address, address), port, None)
        if key not in found:
            _tally(found, key, 0, "", file)
    observations = []
    for (kind, seen_by, target, port, vni), (packets, sources, files) in found.items():
        observations.append(
            _tunnel_observation(
                kind, seen_by, target, port, vni, packets, sources, files, by_name, unreachable_back
            )
        )
    return observations


def _tally(
    found: dict[tuple[str, str, str, int, int | None], list[Any]],
    key: tuple[str, str, str, int, int | None],
    packets: int,
    source: str,
    file: str,
) -> None:
    row = found.setdefault(key, [0, set(), set()])
    row[0] += packets
    if source:
        row[1].add(source)
    row[2].add(file)


def _port_unreachable(nodes: list[NodeCaptures]) -> dict[tuple[str, int], tuple[int, str, str]]:
    """ICMP port unreachable quoting UDP to a VXLAN port of some listener: (the address
    that refused, port) -> (count, file, the node whose capture saw it)."""
    vxlan_ports = {item.port for node in nodes for item in node.listeners or ()}
    found: dict[tuple[str, int], tuple[int, str, str]] = {}
    for node in nodes:
        for capture in node.captures:
            for error in capture.summary.icmp_errors:
                quoted = error.quoted
                if error.code == 3 and quoted.proto == 17 and quoted.dport in vxlan_ports:
                    key = (quoted.dst, quoted.dport)
                    count = found.get(key, (0, "", ""))[0] + error.packets
                    found[key] = (count, capture.file, node.name)
    return found


def _tunnel_observation(
    kind: str,
    seen_by: str,
    target: str,
    port: int,
    vni: int | None,
    packets: int,
    sources: set[str],
    files: set[str],
    by_name: dict[str, NodeCaptures],
    unreachable_back: dict[tuple[str, int], tuple[int, str, str]],
) -> Observation:
    node = by_name.get(target)
    listening = [
        f"{item.device} (port {item.port}, VNI {'any' if item.vni is None else item.vni})"
        for item in (node.listeners or () if node else ())
    ]
    refused = sum(
        count
        for (address, refused_port), (count, _, _) in unreachable_back.items()
        if refused_port == port and node is not None and address in node.underlay_ips
    )
    source_text = ", ".join(sorted(sources)) or "?"
    if kind == "unknown-destination":
        message = (
            f"{seen_by}'s capture shows {packets} VXLAN packets from {source_text} to "
            f"{target} port {port}, an address no node in this bundle has (a stale FDB "
            f"entry or a node outside the bundle)"
        )
    elif kind == "no-listener":
        message = _no_listener_message(seen_by, target, port, packets, source_text, refused, node)
    else:
        message = (
            f"{seen_by}'s capture shows {packets} VXLAN packets from {source_text} to "
            f"{target} port {port} with VNI {vni}, which its device on that port does not "
            f"use ({', '.join(listening)})"
        )
    return Observation(
        kind=kind,
        node=seen_by,
        peer_node=target if node is not None else None,
        message=message,
        counts={"packets": packets, "port_unreachable": refused},
        details={
            "destination": target,
            "port": port,
            "vni": vni,
            "sources": sorted(sources)[:20],
            "listeners": listening,
        },
        evidence=[{"file": file, "detail": f"VXLAN to {target}:{port}"} for file in sorted(files)],
    )


def _no_listener_message(
    seen_by: str,
    target: str,
    port: int,
    packets: int,
    sources: str,
    refused: int,
    node: NodeCaptures | None,
) -> str:
    listeners = node.listeners if node is not None else None
    if packets:
        message = (
            f"{seen_by}'s capture shows {packets} VXLAN packets from {sources} to {target} "
            f"on UDP port {port}"
        )
        if refused:
            message += f", and {refused} ICMP port unreachable back"
    else:
        message = (
            f"{seen_by}'s capture shows {refused} ICMP port unreachable from {target} for "
            f"VXLAN to its UDP port {port}"
        )
    if listeners is None:
        return f"{message} (which VXLAN devices {target} has is not in the bundle)"
    on_port = [item.device for item in listeners if item.port == port]
    if on_port:
        # the bundle shows a device on the port, yet the kernel had no socket bound to it
        return (
            f"{message}: nothing listened there when captured, although the bundle shows "
            f"{', '.join(on_port)} on that port (down, or recreated since?)"
        )
    devices = ", ".join(
        f"{item.device} (port {item.port}, VNI {'any' if item.vni is None else item.vni})"
        for item in listeners
    )
    return f"{message}, where it has no VXLAN device (it has: {devices or 'none'})"


def icmp_errors(nodes: list[NodeCaptures], owner: dict[str, str]) -> list[Observation]:
    """Every ICMP "fragmentation needed" (frag-needed) and other destination unreachable
    (unreachable) a node's captures hold, once per node however many of its captures
    saw the same error; port unreachable for VXLAN ports goes to no-listener instead."""
    vxlan_ports = {item.port for node in nodes for item in node.listeners or ()}
    observations = []
    for node in nodes:
        merged: dict[tuple[Any, ...], list[Any]] = {}
        for capture in node.captures:
            for error in capture.summary.icmp_errors:
                quoted = error.quoted
                if error.code == 3 and quoted.proto == 17 and quoted.dport in vxlan_ports:
                    continue
                key = (error.sender, error.to, error.code, error.mtu, quoted, error.tunnel)
                row = merged.setdefault(key, [0, [], error])
                row[0] = max(row[0], error.packets)
                row[1].append(capture.file)
        for (sender, to, code, mtu, quoted, _), (count, files, error) in merged.items():
            proto = PROTOCOLS.get(quoted.proto, str(quoted.proto))
            ports = f" port {quoted.dport}" if quoted.dport is not None else ""
            inside = " inside a VXLAN tunnel" if error.tunnel else ""
            what = error.to_json()["what"]
            if code == 4:
                message = (
                    f"{node.name}'s capture shows {count} ICMP fragmentation needed from "
                    f"{sender} to {to}{inside}: next-hop MTU {mtu}, for {proto} "
                    f"{quoted.src} -> {quoted.dst}{ports}"
                )
            else:
                message = (
                    f"{node.name}'s capture shows {count} ICMP {what} from {sender} to "
                    f"{to}{inside}, for {proto} {quoted.src} -> {quoted.dst}{ports}"
                )
            observations.append(
                Observation(
                    kind="frag-needed" if code == 4 else "unreachable",
                    node=node.name,
                    peer_node=owner.get(quoted.dst) or owner.get(sender),
                    message=message,
                    counts={"packets": count},
                    details=error.to_json(),
                    evidence=[{"file": file, "detail": message} for file in sorted(set(files))],
                )
            )
    return observations


def repeats(
    nodes: list[NodeCaptures], owner: dict[str, str], settings: CorrelationSettings
) -> list[Observation]:
    """TCP retransmissions and IPv4 fragments per pair of ends (the nodes the outer
    addresses belong to, else the addresses), once per pair: the sender's and the
    receiver's captures show the same packets, so a pair counts what the capture that
    saw most of them shows, and names it."""
    tallies: dict[tuple[str, str, str], dict[str, Any]] = {}
    for node in nodes:
        for capture in node.captures:
            rows: list[tuple[str, Any, int]] = [
                ("retransmissions", row, row.retransmissions)
                for row in capture.summary.retransmissions
            ]
            rows += [("fragments", row, row.fragments) for row in capture.summary.fragments]
            here: dict[tuple[str, str, str], list[Any]] = {}
            for kind, row, count in rows:
                src, dst = (row.tunnel.src, row.tunnel.dst) if row.tunnel else (row.src, row.dst)
                tally = here.setdefault((kind, owner.get(src, src), owner.get(dst, dst)), [0, []])
                tally[0] += count
                if len(tally[1]) < settings.examples:
                    tally[1].append(row.to_json())
            for key, (count, examples) in here.items():
                best = tallies.get(key)
                if best is None or count > best["count"]:
                    tallies[key] = {
                        "count": count,
                        "examples": examples,
                        "node": node.name,
                        "file": capture.file,
                    }
    observations = []
    names = set(owner.values())
    for (kind, src, dst), best in tallies.items():
        noun = "TCP retransmissions" if kind == "retransmissions" else "IPv4 fragments"
        seen_by = best["node"]
        observations.append(
            Observation(
                kind=kind,
                node=src if src in names else seen_by,
                peer_node=dst if dst in names else None,
                message=f"{seen_by}'s capture shows {best['count']} {noun} from {src} to {dst}",
                counts={kind: best["count"]},
                details={"from": src, "to": dst, "seen_by": seen_by, "examples": best["examples"]},
                evidence=[{"file": best["file"], "detail": noun}],
            )
        )
    return observations
