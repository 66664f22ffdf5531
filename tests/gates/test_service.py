"""Gates on real models and datasets: verdicts, fairness equal to Fairlearn's, champion
comparison, stored results, and the usage errors that must not count as a failed gate."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
)
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

import dsops.sdk as sdk
from dsops.config import load_config
from dsops.core.errors import NotFound, PermissionDenied, UsageError
from dsops.data.service import DatasetService
from dsops.gates.service import GateService
from dsops.registry.service import RegistryService
from dsops.workspace import Workspace

FEATURES = ["income", "age", "group"]


def _data(seed: int, n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sex = rng.choice(["F", "M"], n)
    income = rng.normal(50, 10, n)
    age = rng.integers(18, 80, n)
    group = (sex == "M").astype(int)  # a proxy of sex the biased model may use
    label = np.where(income + 6 * group + rng.normal(0, 4, n) > 53, "yes", "no")
    return pd.DataFrame({"income": income, "age": age, "group": group, "sex": sex,
                         "approved": label})


def _configure(ws: Workspace, gate: str) -> None:
    path = ws.root / "dsops.yaml"
    path.write_text("project: demo\n" + textwrap.dedent(gate))
    ws.config = load_config(path)


@pytest.fixture
def gated(workspace: Workspace, tmp_path: Path) -> Workspace:
    """Evaluation data ``eval@1``; ``m@1`` fair (no proxy), ``m@2`` biased (uses ``group``)."""
    _data(2).to_csv(tmp_path / "eval.csv", index=False)
    DatasetService(workspace).add(tmp_path / "eval.csv", name="eval")
    train = _data(1)
    fair = LogisticRegression().fit(train[["income", "age"]], train["approved"])
    biased = LogisticRegression().fit(train[FEATURES], train["approved"])
    sdk.log_model(fair, "m", input_example=train[["income", "age"]].head(), metrics={"loss": 0.3},
                  workspace=workspace)
    sdk.log_model(biased, "m", input_example=train[FEATURES].head(), metrics={"loss": 0.2},
                  workspace=workspace)
    _configure(workspace, """
        gates:
          m:
            eval_data: data:eval
            label: approved
            positive_label: "yes"
            sensitive: [sex]
            checks:
              - auc >= 0.8
              - demographic_parity_difference(by=sex) <= 0.1
    """)
    return workspace


def test_fairness_values_equal_fairlearns_own(gated: Workspace) -> None:
    report = GateService(gated).evaluate("m@2", checks=[
        "demographic_parity_difference(by=sex) <= 1", "equalized_odds_difference(by=sex) <= 1",
        "disparate_impact_ratio(by=sex) >= 0", "auc >= 0"])
    frame = _data(2)
    model = sdk.load_model("m@2", workspace=gated)
    truth, pred = frame["approved"] == "yes", model.predict(frame) == "yes"
    expected = [demographic_parity_difference(truth, pred, sensitive_features=frame["sex"]),
                equalized_odds_difference(truth, pred, sensitive_features=frame["sex"]),
                demographic_parity_ratio(truth, pred, sensitive_features=frame["sex"]),
                roc_auc_score(truth, model.predict_proba(frame)[:, 1])]
    assert [c.value for c in report.checks] == pytest.approx(expected)
    assert report.passed and report.inputs["eval_data"] == "data:eval@1"
    groups = report.inputs["fairness"]["sex"]
    assert set(groups) == {"F", "M"} and sum(g["rows"] for g in groups.values()) == 400


def test_a_biased_model_fails_its_fairness_check_and_cannot_become_champion(gated: Workspace) -> None:
    fair = GateService(gated).evaluate("m@1")
    biased = GateService(gated).evaluate("m@2")
    assert fair.passed, fair.checks
    assert not biased.passed
    assert [c.check for c in biased.failed] == ["demographic_parity_difference(by=sex) <= 0.1"]
    registry = RegistryService(gated)
    registry.set_alias("m@1", "champion")
    with pytest.raises(PermissionDenied, match="failed its latest gate"):
        registry.set_alias("m@2", "champion")
    assert registry.show("m@1").gate.passed and registry.show("m@2").gate.failed == [
        "demographic_parity_difference(by=sex) <= 0.1"]
    assert [r.passed for r in GateService(gated).results("m@2")] == [False]


@pytest.mark.parametrize(("threshold", "passed"), [(0.3, True), (0.2999, False), (0.3001, True)])
def test_boundary_values(gated: Workspace, threshold: float, passed: bool) -> None:
    # loss is logged as exactly 0.3 for m@1: `loss <= 0.3` passes, `loss <= 0.2999` fails.
    report = GateService(gated).evaluate("m@1", checks=[f"loss <= {threshold}"])
    assert report.passed is passed
    assert report.checks[0].value == 0.3 and report.checks[0].threshold == threshold


def test_champion_comparison_uses_the_same_evaluation_data(gated: Workspace) -> None:
    registry = RegistryService(gated)
    GateService(gated).evaluate("m@1")
    registry.set_alias("m@1", "champion")
    report = GateService(gated).evaluate("m@2", checks=["auc >= champion.auc - 0.5",
                                                        "loss <= champion.loss"])
    assert report.passed, report.checks
    assert report.inputs["against"] == "m@1"
    champion_auc = report.inputs["champion_metrics"]["auc"]
    assert report.checks[0].threshold == pytest.approx(champion_auc - 0.5)
    assert report.checks[1].threshold == 0.3  # the champion's logged loss


def test_without_a_champion_champion_checks_are_skipped(gated: Workspace) -> None:
    report = GateService(gated).evaluate("m@1", checks=["auc >= champion.auc - 0.01"])
    assert report.passed and report.checks[0].detail == "skipped: no champion yet"


def test_latency_row_count_and_expectations(gated: Workspace) -> None:
    _configure(gated, """
        datasets:
          eval:
            expectations:
              - row_count: {min: 500}
        gates:
          m: {eval_data: data:eval, label: approved, latency_rows: 20}
    """)
    report = GateService(gated).evaluate("m@1", checks=[
        "p99_latency_ms <= 1000", "p50_latency_ms <= p99_latency_ms", "row_count == 400",
        "expectations(data:eval)"])
    assert [c.passed for c in report.checks] == [True, True, True, False]
    assert 0 < report.checks[0].value < 1000


def test_syntax_error_shows_the_position(gated: Workspace) -> None:
    with pytest.raises(UsageError, match=r"column 8"):
        GateService(gated).evaluate("m@1", checks=["auc >= >0.8"])


def test_unknown_metric_and_function_are_usage_errors(gated: Workspace) -> None:
    with pytest.raises(UsageError, match=r"unknown metric 'acu'.*did you mean 'auc'"):
        GateService(gated).evaluate("m@1", checks=["acu >= 0.8"])
    with pytest.raises(UsageError, match="unknown function 'demographic_parity'"):
        GateService(gated).evaluate("m@1", checks=["demographic_parity(by=sex) <= 0.1"])
    assert GateService(gated).results("m@1") == []  # nothing recorded for a usage error


def test_missing_evaluation_data_is_a_usage_error(gated: Workspace) -> None:
    _configure(gated, "gates:\n  m: {label: approved}\n")
    with pytest.raises(UsageError, match="missing evaluation data"):
        GateService(gated).evaluate("m@1", checks=["demographic_parity_difference(by=sex) <= 0.1"])
    with pytest.raises(NotFound):
        GateService(gated).evaluate("m@1", checks=["auc >= 0.5"], eval_data="data:nope")


def test_absent_sensitive_column_is_named(gated: Workspace) -> None:
    with pytest.raises(UsageError, match="column 'gender' is not in the evaluation data"):
        GateService(gated).evaluate("m@1", checks=["demographic_parity_difference(by=gender) < 1"])


def test_no_checks_configured(gated: Workspace) -> None:
    _configure(gated, "")
    with pytest.raises(UsageError, match="no gate checks for m"):
        GateService(gated).evaluate("m@1")


def test_gate_checks_in_dsops_yaml_are_parsed_with_their_line(tmp_path: Path) -> None:
    from dsops.core.errors import ConfigError

    path = tmp_path / "dsops.yaml"
    path.write_text("project: p\ngates:\n  m:\n    - auc >= 0.8\n    - auc >=\n")
    with pytest.raises(ConfigError, match=r"dsops.yaml:5: gates.m.checks\[1\]"):
        load_config(path)
