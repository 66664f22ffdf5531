"""``dsops runs ls`` as a subprocess: the listing's JSON (summaries) and a bad filter."""

from __future__ import annotations

import json

from dsops.tracking.service import TrackingService
from dsops.workspace import Workspace

from ..conftest import RunCli


def test_runs_ls_json_lists_summaries(run_cli: RunCli, make_workspace) -> None:
    ws: Workspace = make_workspace()
    svc = TrackingService(ws)
    run = svc.start_run("train", params={"model": "lgbm"})
    svc.end_run(run.id, metrics=[("auc", 0.91, 0, ws.now())])
    result = run_cli("runs", "ls", "--filter", "metrics.auc > 0.9", "--json", cwd=ws.root)
    assert result.returncode == 0, result.stderr
    (listed,) = json.loads(result.stdout)
    assert listed["id"] == run.id and listed["status"] == "finished"
    assert listed["params"] == {"model": "lgbm"} and listed["metrics"] == {"auc": 0.91}
    assert listed["started_at"].startswith(run.started_at.isoformat()[:19])
    # `runs show` has the rest: environment, artifacts, lineage
    assert "environment" not in listed and "artifacts" not in listed


def test_runs_ls_malformed_filter_is_a_usage_error(run_cli: RunCli, make_workspace) -> None:
    ws: Workspace = make_workspace()
    result = run_cli("runs", "ls", "--filter", "metrics.auc >", cwd=ws.root)
    assert result.returncode == 2
    assert "invalid filter at column" in result.stderr and "Traceback" not in result.stderr
