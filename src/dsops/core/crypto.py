"""Encryption at rest: AES-256-GCM over 1 MiB chunks, streamed in constant memory.

Format: ``DSOPSENC1`` | key id (16 bytes) | nonce prefix (8 bytes) | chunks. Chunk *i* is
AES-GCM with nonce = prefix ‖ i (4 bytes) and associated data = one byte, 1 for the last
chunk and 0 otherwise, so truncating, reordering or splicing chunks fails authentication.
The key comes from ``DSOPS_ENCRYPTION_KEY`` or ``DSOPS_ENCRYPTION_KEY_FILE``, never the store.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path
from typing import BinaryIO

from dsops.core.errors import EncryptionError
from dsops.core.hashing import hash_bytes

MAGIC = b"DSOPSENC1"
CHUNK = 1 << 20
TAG = 16
HEADER = len(MAGIC) + 16 + 8


class Key:
    """A 256-bit data key and its public id (a hash prefix, safe to store)."""

    def __init__(self, raw: bytes) -> None:
        if len(raw) != 32:
            raise EncryptionError(f"an encryption key must be 32 bytes, got {len(raw)}")
        self.raw = raw
        # 16 bytes (32 hex digits): the size the encrypted header reserves for it.
        self.id = hash_bytes(b"dsops-key-id:" + raw)[:32]

    def __repr__(self) -> str:  # never show the key itself
        return f"Key(id={self.id})"


def generate_key() -> str:
    """A new random key, encoded for ``DSOPS_ENCRYPTION_KEY``."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def parse_key(text: str) -> Key:
    """Decode a key given as 64 hex digits or URL-safe base64 of 32 bytes."""
    text = text.strip()
    try:
        raw = bytes.fromhex(text) if len(text) == 64 else base64.urlsafe_b64decode(text)
    except (ValueError, binascii.Error):
        raise EncryptionError(
            "the encryption key is not valid: expected 32 bytes as base64 or 64 hex digits",
            hint="create one with 'dsops keys generate'",
        ) from None
    return Key(raw)


def load_key(environ: dict[str, str] | None = None) -> Key | None:
    """The key from the environment or its key file, or None when none is configured."""
    env = os.environ if environ is None else environ
    if env.get("DSOPS_ENCRYPTION_KEY"):
        return parse_key(env["DSOPS_ENCRYPTION_KEY"])
    if env.get("DSOPS_ENCRYPTION_KEY_FILE"):
        path = Path(env["DSOPS_ENCRYPTION_KEY_FILE"]).expanduser()
        try:
            return parse_key(path.read_text())
        except OSError as exc:
            raise EncryptionError(f"cannot read key file {path}: {exc.strerror}") from None
    return None


def encrypt_stream(src: BinaryIO, dst: BinaryIO, key: Key) -> None:
    """Encrypt ``src`` into ``dst`` chunk by chunk."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    aes = AESGCM(key.raw)
    prefix = os.urandom(8)
    dst.write(MAGIC + bytes.fromhex(key.id) + prefix)
    index = 0
    chunk = src.read(CHUNK)
    while True:
        following = src.read(CHUNK)
        last = not following
        nonce = prefix + index.to_bytes(4, "big")
        dst.write(aes.encrypt(nonce, chunk, b"\x01" if last else b"\x00"))
        if last:
            return
        chunk, index = following, index + 1


def encrypted_key_id(header: bytes) -> str:
    """The key id recorded in an encrypted object's header."""
    if not header.startswith(MAGIC) or len(header) < HEADER:
        raise EncryptionError("not a dsops encrypted object (bad header)")
    return header[len(MAGIC):len(MAGIC) + 16].hex()


def decrypt_stream(src: BinaryIO, dst: BinaryIO, key: Key, *, what: str = "object") -> None:
    """Decrypt ``src`` into ``dst``; a wrong key or any tampering is an EncryptionError."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    header = src.read(HEADER)
    stored_id = encrypted_key_id(header)
    if stored_id != key.id:
        raise EncryptionError(
            f"{what} is encrypted with key {stored_id}, but the configured key is {key.id}",
            hint="set DSOPS_ENCRYPTION_KEY (or DSOPS_ENCRYPTION_KEY_FILE) to the key it was "
                 "written with",
        )
    aes = AESGCM(key.raw)
    prefix = header[-8:]
    index = 0
    block = src.read(CHUNK + TAG)
    while True:
        following = src.read(CHUNK + TAG)
        last = not following
        nonce = prefix + index.to_bytes(4, "big")
        try:
            dst.write(aes.decrypt(nonce, block, b"\x01" if last else b"\x00"))
        except InvalidTag:
            raise EncryptionError(f"{what} failed authentication: it was altered or truncated") \
                from None
        if last:
            return
        block, index = following, index + 1
