"""`needle collect --redact [--key-file FILE]`: the key is read before anything is
collected, and --key-file without --redact is a usage error."""

from __future__ import annotations

import subprocess
import sys


def needle(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "needle", *args], capture_output=True, text=True, check=False
    )


def test_key_file_without_redact_is_refused(tmp_path):
    key = tmp_path / "k"
    key.write_bytes(bytes(32))
    result = needle(
        "collect",
        "-o",
        str(tmp_path / "b.tar.gz"),
        "--kube-dir",
        str(tmp_path),
        "--key-file",
        str(key),
    )
    assert result.returncode == 2
    assert "--key-file goes with --redact" in result.stderr
    assert not (tmp_path / "b.tar.gz").exists()


def test_a_short_key_is_refused_before_collecting(tmp_path):
    key = tmp_path / "k"
    key.write_bytes(b"short")
    result = needle(
        "collect",
        "-o",
        str(tmp_path / "b.tar.gz"),
        "--kube-dir",
        str(tmp_path),
        "--redact",
        "--key-file",
        str(key),
    )
    assert result.returncode == 2
    assert "head -c 32 /dev/urandom" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k"]


def test_collect_redact_from_dumps_writes_a_redacted_bundle(tmp_path):
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    (dumps / "nodes.json").write_text(
        '{"apiVersion": "v1", "kind": "List", "items": [{"kind": "Node", "metadata": '
        '{"name": "prod-node-7"}, "spec": {"podCIDR": "10.42.7.0/24"}, "status": '
        '{"addresses": [{"type": "InternalIP", "address": "172.31.4.17"}]}}]}'
    )
    out = tmp_path / "b.tar.gz"
    result = needle("collect", "-o", str(out), "--kube-dir", str(dumps), "--redact")
    assert result.returncode in (0, 1), result.stderr
    assert "redacted" in result.stderr
    import tarfile

    with tarfile.open(out) as tar:
        text = b"".join(tar.extractfile(m).read() for m in tar if m.isreg())
    for value in (b"prod-node-7", b"10.42.7.0", b"172.31.4.17", str(dumps).encode()):
        assert value not in text
    assert b'"redaction"' in text
