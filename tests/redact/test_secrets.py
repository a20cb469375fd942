"""secrets.text / argv / env_entry on what bundles really hold: kubelet and k3s command
lines, YAML and JSON configuration, HTTP headers, kubeconfigs, PEM keys, URLs; and the
look-alikes that are no secret and must come through unchanged (and still parse)."""

from __future__ import annotations

import base64
import json

import pytest
from needle.redact import secrets
from needle.redact.addresses import AddressMapper
from needle.redact.keys import RedactionKeys
from needle.redact.kube import ObjectRedactor
from needle.redact.macs import MacMapper
from needle.redact.names import NameMap
from needle.redact.text import TextRewriter

R = secrets.REDACTED
K3S_TOKEN = (
    "K10d2b5c1e8f0a4c9b7e6d5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3::server:9f8e7d6c5b4a"
)
JWT = (
    "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEyMyJ9"
    ".eyJpc3MiOiJrdWJlcm5ldGVzL3NlcnZpY2VhY2NvdW50In0"
    ".c2lnbmF0dXJlLWJ5dGVzLWhlcmU"
)
PEM_BODY = "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun"


# --- command lines ----------------------------------------------------------------------
def test_argv_hides_the_value_after_a_secret_flag_and_inside_flag_equals() -> None:
    argv = [
        "/usr/local/bin/k3s",
        "agent",
        "--token",
        K3S_TOKEN,
        "--server",
        "https://192.168.122.11:6443",
        "--node-name",
        "lab-node-2",
        "--kubelet-arg=bootstrap-token=abcdef.0123456789abcdef",
        "--token=" + K3S_TOKEN,
        "--agent-token",
        "--flannel-iface",
        "ens3",
    ]
    out = secrets.argv(argv)
    assert out == [
        "/usr/local/bin/k3s",
        "agent",
        "--token",
        R,
        "--server",
        "https://192.168.122.11:6443",
        "--node-name",
        "lab-node-2",
        f"--kubelet-arg=bootstrap-token={R}",
        f"--token={R}",
        "--agent-token",  # followed by a flag: nothing to hide, nothing swallowed
        "--flannel-iface",
        "ens3",
    ]
    assert all(K3S_TOKEN not in str(arg) for arg in out)


def test_argv_keeps_non_strings_and_the_kubelet_paths() -> None:
    argv = [
        "kubelet",
        "--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf",
        "--kubeconfig=/etc/kubernetes/kubelet.conf",
        "--token-file=/var/lib/rancher/k3s/server/token",
        "--v=2",
        7,
        None,
    ]
    assert secrets.argv(argv) == argv


def test_argv_hides_the_private_flags_it_is_given_and_says_what_it_hid() -> None:
    # the manifest's record of the collector's own command line
    hidden: list[object] = []
    argv = [
        "needle",
        "collect",
        "-o",
        "/home/alice/out.tar.gz",
        "--kubeconfig=/home/alice/.kube/config",
        "--context",
        "prod-east",
        "--token",
        "s3cr3t-t0k3n",
        "--nodes",
        "a,b",
        ["a", "list"],
    ]
    private = frozenset({"-o", "--kubeconfig", "--context"})
    assert secrets.argv(argv, private, hidden.append) == [
        "needle",
        "collect",
        "-o",
        R,
        f"--kubeconfig={R}",
        "--context",
        R,
        "--token",
        R,
        "--nodes",
        "a,b",
        ["a", "list"],
    ]
    assert hidden == ["/home/alice/out.tar.gz", "/home/alice/.kube/config", "prod-east"]
    assert secrets.argv(argv)[2:8] == argv[2:8]  # without private flags, only the secret


def test_argv_keeps_a_token_file_path_in_either_spelling() -> None:
    # `--token-file=/path` is kept (a path says where the secret is, not what it is);
    # the same flag with its path as the next word must be kept the same way.
    assert secrets.argv(["k3s", "agent", "--token-file=/etc/k3s/token"])[2] == (
        "--token-file=/etc/k3s/token"
    )
    assert secrets.argv(["k3s", "agent", "--token-file", "/etc/k3s/token"]) == [
        "k3s",
        "agent",
        "--token-file",
        "/etc/k3s/token",
    ]


def test_a_command_line_in_text_loses_its_token() -> None:
    line = f"ExecStart=/usr/local/bin/k3s agent --token {K3S_TOKEN} --server https://10.0.0.1:6443"
    assert secrets.text(line) == (
        f"ExecStart=/usr/local/bin/k3s agent --token {R} --server https://10.0.0.1:6443"
    )
    assert secrets.text(f"K3S_TOKEN={K3S_TOKEN}\nK3S_URL=https://x:6443") == (
        f"K3S_TOKEN={R}\nK3S_URL=https://x:6443"
    )


