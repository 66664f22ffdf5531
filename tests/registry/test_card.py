"""Model cards generated from the store (Markdown and HTML), on both store backends."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import dsops
from dsops.config import load_config
from dsops.core.errors import NotFound, UsageError
from dsops.data.service import DatasetService
from dsops.gates.service import GateReport, GateService
from dsops.registry.card import build_card, render_card
from dsops.registry.service import RegistryService
from dsops.tracking.service import TrackingService
from dsops.workspace import Workspace

MODEL = "credit-risk"
GATES_YAML = f"""
models:
  {MODEL}:
    owner: risk-team@example.com
    intended_use: Pre-screening of consumer credit applications; a human decides.
    limitations: Trained on applicants aged 18-70 only.
gates:
  {MODEL}:
    checks:
      - auc >= 0.7
      - auc >= champion.auc - 0.05
      - demographic_parity_difference(by=sex) <= 0.15
    eval_data: data:credit-eval
    label: y
    sensitive: [sex]
"""


def people(n: int, seed: int) -> pd.DataFrame:
    """Applicants whose label depends on two features and, strongly, on ``sex_code``."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(["F", "M"], size=n)
    frame = pd.DataFrame({"x1": rng.normal(size=n).round(4), "x2": rng.normal(size=n).round(4),
                          "sex": sex, "sex_code": (sex == "M").astype(int)})
    score = frame.x1 + frame.x2 + 2.5 * frame.sex_code - 1.2 + rng.normal(scale=0.3, size=n)
    frame["y"] = (score > 0).astype(int)
    return frame


@dataclass
class Scenario:
    """Two versions of credit-risk: a fair champion (v1) and a more accurate, unfair v2."""

    ws: Workspace
    champion_gate: GateReport
    candidate_gate: GateReport


def train_and_register(ws: Workspace, data_ref: str, features: list[str], *,
                       description: str | None = None) -> str:
    """Fit a LogisticRegression on ``data_ref`` in a run (with lineage), register it."""
    from sklearn.linear_model import LogisticRegression

    frame = dsops.Dataset(data_ref, workspace=ws).to_pandas()
    model = LogisticRegression().fit(frame[features], frame["y"])
    with dsops.start_run("train", params={"features": ",".join(features), "C": 1.0},
                         workspace=ws) as run:
        TrackingService(ws).add_lineage([f"data:{data_ref}"], [f"run:{run.id}"])
        run.log_metric("train_rows", len(frame))
        info = dsops.log_model(model, name=MODEL, input_example=frame[features].head(),
                               description=description, workspace=ws)
    return info.ref


def build_scenario(ws: Workspace, tmp_path: Path) -> Scenario:
    """credit@1 → v1 (x1, x2), gated and made champion; credit@2 (+rows, +sex_code) → v2,
    gated against it on data:credit-eval@1 and failing its fairness check."""
    with (ws.root / "dsops.yaml").open("a") as f:
        f.write(GATES_YAML)
    ws.config = load_config(ws.root / "dsops.yaml")
    data = DatasetService(ws)
    full = people(400, seed=1)
    (tmp_path / "v1").mkdir()
    full.drop(columns=["sex_code"]).iloc[:300].to_csv(tmp_path / "v1" / "credit.csv", index=False)
    full.to_csv(tmp_path / "credit.csv", index=False)
    people(300, seed=2).to_csv(tmp_path / "eval.csv", index=False)
    data.add(tmp_path / "v1" / "credit.csv", "credit", owner="data-team@example.com",
             license="CC-BY-4.0", consent="contract")
    data.add(tmp_path / "credit.csv", "credit", owner="data-team@example.com",
             license="CC-BY-4.0", consent="legitimate interest")
    data.add(tmp_path / "eval.csv", "credit-eval")
    train_and_register(ws, "credit@1", ["x1", "x2"],
                       description="Scores applicants | <script>alert('x')</script> & more")
    gates = GateService(ws)
    champion_gate = gates.evaluate(f"{MODEL}@1")
    RegistryService(ws).set_alias(f"{MODEL}@1", "champion", reason="first model")
    train_and_register(ws, "credit@2", ["x1", "x2", "sex_code"])
    candidate_gate = gates.evaluate(f"{MODEL}@2")
    return Scenario(ws, champion_gate, candidate_gate)


@pytest.fixture
def scenario(make_workspace, store_url: str, manual_clock, tmp_path: Path) -> Scenario:
    return build_scenario(make_workspace(store_url=store_url, clock=manual_clock), tmp_path)


def test_scenario_gates(scenario: Scenario) -> None:
    """The premise of the card and report tests: v1 passes, v2 fails fairness only."""
    assert scenario.champion_gate.passed
    verdicts = {c.check: c.passed for c in scenario.candidate_gate.checks}
    assert verdicts == {"auc >= 0.7": True, "auc >= champion.auc - 0.05": True,
                        "demographic_parity_difference(by=sex) <= 0.15": False}


