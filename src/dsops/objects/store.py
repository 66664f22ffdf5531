"""ObjectStore: content addressing, dedup, encryption and verification over a Backend.

Keys are ``ab/cdef…`` (BLAKE3 of the plaintext) for plain blobs and ``enc/ab/cdef…`` for
encrypted ones. Nothing is ever written under a real key until it is complete, and every
read checks the content against its key before handing it out.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dsops.core.crypto import Key, decrypt_stream, encrypt_stream
from dsops.core.errors import EncryptionError, IntegrityError, UsageError
from dsops.core.hashing import HashingReader, hash_bytes, hash_file
from dsops.objects.backends import Backend, FsspecBackend, LocalBackend

Progress = Callable[[int], None]
SMALL_FILE = 1 << 20  # read whole, verified in memory, written with one create + rename


def object_key(digest: str, *, encrypted: bool = False) -> str:
    """The backend key of a digest."""
    return f"{'enc/' if encrypted else ''}{digest[:2]}/{digest[2:]}"


class ObjectStore:
    """Put and get blobs by content hash."""

    def __init__(self, backend: Backend, *, workers: int = 16) -> None:
        self.backend = backend
        self.workers = workers

    @property
    def location(self) -> str:
        return self.backend.location

    def exists(self, digest: str, *, encrypted: bool = False) -> bool:
        return self.backend.exists(object_key(digest, encrypted=encrypted))

    def put_file(self, path: Path, *, digest: str | None = None, key: Key | None = None) -> str:
        """Store a file's content; returns its digest. Identical content is stored once.

        The content is hashed again as it is copied to a staging file, and only a copy
        that matches ``digest`` is moved (renamed or uploaded) under its key: a file
        changed after it was hashed can never be stored under the wrong name.
        """
        digest = digest or hash_file(path)
        okey = object_key(digest, encrypted=key is not None)
        if self.backend.exists(okey):
            return digest
        try:
            small = key is None and path.stat().st_size <= SMALL_FILE
            data = path.read_bytes() if small else b""
        except FileNotFoundError:
            raise UsageError(f"{path} disappeared while being stored") from None
        if small:
            if hash_bytes(data) != digest:
                raise UsageError(f"{path} changed while being stored: nothing was stored",
                                 hint="run the command again once the file is complete")
            self.backend.put_data(data, okey)
            return digest
        with self._staged() as tmp:
            try:
                if key is None:
                    # Kernel copy, then the staged copy is hashed on all cores: the
                    # verification costs one parallel hash, not a single-threaded one.
                    shutil.copyfile(path, tmp)
                    staged_digest = hash_file(tmp)
                    os.chmod(tmp, 0o444)
                else:
                    with open(path, "rb") as raw, open(tmp, "wb") as dst:
                        src = HashingReader(raw)
                        encrypt_stream(src, dst, key)
                    staged_digest = src.hexdigest()
            except FileNotFoundError:
                raise UsageError(f"{path} disappeared while being stored") from None
            if staged_digest != digest:
                raise UsageError(f"{path} changed while being stored: nothing was stored",
                                 hint="run the command again once the file is complete")
            self.backend.put_path(tmp, okey)
        return digest

    def put_files(
        self, items: Iterable[tuple[Path, str]], *, key: Key | None = None,
        progress: Progress | None = None,
    ) -> None:
        """Store many (path, digest) pairs: in parallel on remote stores (latency-bound);
        one after another on a local directory, where a put is a few fast system calls
        and a thread pool measured 20× slower (10,000 × 1 KB files: 9.9 s vs 0.5 s)."""
        if self.backend.is_local:
            for path, digest in items:
                self.put_file(path, digest=digest, key=key)
                if progress:
                    progress(1)
            return

        def one(item: tuple[Path, str]) -> int:
            self.put_file(item[0], digest=item[1], key=key)
            return 1

        with ThreadPoolExecutor(self.workers) as pool:
            for done in pool.map(one, items):
                if progress:
                    progress(done)

    def put_bytes(self, data: bytes, *, key: Key | None = None) -> str:
        """Store a small blob held in memory."""
        digest = hash_bytes(data)
        okey = object_key(digest, encrypted=key is not None)
        if self.backend.exists(okey):
            return digest
        if key is None:
            self.backend.put_data(data, okey)
            return digest
        with self._staged() as tmp:
            tmp.write_bytes(data)
            return self.put_file(tmp, digest=digest, key=key)

    def get_file(self, digest: str, dest: Path, *, key: Key | None = None,
                 encrypted: bool = False) -> None:
        """Write the blob to ``dest`` atomically, after checking it matches ``digest``."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            self._fetch_verified(digest, tmp, key=key, encrypted=encrypted)
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)

    def get_files(self, items: Iterable[tuple[str, Path]], *, key: Key | None = None,
                  encrypted: bool = False, progress: Progress | None = None) -> None:
        """Fetch many (digest, dest) pairs: in parallel from remote stores, one after another
        from a local directory (a few system calls each: a pool's start-up costs more)."""

        def one(item: tuple[str, Path]) -> int:
            self.get_file(item[0], item[1], key=key, encrypted=encrypted)
            return 1

        if self.backend.is_local:
            for item in items:
                if progress:
                    progress(one(item))
                else:
                    one(item)
            return
        with ThreadPoolExecutor(self.workers) as pool:
            for done in pool.map(one, items):
                if progress:
                    progress(done)

    def read_bytes(self, digest: str, *, key: Key | None = None, encrypted: bool = False) -> bytes:
        """A small blob's content, verified."""
        with self._staged() as tmp:
            self._fetch_verified(digest, tmp, key=key, encrypted=encrypted)
            return tmp.read_bytes()

    def put_pack(self, items: list[tuple[str | Path, str, bytes | None]], *,
                 key: Key | None = None, progress: Progress | None = None
                 ) -> tuple[str, list[int]]:
        """Store many small files as one blob (a pack, as git does), given as (path,
        digest, the bytes that were hashed or None to read them); returns the pack's
        digest and each file's offset in it. One write instead of one per file: on a
        local disk that is one create instead of thousands, on S3 one PUT. Encrypted
        packs are encrypted as they are written: no plaintext reaches the disk."""
        reader = _PackReader(items, progress)
        src = HashingReader(reader)
        with self._staged() as tmp:
            with open(tmp, "wb") as dst:
                if key is None:
                    shutil.copyfileobj(src, dst, 8 << 20)
                else:
                    encrypt_stream(src, dst, key)
            if progress:
                progress(len(reader.offsets) % 256)
            digest = src.hexdigest()
            okey = object_key(digest, encrypted=key is not None)
            if not self.backend.exists(okey):
                if key is None:
                    os.chmod(tmp, 0o444)
                self.backend.put_path(tmp, okey)
        return digest, reader.offsets

    def get_packed(self, pack: str, entries: list[tuple[int, int, str, Path]], *,
                   key: Key | None = None, encrypted: bool = False) -> None:
        """Write files kept in a pack, given as (offset, size, digest, dest): each one
        checked against its digest and written atomically."""
        local = None if encrypted else self.readable_path(pack)
        with self._staged() as staged:
            if local is None or not local.exists():
                self._fetch_verified(pack, staged, key=key, encrypted=encrypted)
                local = staged
            with open(local, "rb") as src:
                for offset, size, digest, dest in entries:
                    src.seek(offset)
                    data = src.read(size)
                    if hash_bytes(data) != digest:
                        raise IntegrityError(
                            f"pack {pack[:12]}… in {self.location} is corrupt at offset "
                            f"{offset}", hint="restore it from a backup or re-add the data")
                    _write_atomically(dest, data)

    def put_log(self, key: str, data: bytes) -> None:
        """Store a log segment under ``logs/<key>`` atomically. Log segments are named by
        their writer (time-ordered ids), not by content, and are never rewritten (only
        replaced by compaction, see serving/predlog_compact.py)."""
        self.backend.put_log(key, data)

    def list_logs(self, prefix: str = "") -> list[str]:
        """Keys (relative to ``logs/``) of the log segments under the folder ``prefix``."""
        return self.backend.list_logs(prefix)

    def delete_logs(self, keys: list[str]) -> None:
        """Remove log segments under ``logs/`` (compacted, or past retention)."""
        self.backend.delete_logs(keys)

    def log_filesystem(self) -> tuple[Any, str]:
        """``(pyarrow filesystem, root)``: segment ``key`` is read at ``f"{root}/{key}"``."""
        return self.backend.arrow_filesystem()

    def readable_path(self, digest: str) -> Path | None:
        """A local path to read a plain blob in place (no copy), if the backend allows."""
        return self.backend.local_path(object_key(digest))

    def _fetch_verified(self, digest: str, out: Path, *, key: Key | None,
                        encrypted: bool) -> None:
        okey = object_key(digest, encrypted=encrypted)
        if encrypted:
            if key is None:
                raise EncryptionError(
                    "this content is encrypted and no key is configured",
                    hint="set DSOPS_ENCRYPTION_KEY or DSOPS_ENCRYPTION_KEY_FILE",
                )
            with self._staged() as cipher:
                source = self.backend.local_path(okey)
                if source is None or not source.exists():
                    self.backend.get_path(okey, cipher)
                    source = cipher
                with open(source, "rb") as src, open(out, "wb") as dst:
                    decrypt_stream(src, dst, key, what=f"object {digest[:12]}")
        else:
            self.backend.get_path(okey, out)
        actual = hash_file(out)
        if actual != digest:
            raise IntegrityError(
                f"object {digest[:12]}… in {self.location} is corrupt: its content hashes to "
                f"{actual[:12]}…",
                hint="restore it from a backup or re-add the data",
            )

    @contextmanager
    def _staged(self) -> Iterator[Path]:
        fd, name = tempfile.mkstemp(dir=self.backend.staging_dir(), prefix="stage-")
        os.close(fd)
        path = Path(name)
        try:
            yield path
        finally:
            path.unlink(missing_ok=True)


