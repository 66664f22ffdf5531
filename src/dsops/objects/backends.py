"""Where blobs physically live. One small interface, two implementations:

- ``LocalBackend``: a directory, plain ``os`` calls (fast; writes go to a temporary name
  in the same directory tree and are renamed into place).
- ``FsspecBackend``: any fsspec filesystem (S3-compatible, GCS, Azure…). Object stores
  make a PUT visible only when complete (single or multipart), so uploads are atomic.

Besides content-addressed blobs, a backend keeps append-only log segments under plain
names in ``logs/`` (prediction logs, feedback), read in place by pyarrow and DuckDB.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import threading
from pathlib import Path
from typing import Any, Protocol

from dsops.core.errors import DsopsError, IntegrityError, StoreError

# An S3 upload holds about 2 × PART_SIZE × UPLOAD_PARTS_IN_FLIGHT bytes in memory. s3fs's
# defaults (50 MiB parts, 10 at once) read a file under 100 MB whole and a bigger one 500 MB
# at a time. Downloads stream (one GET, 64 KiB reads): measured on SeaweedFS, as fast as
# s3fs's parallel ranged GETs, which buffer every range in memory.
PART_SIZE = 8 << 20
UPLOAD_PARTS_IN_FLIGHT = 2
S3_MAX_PARTS = 10_000


class Backend(Protocol):
    """The primitives ObjectStore needs from a place that holds blobs."""

    location: str
    is_local: bool

    def exists(self, key: str) -> bool: ...

    def put_path(self, src: Path, key: str) -> None:
        """Store the complete staging file ``src`` under ``key`` atomically, consuming it."""

    def put_data(self, data: bytes, key: str) -> None:
        """Store a small, already verified blob held in memory under ``key`` atomically."""

    def get_path(self, key: str, dst: Path) -> None:
        """Copy the blob at ``key`` to the local file ``dst``."""

    def local_path(self, key: str) -> Path | None:
        """A path readable in place, when the backend is a local directory."""

    def staging_dir(self) -> Path:
        """A local directory for temporary files (same filesystem as blobs when local)."""

    def put_log(self, key: str, data: bytes) -> None:
        """Store a log segment under ``logs/<key>`` atomically (never seen half written)."""

    def list_logs(self, prefix: str = "") -> list[str]:
        """Keys (relative to ``logs/``) of every log segment under the folder ``prefix``."""

    def delete_logs(self, keys: list[str]) -> None:
        """Remove log segments (compacted or past retention); one already gone is no error."""

    def arrow_filesystem(self) -> tuple[Any, str]:
        """A ``pyarrow.fs.FileSystem`` and the path of ``logs/`` on it, for readers."""


LOGS = "logs"


def check_log_key(key: str, *, folder: bool = False) -> str:
    """``key`` when it is a relative path inside ``logs/``: no ``..``, ``.`` or empty part."""
    parts = (key[:-1] if folder and key.endswith("/") else key).split("/")
    if key.startswith("/") or any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"invalid log key {key!r}")
    return key


class LocalBackend:
    """Blobs in a local directory."""

    is_local = True

    def __init__(self, root: Path) -> None:
        self.root = root
        self.location = str(root)
        self._tmp = root / "tmp"
        self._names = itertools.count()

    def exists(self, key: str) -> bool:
        return os.path.exists(self.root / key)

    def put_path(self, src: Path, key: str) -> None:
        final = self.root / key
        try:
            os.replace(src, final)  # src is staged under root/tmp: same filesystem, atomic
        except FileNotFoundError:
            if not src.exists():
                raise
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, final)

    def put_data(self, data: bytes, key: str) -> None:
        # The fewest system calls for the many-small-files case: one exclusive create
        # (names are unique per process and thread), one write, one rename.
        tmp = self.staging_dir() / f"put-{os.getpid()}-{threading.get_ident()}-{next(self._names)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
        try:
            os.write(fd, data)
        except BaseException:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        os.close(fd)
        self.put_path(tmp, key)

    def get_path(self, key: str, dst: Path) -> None:
        try:
            shutil.copyfile(self.root / key, dst)
        except FileNotFoundError:
            raise IntegrityError(f"object {key} is missing from {self.location}") from None

    def local_path(self, key: str) -> Path | None:
        return self.root / key

    def staging_dir(self) -> Path:
        if not self._tmp.is_dir():
            self._tmp.mkdir(parents=True, exist_ok=True)
        return self._tmp

    def put_log(self, key: str, data: bytes) -> None:
        final = self.root / LOGS / check_log_key(key)
        tmp = self.staging_dir() / f"log-{os.getpid()}-{threading.get_ident()}-{next(self._names)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            # A segment is acknowledged rows: on disk before its name appears, so a
            # machine crash cannot leave an empty file under a real name.
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        os.close(fd)
        try:
            os.replace(tmp, final)
        except FileNotFoundError:
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, final)

    def list_logs(self, prefix: str = "") -> list[str]:
        logs = self.root / LOGS
        top = logs / check_log_key(prefix, folder=True) if prefix else logs
        keys: list[str] = []
        base = len(str(logs)) + 1
        for folder, dirs, files in os.walk(top):
            dirs.sort()
            keys.extend(f"{folder}/{name}"[base:] for name in sorted(files)
                        if not name.startswith("."))
        return keys

    def delete_logs(self, keys: list[str]) -> None:
        logs = self.root / LOGS
        for key in keys:
            (logs / check_log_key(key)).unlink(missing_ok=True)

    def arrow_filesystem(self) -> tuple[Any, str]:
        from pyarrow import fs

        return fs.LocalFileSystem(), str(self.root / LOGS)


class FsspecBackend:
    """Blobs under ``url`` on an fsspec filesystem (``s3://bucket/prefix`` …)."""

    is_local = False

    def __init__(self, url: str, staging: Path, **options: Any) -> None:
        import fsspec

        self.location = url
        protocol = self.protocol = url.split("://", 1)[0]
        if protocol == "s3":
            options = {**_s3_options(), **options}
        try:
            self.fs, self.base = fsspec.core.url_to_fs(url, **options)
        except (ImportError, ValueError) as exc:
            raise StoreError(f"cannot use object store {url}: {exc}") from None
        self.base = self.base.rstrip("/")
        self._staging = staging

    def _path(self, key: str) -> str:
        return f"{self.base}/{key}"

    def exists(self, key: str) -> bool:
        if self.protocol == "s3":
            # One HEAD: s3fs's exists() follows a missing key with a LIST (is it a
            # "directory"?), which costs every put of new content a third request.
            bucket, _, path = self._path(key).partition("/")
            try:
                self._call("check", self.fs.call_s3, "head_object", Bucket=bucket, Key=path)
            except FileNotFoundError:
                return False
            return True
        return bool(self._call("check", self.fs.exists, self._path(key)))

    def put_path(self, src: Path, key: str) -> None:
        options: dict[str, int] = {}
        if self.protocol == "s3":
            parts = -(-src.stat().st_size // S3_MAX_PARTS)
            options.update(chunksize=max(PART_SIZE, parts),
                           max_concurrency=UPLOAD_PARTS_IN_FLIGHT)
        self._call("upload", self.fs.put_file, str(src), self._path(key), **options)
        src.unlink(missing_ok=True)

    def put_data(self, data: bytes, key: str) -> None:
        self._call("upload", self.fs.pipe_file, self._path(key), data)  # one atomic PUT

    def get_path(self, key: str, dst: Path) -> None:
        try:
            self._call("download", self.fs.get_file, self._path(key), str(dst))
        except FileNotFoundError:
            raise IntegrityError(f"object {key} is missing from {self.location}") from None

    def local_path(self, key: str) -> Path | None:
        return None

    def staging_dir(self) -> Path:
        self._staging.mkdir(parents=True, exist_ok=True)
        return self._staging

    def put_log(self, key: str, data: bytes) -> None:
        self._call("upload", self.fs.pipe_file, self._path(f"{LOGS}/{check_log_key(key)}"), data)

    def list_logs(self, prefix: str = "") -> list[str]:
        top = self._path(f"{LOGS}/{check_log_key(prefix, folder=True)}" if prefix else LOGS)
        top = top.rstrip("/")
        found = self._call("list", self.fs.find, top)
        # find() lists from the server, but fills s3fs's listing cache, which other
        # processes' new segments would make stale for later info()/ls() calls.
        self.fs.invalidate_cache()
        base = len(self._path(LOGS)) + 1
        return sorted(p[base:] for p in found
                      if p.startswith(top + "/") and not p.rsplit("/", 1)[-1].startswith("."))

    def delete_logs(self, keys: list[str]) -> None:
        if keys:  # s3fs deletes up to 1,000 keys a request
            paths = [self._path(f"{LOGS}/{check_log_key(key)}") for key in keys]
            with contextlib.suppress(FileNotFoundError):
                self._call("delete", self.fs.rm, paths)

    def arrow_filesystem(self) -> tuple[Any, str]:
        from pyarrow import fs

        return fs.PyFileSystem(fs.FSSpecHandler(self.fs)), self._path(LOGS)

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (DsopsError, FileNotFoundError):
            raise
        except Exception as exc:  # botocore, aiohttp, OSError: the service is unusable
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise StoreError(
                f"object store {self.location}: {what} failed: {reason}",
                hint="check DSOPS_OBJECTS_URL, the endpoint (DSOPS_S3_ENDPOINT_URL) and "
                     "credentials, and that the server is up",
            ) from exc


def _s3_options() -> dict[str, Any]:
    """s3fs options from the environment: endpoint, short timeouts, few retries."""
    options: dict[str, Any] = {
        "max_concurrency": 1,  # downloads stream; uploads set their own (put_path)
        "config_kwargs": {"connect_timeout": 5, "read_timeout": 60,
                          "retries": {"max_attempts": 2, "mode": "standard"}},
    }
    endpoint = os.environ.get("DSOPS_S3_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        options["client_kwargs"] = {"endpoint_url": endpoint}
    return options
