"""Reaching the Kubernetes API: which credentials, which server, and errors in one line.

Nothing here touches the client library's process-wide default configuration: every
setting lives in the `Cluster` object, so two collections (or tests) never interfere.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import urllib3
import yaml
from kubernetes import client, config
from kubernetes.config.config_exception import ConfigException
from needle.collector.errors import CollectorError
from needle.collector.kube.calls import PROBE_POLICY, KubeCallError, KubeCalls, one_line

# Seconds to wait for the first answer: an unreachable API must not hold the user long.
PROBE_TIMEOUT = (5.0, 10.0)


@dataclass
class Cluster:
    """One authenticated API endpoint."""

    configuration: client.Configuration
    api: client.ApiClient
    server: str
    context: str | None
    """The kubeconfig context used, or None for in-cluster credentials."""
    server_version: str | None = None
    calls: KubeCalls = field(default_factory=KubeCalls)
    """Every REST call goes through it (reads bodies to the end, retries what is safe)."""

    @property
    def origin(self) -> str:
        where = f"context {self.context}" if self.context else "in-cluster credentials"
        return f"{self.server} ({where})"

    def private_api_client(self) -> client.ApiClient:
        """A client of its own for one exec stream.

        The library's `stream()` swaps a method on the ApiClient it is given while the
        websocket is set up, so concurrent execs through one shared client would race
        (and REST calls in between would go out as websockets).
        """
        return client.ApiClient(self.configuration)

    def close(self) -> None:
        self.api.close()


def _default_kubeconfig(environ: Mapping[str, str]) -> str | None:
    """KUBECONFIG (possibly a list of files, as kubectl merges them) or ~/.kube/config."""
    if environ.get("KUBECONFIG"):
        return environ["KUBECONFIG"]
    home = Path(environ.get("HOME") or Path.home()) / ".kube" / "config"
    return str(home) if home.is_file() else None


def _context_of(path: str, wanted: str | None) -> str | None:
    if wanted:
        return wanted
    try:
        _contexts, active = config.list_kube_config_contexts(config_file=path)
    except (ConfigException, OSError, yaml.YAMLError, TypeError):
        return None
    return str(active.get("name")) if active else None


def load_configuration(
    kubeconfig: Path | None,
    context: str | None,
    environ: Mapping[str, str] | None = None,
) -> tuple[client.Configuration, str | None]:
    """Client settings from --kubeconfig, KUBECONFIG, ~/.kube/config or the pod's service
    account, in that order (kubectl's order). Returns them with the context name."""
    environ = os.environ if environ is None else environ
    configuration = client.Configuration()
    if kubeconfig is not None and not kubeconfig.is_file():
        raise CollectorError(
            f"kubeconfig {kubeconfig} does not exist or is not a file: "
            "give --kubeconfig PATH to a readable kubeconfig"
        )
    path = str(kubeconfig) if kubeconfig is not None else _default_kubeconfig(environ)
    if path is None:
        if not environ.get("KUBERNETES_SERVICE_HOST"):
            raise CollectorError(
                "no kubeconfig found: give --kubeconfig PATH, set KUBECONFIG, "
                "or run needle inside the cluster"
            )
        if context:
            raise CollectorError("--context needs a kubeconfig; in-cluster credentials have none")
        try:
            loader = config.incluster_config.InClusterConfigLoader(
                token_filename=config.incluster_config.SERVICE_TOKEN_FILENAME,
                cert_filename=config.incluster_config.SERVICE_CERT_FILENAME,
                environ=environ,
            )
            loader.load_and_set(configuration)
        except ConfigException as exc:
            raise CollectorError(f"in-cluster credentials are unusable: {exc}") from exc
        return configuration, None
    try:
        config.load_kube_config(
            config_file=path,
            context=context,
            client_configuration=configuration,
            persist_config=False,
        )
    except ConfigException as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if context and context in message:
            contexts = _context_names(path)
            raise CollectorError(
                f"context {context!r} is not in kubeconfig {path}"
                + (f" (contexts: {', '.join(contexts)})" if contexts else "")
            ) from exc
        raise CollectorError(f"cannot use kubeconfig {path}: {message}") from exc
    except (OSError, yaml.YAMLError, ValueError, TypeError) as exc:
        raise CollectorError(f"cannot read kubeconfig {path}: {one_line(str(exc))}") from exc
    return configuration, _context_of(path, context)


def _context_names(path: str) -> list[str]:
    try:
        contexts, _active = config.list_kube_config_contexts(config_file=path)
    except (ConfigException, OSError, yaml.YAMLError, TypeError):
        return []
    return sorted(str(c.get("name")) for c in contexts or [])


def connect(
    kubeconfig: Path | None,
    context: str | None,
    pool_size: int = 16,
    environ: Mapping[str, str] | None = None,
) -> Cluster:
    """Load credentials and check the API answers and accepts them (raises CollectorError)."""
    configuration, context_name = load_configuration(kubeconfig, context, environ)
    # One connection per concurrent node plus a few for the main thread; the default
    # (5 per CPU) makes threads queue for a connection on small jump hosts.
    configuration.connection_pool_maxsize = max(pool_size, 4)
    # Retries are KubeCalls' job alone (it knows which calls are safe to repeat); urllib3
    # retrying underneath would multiply them.
    configuration.retries = urllib3.Retry(total=0, connect=0, read=0, status=0, redirect=0)
    api = client.ApiClient(configuration)
    api.user_agent = "needle"
    cluster = Cluster(configuration, api, configuration.host, context_name)
    try:
        # raw JSON: the generated models reject a server that leaves a field out
        reply = cluster.calls.call(
            "read the server version",
            client.VersionApi(api).get_code,
            policy=PROBE_POLICY,
            timeout=PROBE_TIMEOUT,
        )
        try:
            cluster.server_version = str(reply.object("the version").get("gitVersion"))
        except (ValueError, AttributeError):
            cluster.server_version = None
    except KubeCallError as exc:
        if exc.status == 401:
            cluster.close()
            raise CollectorError(
                f"the API server {cluster.server} rejected the credentials (401 Unauthorized): "
                "log in again or refresh the kubeconfig's token"
            ) from exc
        if exc.status is None:
            cluster.close()
            raise CollectorError(
                f"cannot reach the Kubernetes API at {cluster.server}: {exc}; "
                "check the address, your network or VPN, or choose another --context"
            ) from exc
        if exc.status not in (403, 404):  # /version may be closed to us; the rest may not
            cluster.close()
            raise CollectorError(f"the API server {cluster.server} answered {exc}") from exc
    return cluster