class _PackReader:
    """Reads like one file: the concatenation of small files, each read from disk checked
    against its digest (a file changed since it was hashed stops the pack)."""

    def __init__(self, items: list[tuple[str | Path, str, bytes | None]],
                 progress: Progress | None) -> None:
        self._items = iter(items)
        self._progress = progress
        self._buffer = bytearray()  # amortised appends: bytes += bytes is quadratic here
        self._position = 0
        self.offsets: list[int] = []

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            item = next(self._items, None)
            if item is None:
                break
            path, digest, data = item
            if data is None:
                try:
                    with open(path, "rb") as f:
                        data = f.read()
                except FileNotFoundError:
                    raise UsageError(f"{path} disappeared while being stored") from None
                if hash_bytes(data) != digest:
                    raise UsageError(f"{path} changed while being stored: nothing was stored",
                                     hint="run the command again once the files are complete")
            self.offsets.append(self._position)
            self._position += len(data)
            self._buffer += data
            if self._progress and len(self.offsets) % 256 == 0:
                self._progress(256)
        if size < 0:
            size = len(self._buffer)
        out = bytes(self._buffer[:size])
        del self._buffer[:size]
        return out


def _write_atomically(dest: Path, data: bytes) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def open_object_store(url: str | None, default_root: Path) -> ObjectStore:
    """A local store at ``default_root`` unless ``url`` names another place."""
    if not url or url.startswith("file://") or "://" not in url:
        root = Path(url.removeprefix("file://")) if url else default_root
        return ObjectStore(LocalBackend(root))
    return ObjectStore(FsspecBackend(url, staging=default_root / "tmp"))
