"""AES-GCM encryption at rest: round trips, wrong keys and tampering."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from dsops.core.crypto import (
    CHUNK,
    HEADER,
    TAG,
    Key,
    decrypt_stream,
    encrypt_stream,
    generate_key,
    load_key,
    parse_key,
)
from dsops.core.errors import EncryptionError


def encrypt(data: bytes, key: Key) -> bytes:
    out = io.BytesIO()
    encrypt_stream(io.BytesIO(data), out, key)
    return out.getvalue()


def decrypt(blob: bytes, key: Key) -> bytes:
    out = io.BytesIO()
    decrypt_stream(io.BytesIO(blob), out, key)
    return out.getvalue()


@pytest.fixture
def key() -> Key:
    return parse_key(generate_key())


@pytest.mark.parametrize("size", [0, 1, CHUNK, CHUNK * 7 // 2], ids=["0B", "1B", "1MiB", "3.5MiB"])
def test_round_trip(key: Key, size: int) -> None:
    data = os.urandom(size)
    blob = encrypt(data, key)
    chunks = max(1, -(-size // CHUNK))
    assert len(blob) == HEADER + size + chunks * TAG
    if size >= 64:
        assert data[:64] not in blob
    assert decrypt(blob, key) == data


def test_same_plaintext_encrypts_differently(key: Key) -> None:
    assert encrypt(b"secret", key) != encrypt(b"secret", key)


def test_wrong_key_names_both_key_ids(key: Key) -> None:
    other = parse_key(generate_key())
    blob = encrypt(b"secret data", key)
    with pytest.raises(EncryptionError) as info:
        decrypt(blob, other)
    message = str(info.value)
    assert key.id in message and other.id in message
    assert "DSOPS_ENCRYPTION_KEY" in message


@pytest.mark.parametrize(
    "cut",
    [1, TAG, CHUNK // 2, CHUNK + TAG],  # inside the last chunk … the whole last chunk
    ids=["1B", "tag", "half-chunk", "whole-last-chunk"],
)
def test_truncation_is_detected(key: Key, cut: int) -> None:
    blob = encrypt(os.urandom(CHUNK * 5 // 2), key)
    with pytest.raises(EncryptionError, match="altered or truncated"):
        decrypt(blob[:-cut], key)


def test_truncation_to_the_header_is_detected(key: Key) -> None:
    with pytest.raises(EncryptionError, match="altered or truncated"):
        decrypt(encrypt(b"", key)[:HEADER], key)
    with pytest.raises(EncryptionError, match="bad header"):
        decrypt(encrypt(b"x", key)[:HEADER - 1], key)


@pytest.mark.parametrize("where", ["nonce", "first-chunk", "last-byte"])
def test_flipped_byte_is_detected(key: Key, where: str) -> None:
    blob = bytearray(encrypt(os.urandom(CHUNK + 100), key))
    index = {"nonce": HEADER - 1, "first-chunk": HEADER + 10, "last-byte": len(blob) - 1}[where]
    blob[index] ^= 0x01
    with pytest.raises(EncryptionError, match="altered or truncated"):
        decrypt(bytes(blob), key)


def test_flipped_key_id_is_reported_as_a_different_key(key: Key) -> None:
    blob = bytearray(encrypt(b"data", key))
    blob[len(b"DSOPSENC1")] ^= 0x01
    with pytest.raises(EncryptionError, match="is encrypted with key"):
        decrypt(bytes(blob), key)


def test_reordered_chunks_are_detected(key: Key) -> None:
    blob = encrypt(os.urandom(CHUNK * 3), key)
    size = CHUNK + TAG
    c0, c1 = blob[HEADER:HEADER + size], blob[HEADER + size:HEADER + 2 * size]
    swapped = blob[:HEADER] + c1 + c0 + blob[HEADER + 2 * size:]
    with pytest.raises(EncryptionError, match="altered or truncated"):
        decrypt(swapped, key)


def test_not_an_encrypted_object(key: Key) -> None:
    with pytest.raises(EncryptionError, match="not a dsops encrypted object"):
        decrypt(b"PAR1" + os.urandom(100), key)


def test_keys_parse_from_base64_and_hex() -> None:
    raw = os.urandom(32)
    import base64

    assert parse_key(base64.urlsafe_b64encode(raw).decode()).raw == raw
    assert parse_key(raw.hex()).raw == raw
    assert parse_key(f"  {raw.hex()}\n").raw == raw
    generated = parse_key(generate_key())
    assert len(generated.raw) == 32 and len(generated.id) == 32
    assert generated.raw.hex() not in repr(generated)


@pytest.mark.parametrize("text", ["", "not-a-key!", "abcd", "zz" * 32, "QUJD"])
def test_bad_keys_are_rejected_with_a_hint(text: str) -> None:
    with pytest.raises(EncryptionError) as info:
        parse_key(text)
    assert "32 bytes" in str(info.value)


def test_load_key_from_environment_and_file(tmp_path: Path) -> None:
    text = generate_key()
    assert load_key({}) is None
    assert load_key({"DSOPS_ENCRYPTION_KEY": text}).id == parse_key(text).id  # type: ignore[union-attr]
    key_file = tmp_path / "key"
    key_file.write_text(text + "\n")
    loaded = load_key({"DSOPS_ENCRYPTION_KEY_FILE": str(key_file)})
    assert loaded is not None and loaded.id == parse_key(text).id
    with pytest.raises(EncryptionError, match="cannot read key file"):
        load_key({"DSOPS_ENCRYPTION_KEY_FILE": str(tmp_path / "missing")})
