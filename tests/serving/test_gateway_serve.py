"""``dsops serve`` as users run it: a subprocess with two workers serving a real deployment (on SQLite
and on PostgreSQL); SIGTERM loses no logged prediction; ``dsops feedback FILE`` and
``dsops predictions query`` over the result."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import dsops.sdk as sdk
from dsops.config import load_config
from dsops.rollout.service import RolloutService
from tests.conftest import MakeWorkspace, RunCli

DSOPS = Path(sys.executable).parent / "dsops"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(url: str, process: subprocess.Popen[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"dsops serve exited with {process.returncode}:\n{process.communicate()[0]}")
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    pytest.fail(f"dsops serve did not become ready:\n{process.communicate()[0]}")


def test_prediction_logs_survive_sigterm_and_feed_the_cli(store_url: str, make_workspace: MakeWorkspace,
                                                          run_cli: RunCli, tmp_path: Path) -> None:
    ws = make_workspace(store_url=store_url)
    store = {"DSOPS_STORE_URL": ws.store_url}  # the processes below share the test's store
    (ws.root / "dsops.yaml").write_text("project: demo\n" + textwrap.dedent("""
        environments:
          prod: {}
    """))
    ws.config = load_config(ws.root / "dsops.yaml")
    rng = np.random.default_rng(1)
    x = pd.DataFrame(rng.normal(size=(100, 3)), columns=["a", "b", "c"])
    model = LogisticRegression().fit(x, (x["a"] > 0).astype(int))
    sdk.log_model(model, "credit", input_example=x.head(), workspace=ws)
    RolloutService(ws).deploy("credit@1", "prod")

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "DSOPS_USER": "alice@example.com", **store}
    process = subprocess.Popen([str(DSOPS), "serve", "--env", "prod", "--port", str(port), "--workers", "2"],
                               cwd=ws.root, env=env, text=True, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
    try:
        _wait_ready(url, process)
        rows = x.iloc[:5]
        payload = {"dataframe_split": {"columns": list(rows.columns), "data": rows.to_numpy().tolist()}}

        async def send(n: int) -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                return list(await asyncio.gather(*(client.post("/invocations", json=payload)
                                                   for _ in range(n))))

        responses = asyncio.run(send(30))
        assert all(r.status_code == 200 for r in responses)
        assert responses[0].json() == {"predictions": model.predict(rows).tolist()}
        ids = [r.headers["x-request-id"] for r in responses]
        metrics = httpx.get(f"{url}/metrics").text  # summed over both workers
        served = sum(float(line.split()[-1]) for line in metrics.splitlines()
                     if line.startswith('dsops_requests_total{model="credit",status="200",version="1"}'))
        assert served == 30
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, output
    assert f"serving prod on {url} (2 workers)" in output and "credit@1 (stable)" in output

    listed = ", ".join(f"'{i}'" for i in ids)
    query = run_cli("predictions", "query", "--json",
                    f"SELECT count(*) AS n, count(DISTINCT request_id) AS ids FROM predictions "
                    f"WHERE request_id IN ({listed})", cwd=ws.root, env=store)
    assert query.returncode == 0, query.stderr
    assert json.loads(query.stdout) == [{"n": 30 * 5, "ids": 30}]

    labels = tmp_path / "labels.csv"
    pd.DataFrame({"request_id": ids[:10], "label": [1] * 10}).to_csv(labels, index=False)
    attached = run_cli("feedback", str(labels), cwd=ws.root, env=store)
    assert attached.returncode == 0 and "attached 10 labels" in attached.stdout, attached.stderr
    table = run_cli("predictions", "query", "SELECT count(*) AS labels FROM feedback", cwd=ws.root, env=store)
    assert "10" in table.stdout, table.stderr
    (tmp_path / "bad.csv").write_text("id,label\nx,1\n")
    bad = run_cli("feedback", str(tmp_path / "bad.csv"), cwd=ws.root, env=store)
    assert bad.returncode == 2 and "missing column request_id" in bad.stderr
