"""The content-addressed object store, on a local directory and on a real S3 server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from dsops.core.crypto import Key, generate_key, parse_key
from dsops.core.errors import EncryptionError, IntegrityError, StoreError, UsageError
from dsops.core.hashing import hash_bytes, hash_file
from dsops.objects import ObjectStore, open_object_store
from dsops.objects.backends import FsspecBackend, LocalBackend
from dsops.objects.store import object_key

MiB = 1 << 20
ENDPOINT_ENV = "DSOPS_S3_ENDPOINT_URL"


def _s3fs() -> object:
    import s3fs

    return s3fs.S3FileSystem(client_kwargs={"endpoint_url": os.environ[ENDPOINT_ENV]},
                             skip_instance_cache=True)


class Place:
    """An object store under test plus raw access to what it stored (bypassing dsops)."""

    def __init__(self, objects: ObjectStore, url: str | None, root: Path) -> None:
        self.objects, self.url, self.root = objects, url, root

    def keys(self) -> list[str]:
        """Every blob stored under a real key (temporaries excluded)."""
        backend = self.objects.backend
        if isinstance(backend, LocalBackend):
            return sorted(str(p.relative_to(backend.root)) for p in backend.root.rglob("*")
                          if p.is_file() and p.parent != backend.root / "tmp")
        assert isinstance(backend, FsspecBackend)
        fs = _s3fs()
        return sorted(p.removeprefix(backend.base + "/") for p in fs.find(backend.base))

    def overwrite(self, key: str, data: bytes) -> None:
        """Replace a stored blob behind dsops's back."""
        backend = self.objects.backend
        if isinstance(backend, LocalBackend):
            path = backend.root / key
            path.chmod(0o644)
            path.write_bytes(data)
        else:
            assert isinstance(backend, FsspecBackend)
            _s3fs().pipe_file(f"{backend.base}/{key}", data)

    def raw(self, key: str) -> bytes:
        backend = self.objects.backend
        if isinstance(backend, LocalBackend):
            return (backend.root / key).read_bytes()
        assert isinstance(backend, FsspecBackend)
        return bytes(_s3fs().cat_file(f"{backend.base}/{key}"))

    def staging_leftovers(self) -> list[Path]:
        return [p for p in self.objects.backend.staging_dir().iterdir()]


@pytest.fixture(params=["local", "s3"])
def place(request: pytest.FixtureRequest, tmp_path: Path) -> Place:
    """An empty object store: a local directory, or a fresh bucket on SeaweedFS."""
    if request.param == "local":
        root = tmp_path / "objects"
        return Place(open_object_store(None, root), None, root)
    url = request.getfixturevalue("s3_objects_url")
    return Place(open_object_store(url, tmp_path / "state"), url, tmp_path / "state")


@pytest.fixture
def key() -> Key:
    return parse_key(generate_key())


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_put_and_get_round_trip(place: Place, tmp_path: Path) -> None:
    data = os.urandom(3 * MiB + 17)
    src = write(tmp_path / "in" / "data.bin", data)
    digest = place.objects.put_file(src)
    assert digest == hash_file(src) == hash_bytes(data)
    assert place.keys() == [object_key(digest)]
    assert place.objects.exists(digest)

    dest = tmp_path / "out" / "nested" / "data.bin"
    place.objects.get_file(digest, dest)
    assert dest.read_bytes() == data
    assert place.objects.read_bytes(digest) == data
    assert place.objects.read_bytes(place.objects.put_bytes(b"")) == b""
    assert place.staging_leftovers() == []


def test_identical_content_is_stored_once(place: Place, tmp_path: Path) -> None:
    data = os.urandom(100_000)
    first = place.objects.put_file(write(tmp_path / "a.bin", data))
    stored = place.keys()
    before = place.raw(stored[0]) if place.url else os.stat(place.root / stored[0])

    assert place.objects.put_file(write(tmp_path / "copy" / "b.bin", data)) == first
    assert place.objects.put_bytes(data) == first
    assert place.keys() == stored
    if place.url is None:  # not rewritten: same inode, same mtime
        after = os.stat(place.root / stored[0])
        assert isinstance(before, os.stat_result)
        assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_missing_object_is_an_integrity_error(place: Place, tmp_path: Path) -> None:
    with pytest.raises(IntegrityError, match="missing"):
        place.objects.get_file("ab" * 32, tmp_path / "out.bin")
    assert not (tmp_path / "out.bin").exists()


