"""The registry, gate and delivery commands as a user runs them: exit codes 0/1/2, --json,
clear errors without tracebacks."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

import dsops.sdk as sdk

CONFIG = """
project: demo
gates:
  m:
    - loss <= 0.5
environments:
  prod: {approvals: 1}
  staging: {}
"""


def _project(make_workspace) -> Path:  # type: ignore[no-untyped-def]
    ws = make_workspace()
    (ws.root / "dsops.yaml").write_text(textwrap.dedent(CONFIG))
    x = pd.DataFrame({"a": np.arange(20.0), "b": np.arange(20.0) % 3})
    y = (x["a"] > 9).astype(int)
    for c, loss in ((1.0, 0.3), (0.1, 0.9)):
        sdk.log_model(LogisticRegression(C=c).fit(x, y), "m", input_example=x.head(),
                      metrics={"loss": loss}, workspace=ws)
    return ws.root


def test_models_gate_alias_deploy(make_workspace, run_cli) -> None:  # type: ignore[no-untyped-def]
    root = _project(make_workspace)
    listing = run_cli("models", "ls", "--json", cwd=root)
    assert listing.returncode == 0, listing.stderr
    assert [(m["name"], m["latest"]) for m in json.loads(listing.stdout)] == [("m", 2)]

    passed = run_cli("gate", "m@1", cwd=root)
    assert passed.returncode == 0 and "gate passed" in passed.stdout, passed.stdout + passed.stderr
    failed = run_cli("gate", "m@2", cwd=root)
    assert failed.returncode == 1 and "FAIL" in failed.stdout
    usage = run_cli("gate", "m@1", "--check", "los <= 1", cwd=root)
    assert usage.returncode == 2 and "unknown metric 'los'" in usage.stderr
    assert "Traceback" not in usage.stderr
    syntax = run_cli("gate", "m@1", "--check", "loss <= <1", cwd=root)
    assert syntax.returncode == 2 and "column 9" in syntax.stderr

    refused = run_cli("models", "alias", "m@2", "champion", cwd=root)
    assert refused.returncode == 2 and "failed its latest gate" in refused.stderr
    moved = run_cli("models", "alias", "m@1", "champion", "--reason", "passed", cwd=root)
    assert moved.returncode == 0 and "moved to version 1" in moved.stdout
    unknown = run_cli("models", "show", "m@champoin", cwd=root)
    assert unknown.returncode == 2 and "did you mean 'champion'" in unknown.stderr

    deployed = run_cli("deploy", "m@champion", "--env", "prod", "--json", cwd=root)
    assert deployed.returncode == 0, deployed.stderr
    deployment = json.loads(deployed.stdout)
    assert deployment["status"] == "pending_approval"
    own = run_cli("approve", deployment["id"], cwd=root)
    assert own.returncode == 2 and "cannot approve it" in own.stderr
    other = run_cli("approve", deployment["id"], cwd=root, env={"DSOPS_USER": "bob@example.com"})
    assert other.returncode == 0 and "promoted" in other.stdout, other.stderr
    card = run_cli("models", "card", "m@1", cwd=root)
    assert "prod: direct, promoted — deployed" in card.stdout, card.stdout
    assert f"prod deployment {deployment['id']} approved by bob@example.com" in card.stdout
    status = run_cli("rollout", "status", "--json", cwd=root)
    assert [(d["ref"], d["status"]) for d in json.loads(status.stdout)] == [("m@1", "promoted")]
    bad_steps = run_cli("deploy", "m@2", "--env", "staging", "--strategy", "canary",
                        "--steps", "10,x", cwd=root)
    assert bad_steps.returncode == 2 and "invalid --steps" in bad_steps.stderr
    bad_interval = run_cli("deploy", "m@2", "--env", "staging", "--strategy", "canary",
                           "--interval", "5x", cwd=root)
    assert bad_interval.returncode == 2 and "invalid duration '5x'" in bad_interval.stderr
    unwritable = run_cli("models", "card", "m@1", "-o", str(root / "dsops.yaml" / "card.md"), cwd=root)
    assert unwritable.returncode == 2 and "cannot write" in unwritable.stderr
    assert "Traceback" not in bad_interval.stderr + unwritable.stderr
    assert run_cli("rollout", "status", "--json", "--all", cwd=root).stdout.count('"id"') == 1
