"""Keys: one secret, one key per purpose, and key files that refuse to be weak."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac

import pytest
from needle.redact.keys import (
    KeyFileError,
    RedactionKeys,
    derive,
    new_secret,
    read_key_file,
)

SECRET = bytes(range(32))


def rfc5869(secret: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    """HKDF-SHA256 written out, to pin the salt and the info the module uses."""
    prk = hmac.new(salt, secret, hashlib.sha256).digest()
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


def test_derive_is_hkdf_sha256_with_the_versioned_salt():
    assert derive(SECRET, "addresses", 32) == rfc5869(SECRET, b"needle.redact.v1", b"addresses", 32)
    assert len(derive(SECRET, "x", 80)) == 80


def test_same_secret_same_keys_and_purposes_differ():
    first, second = RedactionKeys.from_secret(SECRET), RedactionKeys.from_secret(SECRET)
    assert first == second
    values = [first.addresses, first.macs, first.names, first.interfaces]
    assert all(len(value) == 32 for value in values)
    assert len(set(values)) == 4
    assert RedactionKeys.from_secret(bytes(32)) != first
    assert first.addresses == derive(SECRET, "addresses", 32)


def test_keys_are_frozen_and_never_printed():
    keys = RedactionKeys.from_secret(SECRET)
    with pytest.raises(dataclasses.FrozenInstanceError):
        keys.addresses = bytes(32)  # type: ignore[misc]
    assert keys.addresses.hex() not in repr(keys)
    assert keys.addresses.hex() not in str(keys)


def test_short_secret_refused():
    with pytest.raises(ValueError):
        derive(bytes(31), "addresses", 32)


def test_new_secret():
    first, second = new_secret(), new_secret()
    assert len(first) == 32
    assert first != second


def test_key_file_raw_and_hex(tmp_path):
    raw = tmp_path / "raw.key"
    raw.write_bytes(b"\x00\xff" * 20)
    assert read_key_file(raw) == b"\x00\xff" * 20
    hexed = tmp_path / "hex.key"
    hexed.write_text(SECRET.hex().upper() + "\n")
    assert read_key_file(str(hexed)) == SECRET
    # 64 characters that are not all hex digits are raw bytes, not a hex key
    text = tmp_path / "text.key"
    text.write_bytes(b"g" * 64)
    assert read_key_file(text) == b"g" * 64
    # 62 hex digits are not a hex key: they are 62 raw bytes, long enough as such
    hex31 = tmp_path / "hex31.key"
    hex31.write_text(bytes(31).hex())
    assert read_key_file(hex31) == bytes(31).hex().encode()


def test_short_key_file_refused_with_how_to_make_one(tmp_path):
    short = tmp_path / "short.key"
    short.write_bytes(b"hunter2\n")
    with pytest.raises(KeyFileError) as caught:
        read_key_file(short)
    message = str(caught.value)
    assert "\n" not in message
    assert f"head -c 32 /dev/urandom > {short}" in message
    assert isinstance(caught.value, ValueError)
    with pytest.raises(KeyFileError, match="head -c 32 /dev/urandom"):
        read_key_file(tmp_path / "missing.key")