def test_corrupt_object_is_detected_on_read(place: Place, tmp_path: Path) -> None:
    data = b"model weights " * 1000
    digest = place.objects.put_bytes(data)
    place.overwrite(object_key(digest), b"model weightz " * 1000)

    dest = tmp_path / "out" / "model.bin"
    dest.parent.mkdir()
    with pytest.raises(IntegrityError) as info:
        place.objects.get_file(digest, dest)
    assert f"object {digest[:12]}" in str(info.value) and "corrupt" in str(info.value)
    assert list(dest.parent.iterdir()) == []  # neither the file nor a temporary
    with pytest.raises(IntegrityError):
        place.objects.read_bytes(digest)


def test_encrypted_put_and_get(place: Place, key: Key, tmp_path: Path) -> None:
    data = b"email,income\nalice@example.com,52000\n" * 50_000  # ~1.9 MB: several chunks
    digest = place.objects.put_file(write(tmp_path / "pii.csv", data), key=key)
    assert digest == hash_bytes(data)
    assert place.keys() == [object_key(digest, encrypted=True)]
    assert b"alice@example.com" not in place.raw(object_key(digest, encrypted=True))

    assert place.objects.read_bytes(digest, key=key, encrypted=True) == data
    dest = tmp_path / "out.csv"
    place.objects.get_file(digest, dest, key=key, encrypted=True)
    assert dest.read_bytes() == data
    # the same content again, encrypted: stored once
    assert place.objects.put_bytes(data, key=key) == digest
    assert len(place.keys()) == 1


def test_encrypted_read_without_the_key(place: Place, key: Key, tmp_path: Path) -> None:
    digest = place.objects.put_bytes(b"secret", key=key)
    with pytest.raises(EncryptionError, match="no key is configured"):
        place.objects.get_file(digest, tmp_path / "out", encrypted=True)
    other = parse_key(generate_key())
    with pytest.raises(EncryptionError) as info:
        place.objects.read_bytes(digest, key=other, encrypted=True)
    assert key.id in str(info.value) and other.id in str(info.value)
    with pytest.raises(IntegrityError, match="missing"):  # not stored in the clear
        place.objects.read_bytes(digest)
    assert not (tmp_path / "out").exists()
    assert place.staging_leftovers() == []


def test_put_files_in_parallel(place: Place, tmp_path: Path) -> None:
    files = [write(tmp_path / "in" / f"{i:03}.txt", f"file {i}\n".encode() * (i + 1))
             for i in range(500)]
    items = [(path, hash_file(path)) for path in files]
    done: list[int] = []
    started = time.monotonic()
    place.objects.put_files(items, progress=done.append)
    elapsed = time.monotonic() - started
    assert sum(done) == 500
    assert len(place.keys()) == 500
    assert elapsed < 30

    out = tmp_path / "out"
    sample = items[::5]
    place.objects.get_files([(digest, out / path.name) for path, digest in sample])
    assert all((out / path.name).read_bytes() == path.read_bytes() for path, _ in sample)


def test_failed_put_leaves_nothing(place: Place, key: Key, tmp_path: Path) -> None:
    gone = tmp_path / "gone.bin"  # hashed, then deleted before the upload
    digest = hash_bytes(b"vanished")
    with pytest.raises(UsageError, match="disappeared"):
        place.objects.put_file(gone, digest=digest)
    with pytest.raises(UsageError, match="disappeared"):
        place.objects.put_file(gone, digest=digest, key=key)
    assert place.keys() == []
    assert place.staging_leftovers() == []
    assert not place.objects.exists(digest)


def test_file_changed_after_hashing_is_not_stored(place: Place, key: Key, tmp_path: Path) -> None:
    path = tmp_path / "moving.bin"
    digest = hash_bytes(b"what it was when hashed")
    path.write_bytes(b"what it is when copied")
    for k in (None, key):
        with pytest.raises(UsageError, match="changed while being stored"):
            place.objects.put_file(path, digest=digest, key=k)
    assert place.keys() == []
    assert place.staging_leftovers() == []