# --- configuration ----------------------------------------------------------------------
def test_yaml_secret_keys_lose_their_values() -> None:
    config = (
        "server: https://192.168.122.11:6443\n"
        f"token: {K3S_TOKEN}\n"
        "node-name: lab-node-1\n"
        "password: hunter2\n"
        "client_secret: 'a1b2c3d4'\n"
        'api-key: "zzz999"\n'
        "tokens: 5\n"
    )
    assert secrets.text(config) == (
        "server: https://192.168.122.11:6443\n"
        f"token: {R}\n"
        "node-name: lab-node-1\n"
        f"password: {R}\n"
        f"client_secret: '{R}'\n"
        f'api-key: "{R}"\n'
        "tokens: 5\n"
    )


def test_json_secret_keys_lose_their_values_and_the_json_still_parses() -> None:
    document = {"token": "abc123xyz", "user": "admin", "apiKey": "k-123", "port": 6443}
    out = secrets.text(json.dumps(document, indent=1))
    assert json.loads(out) == {"token": R, "user": "admin", "apiKey": R, "port": 6443}


@pytest.mark.parametrize(
    ("text", "gone"),
    [
        ('password: "correct horse battery staple"\n', "horse battery staple"),
        ('{"password": "p@ss word, with comma"}', "word, with comma"),
        ("secret: 'a;b;c'\n", ";b;c"),
    ],
)
def test_a_quoted_secret_is_removed_whole(text: str, gone: str) -> None:
    out = secrets.text(text)
    assert R in out
    assert gone not in out, out


def test_a_kubeconfigs_client_key_data_is_removed() -> None:
    # kubeadm's admin.conf and kubelet.conf carry the private key base64-encoded
    key = base64.b64encode(
        f"-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}\n-----END RSA PRIVATE KEY-----\n".encode()
    ).decode()
    certificate = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nMIIC\n").decode()
    kubeconfig = (
        "users:\n- name: kubernetes-admin\n  user:\n"
        f"    client-certificate-data: {certificate}\n"
        f"    client-key-data: {key}\n"
    )
    out = secrets.text(kubeconfig)
    assert key not in out
    assert "client-key-data: " in out


# --- tokens wherever they are -------------------------------------------------------------
def test_bearer_and_basic_credentials_are_removed() -> None:
    curl = 'curl -H "Authorization: Bearer abcdefghijk123456" https://10.96.0.1/api'
    assert secrets.text(curl) == f'curl -H "Authorization: Bearer {R}" https://10.96.0.1/api'
    assert secrets.text("Authorization: Basic dXNlcjpwYXNzd29yZA==") == (
        f"Authorization: Basic {R}"
    )


def test_a_jwt_is_removed_wherever_it_is() -> None:
    assert secrets.text(f"got {JWT} from the API") == f"got {R} from the API"
    assert JWT not in secrets.text(f"users:\n- user:\n    token: {JWT}\n")
    assert JWT not in secrets.text(json.dumps({"status": {"token": JWT}}))


@pytest.mark.parametrize("kind", ["RSA ", "EC ", "OPENSSH ", "ENCRYPTED ", ""])
def test_a_pem_private_key_is_removed_and_what_surrounds_it_kept(kind: str) -> None:
    text = (
        "before\n"
        f"-----BEGIN {kind}PRIVATE KEY-----\n{PEM_BODY}\n{PEM_BODY}\n"
        f"-----END {kind}PRIVATE KEY-----\n"
        "after 10.0.0.1\n"
    )
    out = secrets.text(text)
    assert PEM_BODY not in out
    assert out.startswith("before\n-----BEGIN PRIVATE KEY-----")
    assert out.endswith("-----END PRIVATE KEY-----\nafter 10.0.0.1\n")


def test_a_cut_off_private_key_is_removed_to_the_end_and_a_certificate_kept() -> None:
    cut = f"key:\n-----BEGIN PRIVATE KEY-----\n{PEM_BODY}\n{PEM_BODY[:20]}"
    assert PEM_BODY[:20] not in secrets.text(cut)
    certificate = f"-----BEGIN CERTIFICATE-----\n{PEM_BODY}\n-----END CERTIFICATE-----\n"
    assert secrets.text(certificate) == certificate


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://admin:s3cr3t@registry.example.com/v2/",
            f"https://admin:{R}@registry.example.com/v2/",
        ),
        ("postgres://app:pa55@db:5432/shop", f"postgres://app:{R}@db:5432/shop"),
        ("https://registry.example.com/v2/", "https://registry.example.com/v2/"),
        ("ssh://git@github.com/org/repo", "ssh://git@github.com/org/repo"),
    ],
)
def test_url_passwords_are_removed_and_the_user_kept(url: str, expected: str) -> None:
    assert secrets.text(f"pull from {url} now") == f"pull from {expected} now"


