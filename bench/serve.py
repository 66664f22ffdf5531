"""Benchmark: `dsops serve` side by side with `mlflow models serve` and a minimal FastAPI app.

Run from the repository root (``make bench`` does this, after installing the ``bench``
extra, which brings MLflow and FastAPI):

    python bench/serve.py [--duration 10] [--warmup 3] [--reps 3] [--client auto|wrk|asyncio]

One scikit-learn model, a 20-feature LogisticRegression (numeric columns f0..f19) trained
on fixed-seed data, is served three ways from scratch projects under ``bench/.work/serve``
(removed at the end unless ``--keep``):

- dsops: ``dsops.sdk.log_model`` + ``RolloutService.deploy("bench@1", ...)`` into two
  environments, then ``dsops serve --env ENV`` (one worker, prediction logging on): ``prod``
  with the default micro-batching, ``nobatch`` deployed with ``max_batch=1``;
- MLflow: ``mlflow.sklearn.save_model`` of the same model, ``mlflow models serve -m DIR
  --env-manager local`` (uvicorn, one worker, its defaults);
- a minimal hand-written FastAPI app (one uvicorn worker) that loads the same model with
  joblib, builds a pandas DataFrame from the ``dataframe_split`` payload and calls
  ``predict``.

All servers start together; the first answer of each must equal the model's own prediction
for that row (and four more rows are checked), or the benchmark fails. Load: ``wrk`` (one
thread, keep-alive connections, a Lua script posting the same 1-row ``dataframe_split`` JSON
to ``/invocations``; latency percentiles from wrk's own histogram), or, when wrk is missing
and cannot be installed, an asyncio raw HTTP/1.1 keep-alive client in another process. Each
case: an untimed warm-up of ``--warmup`` seconds, then ``--duration`` seconds measured;
``--reps`` rounds over every case, the servers' order reversed each round; medians reported.

Targets (issue 6): vs MLflow at 16 (and 64) connections, ≥ 10× requests/s and p99 ≤ ⅕; vs the
FastAPI app, ≥ 2× requests/s at 16 connections and p50 at 1 connection no worse; micro-batching
on vs off at 64 connections is reported without a target. Every server is stopped with
SIGTERM at the end, even on error.

Results: a table on stdout and ``bench/results/serve.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import textwrap
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import data_add
from data_add import contention, save_results

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / "bench" / ".work" / "serve"
RESULTS = REPO / "bench" / "results" / "serve.json"
BIN = Path(sys.executable).parent  # the venv's bin (not resolved: keep the venv)
FEATURES = 20
ROWS = 2_000
READY_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 60.0

# (server, connections) measured each round.
CASES: dict[str, tuple[int, ...]] = {
    "dsops": (1, 16, 64),
    "dsops-nobatch": (16, 64),
    "fastapi": (1, 16, 64),
    "mlflow": (1, 16, 64),
}

FASTAPI_APP = '''\
"""The minimal hand-written server the benchmark compares with: FastAPI, joblib, pandas."""

import joblib
import pandas as pd
from fastapi import FastAPI, Request

model = joblib.load("model.joblib")
app = FastAPI()


@app.post("/invocations")
async def invocations(request: Request) -> dict:
    split = (await request.json())["dataframe_split"]
    frame = pd.DataFrame(split["data"], columns=split["columns"])
    return {"predictions": model.predict(frame).tolist()}


@app.get("/ping")
async def ping() -> dict:
    return {}
'''

WRK_SCRIPT = '''\
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [=[{body}]=]

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH-RESULT %.0f %.0f %.0f %.0f %.0f %.0f %.0f %.0f %.0f %.0f %.0f\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.mean, latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
'''


# --- the model -------------------------------------------------------------------------------


def train() -> tuple[Any, Any]:
    """The fixed-seed data and the LogisticRegression fitted on it."""
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(6)
    x = pd.DataFrame(rng.normal(size=(ROWS, FEATURES)), columns=[f"f{i}" for i in range(FEATURES)])
    weights = rng.normal(size=FEATURES)
    y = ((x.to_numpy() @ weights + rng.normal(scale=0.5, size=ROWS)) > 0).astype(int)
    return x, LogisticRegression(max_iter=1000).fit(x, y)


def payload(rows: Any) -> bytes:
    """The MLflow ``dataframe_split`` JSON of ``rows``."""
    return json.dumps({"dataframe_split": {"columns": list(rows.columns),
                                           "data": rows.to_numpy().tolist()}}).encode()


# --- the servers -----------------------------------------------------------------------------


@dataclass
class Server:
    """One server under test, started as its own process group."""

    name: str
    cmd: list[str]
    cwd: Path
    ready_path: str
    port: int
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None
    ready_s: float = 0.0
    exit_code: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.log = WORK / f"{self.name}.log"
        with open(self.log, "wb") as out:  # a file, not a pipe: nobody drains a pipe during a case
            self.process = subprocess.Popen(self.cmd, cwd=self.cwd, env=self.env, stdout=out,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        self._started = time.perf_counter()

    def wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode} before it was "
                                   f"ready:\n{self.tail()}")
            try:
                with urllib.request.urlopen(self.url + self.ready_path, timeout=2) as response:
                    if response.status == 200:
                        self.ready_s = time.perf_counter() - self._started
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} was not ready after {READY_TIMEOUT_S:.0f} s:\n{self.tail()}")

    def stop(self) -> None:
        """SIGTERM to the server's process group (MLflow's CLI runs uvicorn as a child), then wait."""
        if self.process is None or self.process.poll() is not None:
            self.exit_code = None if self.process is None else self.process.returncode
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.exit_code = self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.exit_code = self.process.wait()
        except ProcessLookupError:
            self.exit_code = self.process.wait()

    def tail(self, lines: int = 30) -> str:
        if self.log is None or not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = str(BIN) + os.pathsep + env.get("PATH", "")
    env["DSOPS_USER"] = "bench@example.com"
    for name in ("DSOPS_STORE_URL", "DSOPS_OBJECTS_URL", "DSOPS_URL", "DSOPS_RUN_ID",
                 "PROMETHEUS_MULTIPROC_DIR"):
        env.pop(name, None)
    env["MLFLOW_TRACKING_URI"] = (WORK / "mlruns").as_uri()
    env["GIT_PYTHON_REFRESH"] = "quiet"
    return env


def setup_dsops(x: Any, model: Any) -> Path:
    """A project with ``bench@1`` deployed to ``prod`` (default batching) and ``nobatch`` (max_batch 1)."""
    import dsops.sdk as sdk
    from dsops.config import load_config
    from dsops.rollout.service import RolloutService
    from dsops.workspace import Workspace

    project = WORK / "dsops"
    ws = Workspace.init(project, project="bench", identity="bench@example.com")
    (project / "dsops.yaml").write_text("project: bench\n" + textwrap.dedent("""
        environments:
          prod: {}
          nobatch: {}
    """))
    ws.config = load_config(project / "dsops.yaml")
    sdk.log_model(model, "bench", input_example=x.head(), workspace=ws)
    rollout = RolloutService(ws)
    rollout.deploy("bench@1", "prod")
    rollout.deploy("bench@1", "nobatch", options={"max_batch": 1, "max_wait_us": 0})
    ws.close()
    return project


def setup_mlflow(x: Any, model: Any) -> Path:
    import logging
    import warnings

    import mlflow.sklearn

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    path = WORK / "mlflow-model"
    mlflow.sklearn.save_model(model, str(path), input_example=x.head())
    return path


def setup_fastapi(model: Any) -> Path:
    import joblib

    directory = WORK / "fastapi"
    directory.mkdir()
    joblib.dump(model, directory / "model.joblib")
    (directory / "app.py").write_text(FASTAPI_APP)
    return directory


def servers(x: Any, model: Any) -> dict[str, Server]:
    env = server_env()
    dsops_project = setup_dsops(x, model)
    mlflow_model = setup_mlflow(x, model)
    fastapi_dir = setup_fastapi(model)
    out = {}
    for name, environment in (("dsops", "prod"), ("dsops-nobatch", "nobatch")):
        port = free_port()
        out[name] = Server(name, [str(BIN / "dsops"), "serve", "--env", environment, "--port", str(port)],
                           dsops_project, "/v2/health/ready", port, env)
    port = free_port()
    out["mlflow"] = Server("mlflow", [str(BIN / "mlflow"), "models", "serve", "-m", str(mlflow_model),
                                      "--env-manager", "local", "-p", str(port)],
                           WORK, "/ping", port, env)
    port = free_port()
    out["fastapi"] = Server("fastapi", [str(BIN / "python"), "-m", "uvicorn", "app:app", "--port", str(port),
                                        "--workers", "1", "--log-level", "warning", "--no-access-log"],
                            fastapi_dir, "/ping", port, env)
    return out


def check_answers(server: Server, x: Any, model: Any, rows: list[int]) -> list[Any]:
    """POST each row alone; every answer must be the model's own prediction for it."""
    answers = []
    for i in rows:
        row = x.iloc[[i]]
        request = urllib.request.Request(server.url + "/invocations", data=payload(row),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            body = json.loads(response.read())
        expected = {"predictions": model.predict(row).tolist()}
        if body != expected:
            raise AssertionError(f"{server.name} answered {body} for row {i}, the model predicts {expected}")
        answers.append(body)
    return answers


# --- load generation -------------------------------------------------------------------------


def ensure_wrk() -> str | None:
    """wrk's path; installs the Debian package when it is missing and we are root."""
    found = shutil.which("wrk")
    if found is None and hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        print("      wrk is missing: apt-get install -y wrk", flush=True)
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        if subprocess.run(["apt-get", "install", "-y", "wrk"], **quiet).returncode != 0:
            subprocess.run(["apt-get", "update"], **quiet)
            subprocess.run(["apt-get", "install", "-y", "wrk"], **quiet)
        found = shutil.which("wrk")
    return found


def run_wrk(wrk: str, script: Path, url: str, connections: int, seconds: float) -> dict[str, Any]:
    cmd = [wrk, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", "--timeout", "30s",
           "-s", str(script), url + "/invocations"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH-RESULT ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"`{' '.join(cmd)}` failed (exit {proc.returncode}):\n"
                           f"{proc.stdout}\n{proc.stderr}")
    (requests, duration_us, p50, p99, mean, worst,
     e_connect, e_read, e_write, e_status, e_timeout) = (float(v) for v in line.split()[1:])
    return {"requests": int(requests), "seconds": duration_us / 1e6, "rps": requests / (duration_us / 1e6),
            "p50_ms": p50 / 1e3, "p99_ms": p99 / 1e3, "mean_ms": mean / 1e3, "max_ms": worst / 1e3,
            "errors": {"connect": int(e_connect), "read": int(e_read), "write": int(e_write),
                       "non_2xx": int(e_status), "timeout": int(e_timeout)}}


async def _load(port: int, body: bytes, connections: int, seconds: float) -> dict[str, Any]:
    """Raw HTTP/1.1 keep-alive clients posting ``body``; latencies from each request's own timing."""
    request = (f"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    latencies: list[float] = []
    errors = {"connect": 0, "read": 0, "write": 0, "non_2xx": 0, "timeout": 0}
    clock = time.perf_counter

    async def connection(stop_at: float) -> None:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            errors["connect"] += 1
            return
        try:
            while clock() < stop_at:
                started = clock()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                await reader.readexactly(length)
                latencies.append(clock() - started)
                if not head.startswith(b"HTTP/1.1 2"):
                    errors["non_2xx"] += 1
        except (OSError, asyncio.IncompleteReadError):
            errors["read"] += 1
        finally:
            writer.close()

    started = clock()
    await asyncio.gather(*(connection(started + seconds) for _ in range(connections)))
    elapsed = clock() - started
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1e3 if latencies else 0.0

    return {"requests": len(latencies), "seconds": elapsed, "rps": len(latencies) / elapsed,
            "p50_ms": pct(50), "p99_ms": pct(99),
            "mean_ms": statistics.fmean(latencies) * 1e3 if latencies else 0.0,
            "max_ms": latencies[-1] * 1e3 if latencies else 0.0, "errors": errors}


def run_asyncio_client(port: int, body_file: Path, connections: int, seconds: float) -> dict[str, Any]:
    """The asyncio client in its own process (so it does not share an event loop with anything)."""
    spec = json.dumps({"port": port, "body": str(body_file), "connections": connections, "seconds": seconds})
    proc = subprocess.run([sys.executable, __file__, "--load-client", spec], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"load client failed (exit {proc.returncode}):\n{proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


@dataclass
class Load:
    """How load is generated: wrk, or the asyncio client."""

    client: str
    wrk: str | None
    script: Path
    body_file: Path

    def run(self, server: Server, connections: int, seconds: float) -> dict[str, Any]:
        if self.client == "wrk":
            assert self.wrk is not None
            return run_wrk(self.wrk, self.script, server.url, connections, seconds)
        return run_asyncio_client(server.port, self.body_file, connections, seconds)

    def version(self) -> str:
        if self.wrk is None:
            return "asyncio raw HTTP/1.1 client"
        proc = subprocess.run([self.wrk, "--version"], capture_output=True, text=True)
        return (proc.stdout + proc.stderr).splitlines()[0].split(" Copyright")[0]


# --- measuring --------------------------------------------------------------------------------


def measure(all_servers: dict[str, Server], load: Load, reps: int, warmup: float,
            duration: float) -> dict[str, list[dict[str, Any]]]:
    runs: dict[str, list[dict[str, Any]]] = {f"{n}@{c}": [] for n, cs in CASES.items() for c in cs}
    order = list(CASES)
    total = sum(len(cs) for cs in CASES.values())
    for rep in range(reps):
        names = order if rep % 2 == 0 else order[::-1]
        done = 0
        for name in names:
            for connections in CASES[name]:
                done += 1
                load.run(all_servers[name], connections, warmup)
                before = contention()["loadavg"][0]
                result = load.run(all_servers[name], connections, duration)
                result["loadavg_1m_before"] = before
                result["rep"] = rep + 1
                runs[f"{name}@{connections}"].append(result)
                errors = sum(result["errors"].values())
                print(f"      round {rep + 1}/{reps} [{done}/{total}] {name:<13} {connections:>3} conns: "
                      f"{result['rps']:>8,.0f} req/s  p50 {result['p50_ms']:7.2f} ms  "
                      f"p99 {result['p99_ms']:8.2f} ms" + (f"  errors {result['errors']}" if errors else "")
                      + f"  (load {before:.2f})", flush=True)
    return runs


def summarise(runs: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    out = {}
    for key, results in runs.items():
        name, _, conns = key.partition("@")
        rps = [r["rps"] for r in results]
        out[key] = {
            "server": name, "connections": int(conns), "reps": len(results),
            "rps": statistics.median(rps), "rps_min": min(rps), "rps_max": max(rps),
            "p50_ms": statistics.median(r["p50_ms"] for r in results),
            "p99_ms": statistics.median(r["p99_ms"] for r in results),
            "errors": sum(sum(r["errors"].values()) for r in results),
            "requests": sum(r["requests"] for r in results),
        }
    return out


def comparisons(summary: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The target rows: (case, dsops figure, other figure, ratio, target)."""
    def s(name: str, conns: int) -> dict[str, Any]:
        return summary[f"{name}@{conns}"]

    rows = []
    for conns in (16, 64):
        d, m = s("dsops", conns), s("mlflow", conns)
        rows.append({"case": f"req/s vs MLflow, {conns} conns", "unit": "req/s", "dsops": d["rps"],
                     "other": m["rps"], "ratio": d["rps"] / m["rps"], "target": 10.0})
        rows.append({"case": f"p99 vs MLflow, {conns} conns", "unit": "ms", "dsops": d["p99_ms"],
                     "other": m["p99_ms"], "ratio": m["p99_ms"] / d["p99_ms"], "target": 5.0})
    d, f = s("dsops", 16), s("fastapi", 16)
    rows.append({"case": "req/s vs FastAPI app, 16 conns", "unit": "req/s", "dsops": d["rps"],
                 "other": f["rps"], "ratio": d["rps"] / f["rps"], "target": 2.0})
    d, f = s("dsops", 1), s("fastapi", 1)
    rows.append({"case": "p50 vs FastAPI app, 1 conn", "unit": "ms", "dsops": d["p50_ms"],
                 "other": f["p50_ms"], "ratio": f["p50_ms"] / d["p50_ms"], "target": 1.0})
    on, off = s("dsops", 64), s("dsops-nobatch", 64)
    rows.append({"case": "req/s batching on vs off, 64 conns", "unit": "req/s", "dsops": on["rps"],
                 "other": off["rps"], "ratio": on["rps"] / off["rps"], "target": None})
    rows.append({"case": "p99 batching on vs off, 64 conns", "unit": "ms", "dsops": on["p99_ms"],
                 "other": off["p99_ms"], "ratio": off["p99_ms"] / on["p99_ms"], "target": None})
    for row in rows:
        row["pass"] = None if row["target"] is None else row["ratio"] >= row["target"]
    return rows


def fmt(value: float, unit: str) -> str:
    return f"{value:,.0f} req/s" if unit == "req/s" else f"{value:,.2f} ms"


def print_table(header: tuple[str, ...], lines: list[tuple[str, ...]]) -> None:
    widths = [max(len(str(x[i])) for x in [header, *lines]) for i in range(len(header))]
    for line in [header, *lines]:
        print("  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                        for i, (c, w) in enumerate(zip(line, widths, strict=True))))


def prediction_log_count(project: Path) -> dict[str, int]:
    """Rows in the prediction log of each environment, read after the gateways stopped."""
    proc = subprocess.run([str(BIN / "dsops"), "predictions", "query", "--json",
                           "SELECT env, count(*) AS n FROM predictions GROUP BY env"],
                          cwd=project, env=server_env(), capture_output=True, text=True)
    if proc.returncode != 0:
        return {}
    return {row["env"]: int(row["n"]) for row in json.loads(proc.stdout)}


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("mlflow", "fastapi", "starlette", "uvicorn", "scikit-learn", "pandas", "numpy",
                 "h11", "httptools", "uvloop"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


# --- main ---------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured per case")
    parser.add_argument("--warmup", type=float, default=3.0, help="untimed seconds before each case")
    parser.add_argument("--reps", type=int, default=3, help="rounds over every case")
    parser.add_argument("--client", choices=("auto", "wrk", "asyncio"), default="auto",
                        help="load generator (auto: wrk, installed if missing, else asyncio)")
    parser.add_argument("--json", type=Path, default=RESULTS, help="where to write results")
    parser.add_argument("--keep", action="store_true", help="keep bench/.work/serve")
    parser.add_argument("--load-client", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load_client:  # the asyncio client's own process
        spec = json.loads(args.load_client)
        body = Path(spec["body"]).read_bytes()
        print(json.dumps(asyncio.run(_load(spec["port"], body, spec["connections"], spec["seconds"]))))
        return

    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    os.environ["DSOPS_USER"] = "bench@example.com"
    for name in ("DSOPS_STORE_URL", "DSOPS_OBJECTS_URL", "DSOPS_URL", "DSOPS_RUN_ID"):
        os.environ.pop(name, None)
    if WORK.exists():
        shutil.rmtree(WORK)
    WORK.mkdir(parents=True)
    data_add.ENV.update(data_add.tool_env())
    started = time.perf_counter()
    info = data_add.machine()
    for key in ("dvc", "blake3"):
        info.pop(key, None)
    info["packages"] = versions()

    wrk = ensure_wrk() if args.client in ("auto", "wrk") else None
    if args.client == "wrk" and wrk is None:
        sys.exit("bench: wrk not found and could not be installed (apt-get install wrk)")
    x, model = train()
    row = x.iloc[[0]]
    body = payload(row)
    body_file = WORK / "payload.json"
    body_file.write_bytes(body)
    script = WORK / "post.lua"
    script.write_text(WRK_SCRIPT.replace("{body}", body.decode()))
    load = Load("wrk" if wrk else "asyncio", wrk, script, body_file)
    info["client"] = load.version()
    print(f"machine: {info['cpus']} CPUs, {info['mem_gib']} GiB, Python {info['python']}, "
          f"dsops {info['dsops']} (src {info['src_digest']}), MLflow {info['packages']['mlflow']}, "
          f"FastAPI {info['packages']['fastapi']}, uvicorn {info['packages']['uvicorn']}, "
          f"scikit-learn {info['packages']['scikit-learn']}; load: {info['client']}; "
          f"{info['contention_at_start']}", flush=True)

    all_servers: dict[str, Server] = {}
    try:
        print("[1/3] model, projects and servers", flush=True)
        all_servers = servers(x, model)
        for server in all_servers.values():
            server.start()
        answers = {}
        for server in all_servers.values():
            server.wait_ready()
            answers[server.name] = check_answers(server, x, model, [0, 1, 2, 3, 4])
            print(f"      {server.name:<13} ready in {server.ready_s:4.1f} s on {server.url}; first answer "
                  f"{answers[server.name][0]} = the model's prediction", flush=True)
        print(f"[2/3] {args.reps} rounds × {sum(len(c) for c in CASES.values())} cases: "
              f"{args.warmup:g} s warm-up + {args.duration:g} s each ({load.client})", flush=True)
        runs = measure(all_servers, load, args.reps, args.warmup, args.duration)
        for server in all_servers.values():  # still right after the load?
            check_answers(server, x, model, [5])
    finally:
        print("[3/3] stopping the servers (SIGTERM)", flush=True)
        for server in all_servers.values():
            server.stop()
    logged = prediction_log_count(WORK / "dsops")
    ended = contention()
    if not args.keep:
        shutil.rmtree(WORK, ignore_errors=True)

    summary = summarise(runs)
    rows = comparisons(summary)
    print()
    print_table(("case", "dsops", "other", "ratio", "target", "result"),
                [(r["case"], fmt(r["dsops"], r["unit"]), fmt(r["other"], r["unit"]), f"{r['ratio']:,.2f}×",
                  f"≥ {r['target']:g}×" if r["target"] else "—",
                  ("PASS" if r["pass"] else "FAIL") if r["target"] else "—") for r in rows])
    print("(other: MLflow, the FastAPI app, or dsops with max_batch=1; ratio: req/s dsops ÷ other, "
          "latency other ÷ dsops)")
    print()
    print_table(("server", "conns", "req/s (median)", "min–max", "p50 ms", "p99 ms", "errors"),
                [(s["server"], str(s["connections"]), f"{s['rps']:,.0f}",
                  f"{s['rps_min']:,.0f}–{s['rps_max']:,.0f}", f"{s['p50_ms']:.2f}", f"{s['p99_ms']:.2f}",
                  str(s["errors"])) for s in summary.values()])
    served = {env: sum(s["requests"] for key, s in summary.items() if s["server"] == name)
              for env, name in (("prod", "dsops"), ("nobatch", "dsops-nobatch"))}
    print(f"prediction log rows after SIGTERM: {logged} (requests counted by the client in the "
          f"measured runs: {served}; warm-ups and checks add to the log)")
    print("server exit codes after SIGTERM: "
          + ", ".join(f"{s.name} {s.exit_code}" for s in all_servers.values()))
    print(f"contention: start {info['contention_at_start']}, end {ended}")

    save_results(
        args.json, "bench/serve.py", info=info,
        params={k: v for k, v in vars(args).items() if k != "load_client"} | {"json": str(args.json)},
        started=started, ended=ended,
        model={"kind": "LogisticRegression", "features": FEATURES, "training_rows": ROWS,
                  "request": "1-row dataframe_split to /invocations", "payload_bytes": len(body)},
        cases=CASES,
        rows=rows,
        summary=summary,
        runs=runs,
        servers={s.name: {"cmd": s.cmd, "ready_s": s.ready_s, "exit_code": s.exit_code}
                    for s in all_servers.values()},
        prediction_log_rows=logged,
    )


if __name__ == "__main__":
    main()