def test_markdown_card(scenario: Scenario) -> None:
    ws = scenario.ws
    card = render_card(ws, f"{MODEL}@champion")
    assert card.startswith(f"# Model card: {MODEL}@1\n")
    assert "`champion`" in card.splitlines()[2]
    # description from log_model, the rest from dsops.yaml models:, user HTML shown as text
    assert "| Owner | risk-team@example.com |" in card
    assert "| Intended use | Pre-screening of consumer credit applications; a human decides. |" in card
    # (a table cell: the bar is escaped so it does not split the row)
    assert "| Description | Scores applicants \\| &lt;script>alert('x')&lt;/script> & more |" in card
    assert "<script>" not in card
    # training data lineage with governance fields
    assert re.search(r"\| `data:credit@1` \| 300 \| data-team@example.com \| not sensitive \| "
                     r"contract \| CC-BY-4.0 \| active \|", card)
    # training run, params, metrics
    run_id = RegistryService(ws).show(f"{MODEL}@1").run_id
    assert f"Run: `{run_id}` (train), finished" in card
    assert "| features | x1,x2 |" in card and "| train_rows | 300 |" in card
    # signature
    assert "| x1 | float | no |" in card and "| x2 | float | no |" in card
    # evaluation and fairness from the gate result
    assert "on `data:credit-eval@1` (300 rows, label `y`)" in card
    assert "### Fairness by `sex`" in card
    assert re.search(r"\| F \| \d+ \| 0\.\d+ \|", card) and re.search(r"\| M \| \d+ \| 0\.\d+ \|", card)
    # every gate result with its checks; alias history; sections later issues fill
    assert "### ✅ passed" in card
    assert "| `auc >= champion.auc - 0.05` | — | — | skipped |" in card
    assert re.search(r"\| `auc >= 0.7` \| 0\.\d+ \| 0\.7 \| ✅ pass \|", card)
    assert re.search(r"\| `champion` \| — \| 1 \| alice@example.com \| first model \|", card)
    assert card.count("None recorded.") == 2
    assert "## Approvals" in card and "## Deployments" in card


def test_card_of_failing_version_and_flags(scenario: Scenario) -> None:
    ws = scenario.ws
    card = render_card(ws, f"{MODEL}@2")
    assert "### ❌ failed" in card and "against `credit-risk@1`" in card
    assert "| `demographic_parity_difference(by=sex) <= 0.15` |" in card and "❌ fail" in card
    assert "| sex_code | int | no |" in card
    assert "No alias has pointed at this version." in card
    assert "not recorded (set `models.credit-risk.description` in dsops.yaml)" in card
    assert "Flagged" not in card
    DatasetService(ws).revoke("credit@1", reason="consent withdrawn")
    card = render_card(ws, f"{MODEL}@1")
    assert "> ⚠️ **Flagged: trained on revoked credit@1**" in card
    assert re.search(r"\| \*\*revoked\*\* [-0-9: ]+UTC: consent withdrawn \|", card)


def test_html_card_is_escaped_and_charts_fairness(scenario: Scenario) -> None:
    html = render_card(scenario.ws, f"{MODEL}@1", format="html")
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert "<script>alert" not in html
    assert "Scores applicants | &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; more" in html
    assert "<title>Model card: credit-risk@1</title>" in html
    assert '<span class="alias">champion</span>' in html
    assert "plotly" in html and "Selection rate by sex" in html  # the fairness chart
    assert html.count("cdn.plot.ly") == 1
    assert "<td><code>data:credit@1</code></td>" in html


def test_card_without_run_or_gate(make_workspace, tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    ws = make_workspace()
    X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0]})
    dsops.log_model(LogisticRegression().fit(X, [0, 0, 1, 1]), name="bare", workspace=ws)
    card = render_card(ws, "bare")
    assert "Registered outside a run" in card and "No gate results recorded." in card
    assert "Not evaluated yet: run `dsops gate bare@1 --eval-data data:NAME`." in card
    assert "Not recorded (pass `input_example=`" in card
    assert build_card(ws, "bare@1").evaluation is None
    html = render_card(ws, "bare", format="html")
    assert "plotly" not in html


def test_bad_input(make_workspace) -> None:
    ws = make_workspace()
    with pytest.raises(UsageError, match="unknown model card format 'pdf': use md or html"):
        render_card(ws, "anything", format="pdf")
    with pytest.raises(NotFound):
        render_card(ws, "nope@1")


def test_cli_card(scenario: Scenario, run_cli, tmp_path: Path) -> None:
    out = tmp_path / "card.html"
    result = run_cli("models", "card", f"{MODEL}@2", "--format", "html", "-o", str(out),
                     cwd=scenario.ws.root, env={"DSOPS_STORE_URL": scenario.ws.store_url})
    assert result.returncode == 0, result.stderr
    assert "<h1>Model card: credit-risk@2</h1>" in out.read_text()