# --- not secrets --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        "automountServiceAccountToken: true",
        '"automountServiceAccountToken": false,',
        "--token-file=/var/lib/rancher/k3s/server/token",
        "tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token",
        "the token is stored in a Secret",
        "Password authentication is disabled",
        "secret: null",
        f"token: {R}",
        "max_tokens=512",
        '"expirationSeconds": 3607, "path": "token"',
        "",
    ],
)
def test_what_is_no_secret_is_kept(text: str) -> None:
    assert secrets.text(text) == text


def test_redacting_twice_changes_nothing_more() -> None:
    text = f"token: {K3S_TOKEN}\nAuthorization: Bearer abcdefghijk123456\n{JWT}\n"
    once = secrets.text(text)
    assert once != text and secrets.text(once) == once


@pytest.mark.parametrize(
    "document",
    [
        {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
        {"secrets": [{"name": "default-token-x7k2p"}]},
        {"auth": {"token": {}, "password": []}},
    ],
)
def test_an_object_or_list_under_a_secret_sounding_key_is_not_broken(document) -> None:
    # A JSON document inside text (a ConfigMap value, a CNI config file): the value after
    # the key is an object or a list, no secret to remove, and the JSON must still parse.
    for text in (json.dumps(document), json.dumps(document, indent=2)):
        assert json.loads(secrets.text(text)) == document


def _redactor() -> ObjectRedactor:
    keys = RedactionKeys.from_secret(bytes(range(32)))
    names = NameMap(keys.names)
    macs = MacMapper(keys.macs)
    return ObjectRedactor(TextRewriter(AddressMapper(keys.addresses, macs), macs, names), names)


def test_a_pods_projected_token_volume_and_env_come_through_the_object_pass() -> None:
    pod = {
        "kind": "Pod",
        "spec": {
            "automountServiceAccountToken": True,
            "containers": [
                {
                    "name": "app",
                    "args": ["--token", "abc123", "--v=2"],
                    "env": [
                        {"name": "DB_PASSWORD", "value": "hunter2"},
                        {
                            "name": "API_TOKEN",
                            "valueFrom": {"secretKeyRef": {"name": "api", "key": "token"}},
                        },
                        {"name": "FLANNEL_IFACE", "value": "ens3"},
                    ],
                }
            ],
            "volumes": [
                {
                    "name": "kube-api-access",
                    "projected": {
                        "sources": [
                            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}
                        ]
                    },
                }
            ],
        },
    }
    out = _redactor().document(pod)
    container = out["spec"]["containers"][0]
    assert container["args"] == ["--token", R, "--v=2"]
    assert container["env"] == [
        {"name": "DB_PASSWORD", "value": R},
        {"name": "API_TOKEN", "valueFrom": {"secretKeyRef": {"name": "api", "key": "token"}}},
        {"name": "FLANNEL_IFACE", "value": "ens3"},
    ]
    assert out["spec"]["volumes"] == pod["spec"]["volumes"]
    assert out["spec"]["automountServiceAccountToken"] is True


def test_a_config_map_holding_json_keeps_it_json() -> None:
    config = {"auth": {"serviceAccountToken": {"path": "token"}, "token": "abc123"}}
    config_map = {"kind": "ConfigMap", "data": {"config.json": json.dumps(config)}}
    out = _redactor().document(config_map)
    assert json.loads(out["data"]["config.json"]) == {
        "auth": {"serviceAccountToken": {"path": "token"}, "token": R}
    }


# --- env entries --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"name": "DB_PASSWORD", "value": "hunter2"}, {"name": "DB_PASSWORD", "value": R}),
        ({"name": "K3S_TOKEN", "value": K3S_TOKEN}, {"name": "K3S_TOKEN", "value": R}),
        (
            {"name": "AWS_SECRET_ACCESS_KEY", "value": "wJalr/K7MDENG"},
            {"name": "AWS_SECRET_ACCESS_KEY", "value": R},
        ),
        ({"name": "TOKEN_FILE", "value": "/var/run/secrets/token"}, None),
        ({"name": "SECRET_COUNT", "value": "3"}, None),
        ({"name": "NODE_NAME", "value": "lab-node-1"}, None),
        ({"name": "API_TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}, None),
        ({"name": "PASSWORD", "value": 42}, None),
    ],
)
def test_env_entry(entry: dict, expected: dict | None) -> None:
    original = json.loads(json.dumps(entry))
    secrets.env_entry(entry)
    assert entry == (original if expected is None else expected)
