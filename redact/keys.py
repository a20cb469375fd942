"""One secret, separate keys: each mapping (addresses, MACs, names, interface names) gets
its own key derived by HKDF, so learning one mapping's key says nothing of the others,
and the same secret redacts the next bundle the same way (before/after still diff)."""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SALT = b"needle.redact.v1"
SECRET_BYTES = 32
_HEX_KEY = re.compile(rb"[0-9A-Fa-f]{64}")


class KeyFileError(ValueError):
    """A key file that cannot serve as a secret (the message says how to make one)."""


def derive(secret: bytes, purpose: str, length: int) -> bytes:
    """`length` bytes for `purpose`, from `secret` (HKDF-SHA256)."""
    if len(secret) < SECRET_BYTES:
        raise ValueError(f"a redaction secret needs at least {SECRET_BYTES} bytes")
    kdf = HKDF(algorithm=hashes.SHA256(), length=length, salt=SALT, info=purpose.encode())
    return kdf.derive(secret)


def read_key_file(path: str | os.PathLike[str]) -> bytes:
    """The secret in a key file: 64 hex digits (surrounding whitespace ignored), or else
    the file's raw bytes, at least 32 of them."""
    name = os.fspath(path)
    how = f"make one with: head -c 32 /dev/urandom > {name}"
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise KeyFileError(f"cannot read key file {name}: {error.strerror}; {how}") from error
    stripped = data.strip()
    if _HEX_KEY.fullmatch(stripped):
        return bytes.fromhex(stripped.decode("ascii"))
    if len(data) < SECRET_BYTES:
        raise KeyFileError(
            f"key file {name} has {len(data)} bytes, needs at least {SECRET_BYTES}; {how}"
        )
    return data


def new_secret() -> bytes:
    return secrets.token_bytes(SECRET_BYTES)


@dataclass(frozen=True, repr=False)
class RedactionKeys:
    """The keys of one redaction, derived from one secret (repr never shows them)."""

    addresses: bytes  # the 32-byte Crypto-PAn key
    macs: bytes
    names: bytes
    interfaces: bytes

    @classmethod
    def from_secret(cls, secret: bytes) -> RedactionKeys:
        return cls(
            addresses=derive(secret, "addresses", 32),
            macs=derive(secret, "macs", 32),
            names=derive(secret, "names", 32),
            interfaces=derive(secret, "interfaces", 32),
        )

    def __repr__(self) -> str:
        return "RedactionKeys(<redacted>)"
