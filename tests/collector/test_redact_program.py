"""The node script's redaction program, on many generated secrets in every form k3s and
RKE2 configuration, env files, CNI JSON and command lines hold them, under each awk a
node may have (busybox, mawk; gawk when present)."""

from __future__ import annotations

import random
import re
import shutil
import string
import subprocess
from importlib import resources
from pathlib import Path

import pytest

NAMES = [
    "token",
    "agent-token",
    "etcd-s3-secret-key",
    "etcd-s3-access-key",
    "datastore-password",
    "PSK",
    "client-key-data",
    "ApiKey",
    "credentials",
    "K3S_TOKEN",
]
# what real tokens are made of (K10...::server:..., base64, JWTs), and more
ALPHABET = string.ascii_letters + string.digits + "+/=._:-~!%^*()"
TEMPLATES = [
    "{name}: {value}",
    '{name}: "{value}"',
    "  {name}: '{value}'",
    '  "{name}": "{value}",',
    '{{"Type": "ipsec", "{name}": "{value}", "MTU": 1400}}',
    "--{name}={value}",
    "  - --{name}={value}",
    "--{name} {value}",
    "--{name}\n{value}",
    "        '--{name}' \\\n        '{value}' \\",
    "{name}={value}",
    "{name}:\n  {value}",
    "{name}: |\n  {value}\n  {value}x",
    "- name: x\n  {name}:\n  - {value}",
    "datastore-endpoint: mysql://k3s:{value}@tcp(db:3306)/k3s",
]


def awks() -> list[list[str]]:
    found = [["busybox", "awk"]] if shutil.which("busybox") else []
    found += [[tool] for tool in ("mawk", "gawk", "awk") if shutil.which(tool)]
    return found


def program() -> str:
    prelude = (resources.files("needle.collector") / "script" / "prelude.sh").read_text()
    match = re.search(r"^NEEDLE_REDACT_AWK='(.*?)'$", prelude, re.MULTILINE | re.DOTALL)
    assert match, "the prelude defines NEEDLE_REDACT_AWK in single quotes"
    return match.group(1)


def secret(rng: random.Random, url: bool) -> str:
    alphabet = ALPHABET.replace("/", "").replace(":", "") if url else ALPHABET
    first = rng.choice(string.ascii_letters + string.digits)  # never a flag or a YAML sigil
    return "ndlS" + first + "".join(rng.choice(alphabet) for _ in range(rng.randint(4, 40)))


@pytest.mark.parametrize("awk", awks(), ids=lambda argv: argv[0])
def test_no_generated_secret_survives_and_other_lines_are_kept(awk, tmp_path: Path):
    rng = random.Random(20261207)
    blocks, secrets, kept = [], [], []
    for index in range(400):
        template = TEMPLATES[index % len(TEMPLATES)]
        value = secret(rng, url="://" in template)
        secrets.append(value)
        blocks.append(template.format(name=rng.choice(NAMES), value=value))
        plain = f"flannel-backend: vxlan-{index}"
        kept.append(plain)
        blocks.append(plain)
    source = tmp_path / "config.yaml"
    source.write_text("\n".join(blocks) + "\n")
    result = subprocess.run(
        [*awk, program(), str(source)], capture_output=True, text=True, check=True
    )
    leaked = [value for value in secrets if value in result.stdout]
    assert not leaked, leaked[:5]
    lines = result.stdout.splitlines()
    assert all(line in lines for line in kept), "lines without a secret name stay as they are"
    assert result.stdout.count("<redacted>") >= len(secrets)
