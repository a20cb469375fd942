"""Fixtures for collecting from a (mock) live cluster: a mock API server on 127.0.0.1,
a kubeconfig for it, and the lab behind it."""

from __future__ import annotations

import ssl
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from mock_apiserver import (
    MockApiServer,
    MockNode,
    kubeconfig_text,
    read_kube_dir,
    synthetic_objects,
)

# The clusters the product is tested against answer like a real one across a network:
# the tail of each REST response arrives this much after its head (a later TLS record or
# TCP segment). A client that puts a connection back in its pool with the response
# unread then reads that tail as the start of its next response (BadStatusLine), as it
# does against a real kube-apiserver; on loopback without it, every small answer lands
# in one read and CPython's prompt garbage collection of the response hides the bug.
NETWORK_TAIL_S = 0.01


class TlsClientCert(NamedTuple):
    """A TLS server that also takes client certificates, and such a certificate."""

    context: ssl.SSLContext
    """The server's context (cert for 127.0.0.1); give it with client_ca_pem=ca_pem."""
    ca_pem: bytes
    """The one CA that signed both: the client trusts it, the server checks clients by it."""
    cert_pem: bytes
    """A client certificate whose CN is needle-test."""
    key_pem: bytes


@pytest.fixture
def mock_factory(tmp_path: Path) -> Iterator[Callable[..., tuple[MockApiServer, Path]]]:
    """Start mock API servers; each is stopped (its emulated containers killed) after
    the test. Returns (server, kubeconfig path).

    Besides MockApiServer's arguments: ca_pem (the CA the kubeconfig trusts) and
    client_cert=(cert_pem, key_pem) (the kubeconfig's user is that certificate instead
    of the token; the server then needs client_ca_pem)."""
    servers: list[MockApiServer] = []

    def start(nodes: list[MockNode], objects: dict[str, Any] | None = None, **kwargs: Any):
        ca_pem = kwargs.pop("ca_pem", None)
        cert_pem, key_pem = kwargs.pop("client_cert", None) or (None, None)
        server = MockApiServer(nodes, objects, **kwargs)
        servers.append(server)
        url = server.start()
        kubeconfig = tmp_path / f"kubeconfig-{len(servers)}"
        kubeconfig.write_text(
            kubeconfig_text(
                url,
                token=server.token,
                ca_pem=ca_pem,
                client_cert_pem=cert_pem,
                client_key_pem=key_pem,
            )
        )
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
        kwargs.setdefault("body_delay_s", NETWORK_TAIL_S)
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
        kwargs.setdefault("body_delay_s", NETWORK_TAIL_S)
        server, kubeconfig = mock_factory(
            lab_nodes(state, behaviours), read_kube_dir(Path(state.kube_dir)), **kwargs
        )
        return state, server, kubeconfig

    return build


@pytest.fixture(scope="session")
def tls() -> tuple[Any, bytes]:
    """A server TLS context for 127.0.0.1 and the CA that signed it (PEM)."""
    import trustme  # a dev dependency: a missing one must fail, not skip

    authority = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    return context, authority.cert_pem.bytes()


@pytest.fixture
def tls_client_cert() -> TlsClientCert:
    """A fresh CA, a server context for 127.0.0.1 and a client certificate for
    "needle-test", all from that CA. Per test: the server changes the context it is
    given (it starts asking for client certificates)."""
    import trustme

    authority = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    client = authority.issue_cert("needle-test", common_name="needle-test")
    return TlsClientCert(
        context,
        authority.cert_pem.bytes(),
        client.cert_chain_pems[0].bytes(),
        client.private_key_pem.bytes(),
    )
