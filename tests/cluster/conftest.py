"""Fixtures for collecting from a (mock) live cluster: a mock API server on 127.0.0.1,
a kubeconfig for it, and the lab behind it."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from mock_apiserver import (
    MockApiServer,
    MockNode,
    kubeconfig_text,
    read_kube_dir,
    synthetic_objects,
)


@pytest.fixture
def mock_factory(tmp_path: Path) -> Iterator[Callable[..., tuple[MockApiServer, Path]]]:
    """Start mock API servers; each is stopped (its emulated containers killed) after
    the test. Returns (server, kubeconfig path)."""
    servers: list[MockApiServer] = []

    def start(nodes: list[MockNode], objects: dict[str, Any] | None = None, **kwargs: Any):
        ca_pem = kwargs.pop("ca_pem", None)
        server = MockApiServer(nodes, objects, **kwargs)
        servers.append(server)
        url = server.start()
        kubeconfig = tmp_path / f"kubeconfig-{len(servers)}"
        kubeconfig.write_text(kubeconfig_text(url, ca_pem=ca_pem))
        return server, kubeconfig

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def canned_cluster(mock_factory):
    """Three canned nodes (no lab, no root): exec streams a prepared node response."""

    def build(names: tuple[str, ...] = ("node-a", "node-b", "node-c"), **kwargs: Any):
        behaviours = kwargs.pop("behaviours", {})
        nodes = [MockNode(name, **{"exec": "canned", **behaviours.get(name, {})}) for name in names]
        kwargs.setdefault("canned_seconds", 0.2)
        kwargs.setdefault("start_delay_s", 0.05)
        return mock_factory(nodes, synthetic_objects(list(names)), **kwargs)

    return build


def lab_nodes(state: Any, behaviours: dict[str, dict[str, str]] | None = None) -> list[MockNode]:
    behaviours = behaviours or {}
    return [
        MockNode(
            node.name,
            netns=node.netns,
            pod_netns=[pod.netns for pod in node.pods],
            **behaviours.get(node.name, {}),
        )
        for node in state.nodes
    ]


@pytest.fixture
def lab_cluster(lab_factory, mock_factory):
    """A lab (network namespaces) behind a mock API server whose pods exec for real."""

    def build(
        nodes: int = 3,
        pods: int = 2,
        behaviours: dict[str, dict[str, str]] | None = None,
        **kwargs: Any,
    ):
        state = lab_factory(nodes=nodes, pods=pods)
        server, kubeconfig = mock_factory(
            lab_nodes(state, behaviours), read_kube_dir(Path(state.kube_dir)), **kwargs
        )
        return state, server, kubeconfig

    return build


@pytest.fixture(scope="session")
def tls() -> tuple[Any, bytes]:
    """A server TLS context for 127.0.0.1 and the CA that signed it (PEM)."""
    import ssl

    import trustme  # a dev dependency: a missing one must fail, not skip

    authority = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    return context, authority.cert_pem.bytes()
