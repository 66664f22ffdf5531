"""Monitors over a real prediction log with the injected clock: drift against the training
data, delayed-label accuracy, alert rules, incidents (no duplicates, auto-resolve) and
actions (rollback, webhook with timeout)."""

from __future__ import annotations

import json
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import dsops.sdk as sdk
from dsops.config import load_config
from dsops.core.clock import ManualClock
from dsops.core.errors import ConfigError, NotFound, UsageError
from dsops.data.service import DatasetService
from dsops.monitoring.incidents import IncidentService
from dsops.monitoring.service import MonitorService
from dsops.rollout.service import RolloutService
from dsops.serving.predlog import FeedbackWriter, PredictionLogWriter
from dsops.tracking.service import TrackingService
from dsops.workspace import Workspace

FEATURES = ["income", "age", "region"]
MONITOR = """
project: demo
environments:
  prod: {{}}
webhooks:
  oncall: {{url_env: ONCALL_URL, timeout: 0.5s, retries: 1}}
  jira: {{url_env: JIRA_URL, format: jira, jira_project: RISK}}
monitors:
  watch:
    deployment: prod/m
    every: 1h
    positive_label: "yes"
    resolve_after: 30m
    alerts:
{alerts}
"""


def _applications(n: int, seed: int, *, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    income = rng.normal(50 + shift, 10, n)
    age = rng.integers(20, 70, n)
    region = rng.choice(["north", "south"], n)
    approved = np.where(income + rng.normal(0, 3, n) > 50 + shift, "yes", "no")
    return pd.DataFrame({"income": income, "age": age, "region": region, "approved": approved})


def _configure(ws: Workspace, alerts: str) -> None:
    path = ws.root / "dsops.yaml"
    rules = textwrap.indent(textwrap.dedent(alerts), "      ")
    path.write_text(textwrap.dedent(MONITOR).format(alerts=rules))
    ws.config = load_config(path)


@pytest.fixture
def ws(store_url: str, make_workspace, manual_clock: ManualClock, tmp_path: Path) -> Workspace:  # type: ignore[no-untyped-def]
    """m@1 and m@2 trained on ``train@1`` (lineage), m@1 then m@2 deployed to prod."""
    ws = make_workspace(store_url=store_url, clock=manual_clock)
    _configure(ws, "- when: drifted_share > 0.3\n  do: [incident, rollback]\n")
    train = _applications(2000, 1)
    train.to_csv(tmp_path / "train.csv", index=False)
    DatasetService(ws).add(tmp_path / "train.csv", name="train")
    numeric = train[["income", "age"]]
    tracking = TrackingService(ws)
    for c in (1.0, 0.1):
        run = tracking.start_run("train")
        tracking.add_lineage(["data:train@1"], [f"run:{run.id}"])
        model = LogisticRegression(C=c).fit(numeric, train["approved"])
        path = sdk.save_model(model, tmp_path / f"model-{c}", input_example=numeric.head())
        from dsops.registry.service import RegistryService

        RegistryService(ws).register("m", path, run_id=run.id)
    RolloutService(ws).deploy("m@1", "prod")
    RolloutService(ws).deploy("m@2", "prod")
    return ws


def _serve(ws: Workspace, clock: ManualClock, frame: pd.DataFrame, *, version: int = 2,
           labels: float = 0.0, unknown_labels: int = 0) -> None:
    """Log predictions of ``m@version`` for ``frame`` over the last 10 minutes, and the true
    labels of the first ``labels`` share of them."""
    model = sdk.load_model(f"m@{version}", workspace=ws)
    predictions = model.predict(frame[["income", "age"]])
    scores = model.predict_proba(frame[["income", "age"]])[:, 1]
    writer = PredictionLogWriter(ws.objects, env="prod", clock=clock)
    feedback = FeedbackWriter(ws.objects, clock=clock)
    n = len(frame)
    try:
        for i, row in enumerate(frame.itertuples(index=False)):
            writer.append(f"r{version}-{i}", "m", version, str(predictions[i]), score=float(scores[i]),
                          inputs={"income": row.income, "age": int(row.age), "region": row.region},
                          latency_ms=4.0, time=clock.now() - timedelta(seconds=600 * (n - i) / n))
        labelled = int(n * labels)
        feedback.append_many([f"r{version}-{i}" for i in range(labelled)],
                             list(frame["approved"][:labelled]))
        if unknown_labels:
            feedback.append_many([f"nobody-{i}" for i in range(unknown_labels)],
                                 ["yes"] * unknown_labels)
    finally:
        writer.close()
        feedback.close()


def test_an_empty_window_reports_no_data(ws: Workspace) -> None:
    [result] = MonitorService(ws).run("watch")
    assert result.status == "no_data" and result.detail == "no predictions in the window"
    assert IncidentService(ws).list() == []


def test_no_drift_no_incident_and_accuracy_over_labelled_requests(
        ws: Workspace, manual_clock: ManualClock) -> None:
    frame = _applications(1500, 2)
    _serve(ws, manual_clock, frame, labels=0.5, unknown_labels=7)
    [result] = MonitorService(ws).run("watch")
    assert result.status == "ok", result.rules
    assert result.values["drifted_share"] == 0.0
    assert result.values["label_coverage"] == pytest.approx(0.5, abs=0.001)
    assert result.values["labelled_count"] == 750
    assert result.values["unknown_labels"] == 7
    model = sdk.load_model("m@2", workspace=ws)
    expected = float(np.mean(model.predict(frame[["income", "age"]][:750]) == frame["approved"][:750]))
    assert result.values["accuracy"] == pytest.approx(expected)
    assert result.values["request_count"] == 1500 and result.values["error_rate"] == 0.0
    assert IncidentService(ws).list() == []


def test_drift_opens_one_incident_rolls_back_and_resolves_when_healthy(
        ws: Workspace, manual_clock: ManualClock, monkeypatch: pytest.MonkeyPatch) -> None:
    from dsops.data.service import DatasetService

    reads: list[str] = []
    read_table = DatasetService.read_table
    monkeypatch.setattr(DatasetService, "read_table",
                        lambda self, ref: reads.append(str(ref)) or read_table(self, ref))
    _serve(ws, manual_clock, _applications(1500, 3, shift=25.0))
    monitors = MonitorService(ws)
    [result] = monitors.run("watch")
    assert result.status == "firing"
    assert result.columns["income"]["drifted"] == 1.0 and result.columns["age"]["drifted"] == 0.0
    rule = result.rules[0]
    assert rule.firing and rule.incident
    assert rule.actions[0]["action"] == "rollback" and rule.actions[0]["ok"], rule.actions
    assert RolloutService(ws).routes("prod")[0].stable == 1  # rolled back to m@1
    incident = IncidentService(ws).get(rule.incident)
    assert incident.status == "open" and incident.model == "m" and incident.version == 2
    assert [a["action"] for a in incident.actions] == ["rollback"]

    # m@1 now serves the same drifted traffic: the same rule fires again, same incident.
    manual_clock.advance(timedelta(minutes=10))
    _serve(ws, manual_clock, _applications(1500, 4, shift=25.0), version=1)
    [again] = monitors.run("watch")
    assert again.rules[0].incident == rule.incident and again.rules[0].actions == []
    assert len(IncidentService(ws).list()) == 1

    # Healthy traffic: the healthy clock starts, and after 30 minutes the incident resolves.
    manual_clock.advance(timedelta(hours=2))
    _serve(ws, manual_clock, _applications(1500, 5), version=1)
    monitors.run("watch")
    assert IncidentService(ws).get(rule.incident).status == "open"
    manual_clock.advance(timedelta(minutes=31))
    _serve(ws, manual_clock, _applications(1500, 6), version=1)
    monitors.run("watch")
    resolved = IncidentService(ws).get(rule.incident)
    assert resolved.status == "resolved" and resolved.resolved_by == "dsops-monitor"
    assert resolved.time_to_restore_s == pytest.approx(timedelta(hours=2, minutes=41).total_seconds())
    assert [r.status for r in monitors.history("watch")] == ["firing", "firing", "ok", "ok"]
    assert len(reads) == 2  # the reference read once per model version, not per evaluation


def test_people_acknowledge_and_resolve(ws: Workspace, manual_clock: ManualClock) -> None:
    _serve(ws, manual_clock, _applications(1500, 3, shift=25.0))
    [result] = MonitorService(ws).run("watch")
    incidents = IncidentService(ws)
    incident = incidents.acknowledge(result.rules[0].incident[-8:], note="looking")
    assert incident.status == "acknowledged" and incident.acknowledged_by == ws.identity
    manual_clock.advance(timedelta(minutes=45))
    resolved = incidents.resolve(incident.id, note="retrained")
    assert resolved.time_to_restore_s == 45 * 60 and resolved.note == "retrained"
    with pytest.raises(NotFound):
        incidents.get("nope-nope")


class _Hook(BaseHTTPRequestHandler):
    delay = 0.0
    bodies: ClassVar[list[dict[str, object]]] = []

    def do_POST(self) -> None:
        time.sleep(self.delay)
        length = int(self.headers.get("content-length", 0))
        type(self).bodies.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[tuple[str, type[_Hook]]]:
    handler = type("Hook", (_Hook,), {"delay": 0.0, "bodies": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/secret-token-123", handler
    server.shutdown()


def test_a_webhook_that_times_out_is_shown_and_the_incident_kept(
        ws: Workspace, manual_clock: ManualClock, hook, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    url, handler = hook
    handler.delay = 2.0
    monkeypatch.setenv("ONCALL_URL", url)
    _configure(ws, "- when: drifted_share > 0.3\n  do: [incident, 'webhook:oncall']\n")
    _serve(ws, manual_clock, _applications(1500, 3, shift=25.0))
    [result] = MonitorService(ws).run("watch")
    action = result.rules[0].actions[0]
    assert action["action"] == "webhook:oncall" and not action["ok"]
    assert "timed out" in action["detail"] and "secret-token" not in action["detail"]
    incident = IncidentService(ws).get(result.rules[0].incident)
    assert incident.actions[0]["ok"] is False


def test_a_jira_webhook_gets_an_issue(ws: Workspace, manual_clock: ManualClock, hook,  # type: ignore[no-untyped-def]
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    url, handler = hook
    monkeypatch.setenv("JIRA_URL", url)
    _configure(ws, "- when: drifted_share > 0.3\n  do: [incident, 'webhook:jira']\n")
    _serve(ws, manual_clock, _applications(1500, 3, shift=25.0))
    [result] = MonitorService(ws).run("watch")
    assert result.rules[0].actions[0]["ok"], result.rules[0].actions
    issue = handler.bodies[0]["fields"]
    assert issue["project"] == {"key": "RISK"} and "drifted_share > 0.3" in issue["summary"]


def test_an_unknown_column_in_a_rule_is_named(ws: Workspace, manual_clock: ManualClock) -> None:
    _configure(ws, "- when: psi(incme) > 0.2\n")
    _serve(ws, manual_clock, _applications(300, 2))
    with pytest.raises(UsageError, match=r"unknown column 'incme' in psi\(incme\)"):
        MonitorService(ws).run("watch")


def test_a_malformed_alert_rule_is_a_config_error(ws: Workspace) -> None:
    with pytest.raises(ConfigError, match=r"monitors.watch.alerts\[0\].when"):
        _configure(ws, "- when: drifted_share >> 0.3\n")
    with pytest.raises(NotFound, match="unknown monitor 'wach'"):
        MonitorService(ws).run("wach")


def test_retrain_runs_the_stage_that_registers_the_model(ws: Workspace, manual_clock: ManualClock,
                                                        tmp_path: Path) -> None:
    (ws.root / "train.py").write_text(textwrap.dedent("""
        import numpy as np
        from sklearn.linear_model import LogisticRegression
        import dsops
        x = np.arange(40, dtype=float).reshape(20, 2)
        dsops.save_model(LogisticRegression().fit(x, (x[:, 0] > 20).astype(int)), "build/model")
    """))
    config = (ws.root / "dsops.yaml").read_text() + textwrap.dedent("""
        stages:
          train:
            cmd: python train.py
            deps: [train.py]
            outs: [build/model]
            registers: m
            model: build/model
    """)
    (ws.root / "dsops.yaml").write_text(config.replace(
        "do: [incident, rollback]", "do: [incident, retrain]"))
    ws.config = load_config(ws.root / "dsops.yaml")
    _serve(ws, manual_clock, _applications(1500, 3, shift=25.0))
    [result] = MonitorService(ws).run("watch")
    action = result.rules[0].actions[0]
    assert action["action"] == "retrain" and action["ok"], action
    assert action["detail"] == "ran train; registered m@3"


def test_the_report_draws_the_history_and_incidents(ws: Workspace, manual_clock: ManualClock) -> None:
    from dsops.monitoring.report import render_monitor_report

    _serve(ws, manual_clock, _applications(1500, 3, shift=25.0), labels=0.5)
    MonitorService(ws).run("watch")
    manual_clock.advance(timedelta(hours=1))
    _serve(ws, manual_clock, _applications(1500, 4), version=1, labels=0.5)
    MonitorService(ws).run("watch")
    page = render_monitor_report(ws, "watch")
    assert page.count("class=\"plotly-graph-div\"") >= 4  # drift, share, histograms, accuracy
    for title in ("Drift per feature over time", "Share of drifted features",
                  "income: reference vs current", "Accuracy (requests with labels)"):
        assert title in page
    assert "drifted_share &gt; 0.3" in page and "rollback" in page