def test_pack_takes_bytes_already_hashed_and_checks_files_read(place: Place,
                                                                tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(b"alpha")
    items = [(path, hash_bytes(b"alpha"), None),
             (tmp_path / "never-read", hash_bytes(b"beta"), b"beta")]
    digest, offsets = place.objects.put_pack(items)
    assert offsets == [0, 5]
    assert place.objects.read_bytes(digest) == b"alphabeta"
    before = place.keys()
    with pytest.raises(UsageError, match="changed while being stored"):
        place.objects.put_pack([(path, hash_bytes(b"what it was when hashed"), None)])
    assert place.keys() == before
    assert place.staging_leftovers() == []


KILLED_PUT = """
import os, sys
from pathlib import Path
from dsops.core.crypto import parse_key
from dsops.objects import open_object_store

url, state, fifo, digest, key = sys.argv[1:]
store = open_object_store(url or None, Path(state))
print("ready", flush=True)
store.put_file(Path(fifo), digest=digest, key=parse_key(key))
print("finished", flush=True)
"""


def test_put_killed_midway_leaves_no_object_under_its_key(
    place: Place, tmp_path: Path
) -> None:
    data = os.urandom(8 * MiB)
    digest, key_text = hash_bytes(data), generate_key()
    fifo = tmp_path / "feed"
    os.mkfifo(fifo)
    root = str(place.objects.backend.root) if place.url is None else str(place.root)
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_PUT, place.url or "", root, str(fifo), digest, key_text],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    with open(fifo, "wb") as feed:  # half the content, then the process dies
        feed.write(data[: 5 * MiB])
        feed.flush()
        time.sleep(0.3)
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    assert place.keys() == []
    assert not place.objects.exists(digest, encrypted=True)

    # a later put of the same content stores it whole
    key = parse_key(key_text)
    assert place.objects.put_file(write(tmp_path / "whole.bin", data), key=key) == digest
    assert place.objects.read_bytes(digest, key=key, encrypted=True) == data


STREAMING = """
import os, resource, sys, time
from pathlib import Path
from dsops.objects import open_object_store

url, state, big, warm = sys.argv[1:]
store = open_object_store(url or None, Path(state))
out = Path(state).parent / "out"
# warm up: import and start everything a put and a get use, on a small file
digest = store.put_file(Path(warm))
store.get_file(digest, out / "warm.bin")
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.monotonic()
digest = store.put_file(Path(big))
store.get_file(digest, out / "big.bin")
elapsed = time.monotonic() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(digest, (peak - base) / 1024, elapsed)
"""


def sparse_file(path: Path, size: int) -> Path:
    """A file of ``size`` bytes: 4 KiB of random data every MiB, holes in between."""
    with open(path, "wb") as f:
        for offset in range(0, size, MiB):
            f.seek(offset)
            f.write(os.urandom(4096))
        f.truncate(size)
    return path


def test_large_files_stream_in_bounded_memory(place: Place, tmp_path: Path) -> None:
    big = sparse_file(tmp_path / "big.bin", 300 * MiB)
    warm = write(tmp_path / "warm.bin", os.urandom(MiB))
    root = str(place.objects.backend.root) if place.url is None else str(place.root)
    try:
        result = subprocess.run(
            [sys.executable, "-c", STREAMING, place.url or "", root, str(big), str(warm)],
            capture_output=True, text=True, timeout=240,
        )
        assert result.returncode == 0, result.stderr
        digest, growth_mb, elapsed = result.stdout.split()
        assert digest == hash_file(big)
        assert hash_file(tmp_path / "out" / "big.bin") == digest
    finally:  # 300 MB × 3 copies: do not keep them in pytest's retained temp dirs
        big.unlink()
        (tmp_path / "out" / "big.bin").unlink(missing_ok=True)
        if place.url is None:
            for path in place.root.rglob("*"):
                if path.is_file() and path.stat().st_size > 100 * MiB:
                    path.unlink()
    print(f"peak RSS growth {float(growth_mb):.0f} MB, put + get {float(elapsed):.1f} s")
    assert float(growth_mb) < 100, f"peak RSS grew by {growth_mb} MB ({elapsed} s)"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("operation", ["put", "get"])
def test_s3_server_down_is_a_quick_store_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, operation: str
) -> None:
    monkeypatch.setenv(ENDPOINT_ENV, f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "dsops-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "dsops-test-secret")
    store = open_object_store("s3://no-server/dsops", tmp_path / "state")
    calls: dict[str, Callable[[], object]] = {
        "put": lambda: store.put_bytes(b"data"),
        "get": lambda: store.get_file("ab" * 32, tmp_path / "out.bin"),
    }
    started = time.monotonic()
    with pytest.raises(StoreError) as info:
        calls[operation]()
    elapsed = time.monotonic() - started
    assert elapsed < 20
    message = str(info.value)
    assert "object store s3://no-server/dsops:" in message
    assert "DSOPS_S3_ENDPOINT_URL" in message
    assert not (tmp_path / "out.bin").exists()
    print(f"{operation}: {elapsed:.1f} s: {message}")
