"""DORA four keys on a fixed, hand-computable history: production deploys made through the
rollout service with a manual clock, model versions trained at known commits of a real git
repository (fixed dates) and on known dataset versions, a rollback, incidents through the
incident service, and prediction logs for availability and accuracy.

The history (UTC), in the project's ``prod`` (one approval: alice deploys, bob approves):

=====  ===========  =======  ==========================  ===========  ================
deploy promoted     version  change starts               lead time    failed
=====  ===========  =======  ==========================  ===========  ================
D1     01-01 12:00  m@1      c1 12-31 12:00 (first)      24 h
D2     01-06 10:00  m@2      c2 01-04 10:00 (c1..c3)     48 h
D3     01-11 00:00  m@3      c4 01-10 00:00 (c3..c4)     24 h         rolled back 06:00
D4     01-15 00:00  m@4      credit@2 01-14 00:00 (data) 24 h         (previous: m@2)
D5     01-20 00:00  m@5      c5 01-18 00:00 (c4..c6)     48 h         incident A, 3 h
D6     01-26 00:00  m@6      c7 01-24 12:00 (c6..c7)     36 h         incident B, open
=====  ===========  =======  ==========================  ===========  ================

plus a canary of m@6 aborted on 01-24 (never promoted: not a production deploy), a staging
deploy and a staging incident (another environment). Window: 28 days to 2026-01-29 00:00.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import textwrap
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

from dsops.config import load_config
from dsops.core.clock import ManualClock
from dsops.core.errors import NotFound, UsageError
from dsops.data.service import DatasetService
from dsops.metrics.dora import DoraService
from dsops.metrics.dora_tiers import (
    change_failure_tier,
    deployment_frequency_tier,
    lead_time_tier,
    restore_tier,
)
from dsops.monitoring.incidents import IncidentService
from dsops.registry.package import save_model
from dsops.registry.service import RegistryService
from dsops.rollout.service import RolloutService
from dsops.tracking.service import TrackingService
from dsops.workspace import Workspace

H = 3600.0
UNTIL = datetime(2026, 1, 29, tzinfo=UTC)
ENVIRONMENTS = """
environments:
  staging: {}
  prod:
    approvals: 1
"""


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def as_user(ws: Workspace, identity: str) -> Workspace:
    other = Workspace(ws.root, ws.config, clock=ws.clock, identity=identity, store_url=ws.store_url)
    other.__dict__["store"] = ws.store  # share the open store
    return other


@dataclass
class Project:
    """A workspace with its clock, git helpers and the ids of what the history made."""

    ws: Workspace
    clock: ManualClock
    models: Path  # saved model directories, shared by the tests
    deploys: dict[str, str] = field(default_factory=dict)  # D1..D6 -> deployment id
    incidents: dict[str, str] = field(default_factory=dict)  # A, B -> incident id

    def at(self, when: str) -> None:
        self.clock.set(t(when))

    def git(self, *args: str, when: str | None = None) -> str:
        env = {**os.environ, "GIT_AUTHOR_NAME": "Dev", "GIT_AUTHOR_EMAIL": "dev@example.com",
               "GIT_COMMITTER_NAME": "Dev", "GIT_COMMITTER_EMAIL": "dev@example.com",
               "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}
        if when:
            env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = f"{when}:00 +0000"
        return subprocess.run(["git", *args], cwd=self.ws.root, env=env, check=True,
                              capture_output=True, text=True).stdout.strip()

    def commit(self, name: str, when: str) -> None:
        (self.ws.root / "train.py").write_text(f"# {name}\n")
        self.git("add", "train.py")
        self.git("commit", "-q", "-m", name, when=when)

    def data(self, rows: int, when: str) -> None:
        self.at(when)
        path = self.ws.root / "credit.csv"
        pd.DataFrame({"a": range(rows), "b": range(rows)}).to_csv(path, index=False)
        DatasetService(self.ws).add(path, "credit")

    def train(self, when: str, data: str | None, c: float, name: str = "m") -> None:
        """A run at the repository's HEAD on ``data`` that registers the next version."""
        self.at(when)
        tracking = TrackingService(self.ws)
        run = tracking.start_run("train")
        if data:
            tracking.add_lineage([f"data:{data}"], [f"run:{run.id}"])
        RegistryService(self.ws).register(name, _model_dir(self.models, c), run_id=run.id)
        tracking.end_run(run.id)

    def deploy(self, ref: str, when: str, env: str = "prod", **options: object) -> str:
        """alice deploys at ``when``; bob approves an hour later (prod)."""
        self.at(when)
        d = RolloutService(self.ws).deploy(ref, env, **options)  # type: ignore[arg-type]
        if env == "prod":
            self.clock.advance(timedelta(hours=1))
            RolloutService(as_user(self.ws, "bob@example.com")).approve(d.id)
        return d.id


def _model_dir(models: Path, c: float) -> Path:
    """A saved LogisticRegression(C=c): each C is a distinct artifact, saved once per session."""
    path = models / f"c{c}"
    if not path.exists():
        rng = np.random.default_rng(0)
        x = pd.DataFrame({"a": rng.normal(size=40), "b": rng.normal(size=40)})
        y = (x["a"] > 0).astype(int)
        save_model(LogisticRegression(C=c).fit(x, y), path)
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


def _project(ws: Workspace, clock: ManualClock, models: Path) -> Project:
    (ws.root / "dsops.yaml").write_text("project: demo\n" + textwrap.dedent(ENVIRONMENTS))
    ws.config = load_config(ws.root / "dsops.yaml")
    project = Project(ws, clock, models)
    project.git("init", "-q", "-b", "main")
    (ws.root / ".gitignore").write_text(".dsops/\ncredit.csv\n")
    return project


@pytest.fixture
def history(store_url: str, make_workspace, manual_clock: ManualClock, models: Path) -> Project:  # type: ignore[no-untyped-def]
    """The history of the module docstring."""
    p = _project(make_workspace(store_url=store_url, clock=manual_clock), manual_clock, models)
    incidents = IncidentService(p.ws)
    p.data(10, "2025-12-20T00:00")  # credit@1
    p.commit("c1", "2025-12-31T12:00")
    p.train("2025-12-31T13:00", "credit@1", 1.0)  # m@1 at c1
    p.deploys["D1"] = p.deploy("m@1", "2026-01-01T11:00")
    p.deploy("m@1", "2026-01-01T12:30", env="staging")
    p.commit("c2", "2026-01-04T10:00")
    p.commit("c3", "2026-01-05T08:00")
    p.train("2026-01-05T09:00", "credit@1", 0.5)  # m@2 at c3
    p.deploys["D2"] = p.deploy("m@2", "2026-01-06T09:00")
    p.commit("c4", "2026-01-10T00:00")
    p.train("2026-01-10T01:00", "credit@1", 0.25)  # m@3 at c4
    p.deploys["D3"] = p.deploy("m@3", "2026-01-10T23:00")
    p.at("2026-01-11T06:00")
    RolloutService(p.ws).rollback("prod", "m", reason="errors after release")
    p.data(20, "2026-01-14T00:00")  # credit@2
    p.train("2026-01-14T01:00", "credit@2", 0.1)  # m@4 at c4, new data
    p.deploys["D4"] = p.deploy("m@4", "2026-01-14T23:00")
    p.commit("c5", "2026-01-18T00:00")
    p.commit("c6", "2026-01-19T00:00")
    p.train("2026-01-19T01:00", "credit@2", 0.05)  # m@5 at c6
    p.deploys["D5"] = p.deploy("m@5", "2026-01-19T23:00")
    opened, _ = incidents.fire(monitor="m-prod", rule="accuracy < 0.75", severity="high", evidence={},
                               env="prod", model="m", version=5, now=t("2026-01-21T00:00"))
    p.incidents["A"] = opened.id
    p.at("2026-01-21T03:00")
    incidents.resolve(opened.id, note="rolled forward")
    p.commit("c7", "2026-01-24T12:00")
    p.train("2026-01-24T13:00", "credit@2", 0.01)  # m@6 at c7
    canary = p.deploy("m@6", "2026-01-24T14:00", strategy="canary")
    p.at("2026-01-24T16:00")
    RolloutService(p.ws).abort(canary, reason="latency")
    p.deploys["D6"] = p.deploy("m@6", "2026-01-25T23:00")
    opened, _ = incidents.fire(monitor="m-prod", rule="drifted_share > 0.3", severity="high",
                               evidence={}, env="prod", model="m", version=6,
                               deployment_id=p.deploys["D6"], now=t("2026-01-27T00:00"))
    p.incidents["B"] = opened.id
    incidents.fire(monitor="m-staging", rule="error_rate > 0.02", severity="low", evidence={},
                   env="staging", model="m", version=1, now=t("2026-01-27T00:00"))
    p.at("2026-02-15T00:00")  # "now" is later than the window's end
    return p


def report(p: Project, **options: object):  # type: ignore[no-untyped-def]
    return DoraService(p.ws).report(**{"model": "m", "since": "28d", "until": UNTIL, **options})  # type: ignore[arg-type]


# ------------------------------------------------------------------------ the four keys


def test_the_four_keys_of_a_fixed_history(history: Project) -> None:
    r = report(history)
    assert (r.start, r.end, r.env, r.model) == (t("2026-01-01T00:00"), UNTIL, "prod", "m")

    # deployment frequency: 6 deploys in 28 days = 1.5 per week, between once a week and once a day
    f = r.deployment_frequency
    assert f.deploys == 6
    assert f.per_day == pytest.approx(6 / 28) and f.per_week == pytest.approx(1.5)
    assert f.tier == "high"

    # lead time: 24, 48, 24, 24, 48, 36 h -> median (24 + 36) / 2 = 30 h, p90 48 h
    assert [d.ref for d in r.deploys] == [f"m@{v}" for v in range(1, 7)]
    assert [d.deployment_id for d in r.deploys] == [history.deploys[f"D{i}"] for i in range(1, 7)]
    assert [d.lead_time_s / H for d in r.deploys] == [24, 48, 24, 24, 48, 36]
    assert [d.lead_source for d in r.deploys] == ["git", "git", "git", "data", "git", "git"]
    assert [d.commits for d in r.deploys] == [1, 2, 1, 1, 2, 1]
    assert r.deploys[0].lead_note == "first production deploy: the run's commit"
    assert r.deploys[1].lead_note.startswith("first of 2 commits ")
    assert r.deploys[3].lead_note == "credit@2 created after the first commit"
    assert r.deploys[3].previous_version == 2  # m@3 was rolled back: m@2 served again
    assert r.deploys[1].lead_start == t("2026-01-04T10:00")
    assert [d.promoted_by for d in r.deploys] == ["dsops-rollout"] * 6  # direct: on approval
    lt = r.lead_time
    assert (lt.measured, lt.median_s, lt.p90_s) == (6, 30 * H, 48 * H)
    assert lt.sources == {"data": 1, "git": 5}
    assert lt.tier == "high"

    # change failure rate: D3 rolled back, D5 and D6 blamed for incidents -> 3 of 6
    cfr = r.change_failure_rate
    assert (cfr.deploys, cfr.failed, cfr.rate, cfr.tier) == (6, 3, 0.5, "low")
    assert [d.ref for d in r.failures] == ["m@3", "m@5", "m@6"]
    assert r.failures[0].failure_reasons == [
        "rolled back at 2026-01-11 06:00 by alice@example.com: errors after release"]
    assert r.failures[1].failure_reasons == [
        f"incident {history.incidents['A']} (m-prod: accuracy < 0.75) opened at 2026-01-21 00:00"]
    assert r.failures[2].failure_reasons == [
        f"incident {history.incidents['B']} (m-prod: drifted_share > 0.3) opened at 2026-01-27 00:00"]

    # time to restore: A took 3 h; B is still open (2 days at the window's end)
    ttr = r.time_to_restore
    assert (ttr.incidents, ttr.restored, ttr.still_open) == (2, 1, 1)
    assert (ttr.median_s, ttr.p90_s, ttr.tier) == (3 * H, 3 * H, "high")
    a, b = r.incidents
    assert (a.id, a.restore_s, a.open_for_s, a.deployment_id) == (
        history.incidents["A"], 3 * H, None, history.deploys["D5"])
    assert (b.id, b.status, b.restore_s, b.open_for_s, b.deployment_id) == (
        history.incidents["B"], "open", None, 48 * H, history.deploys["D6"])

    # no prediction log: the ML extras say so
    assert r.availability.value is None and r.availability.note.startswith("no data")
    assert r.accuracy.value is None and r.accuracy.note.startswith("no data")
    assert "2023" in r.source and r.thresholds["change_failure_rate"]["elite"] == "<= 5 %"


def test_periods_bucket_by_day_week_and_month(history: Project) -> None:
    weeks = report(history, by="week").periods
    assert [(p.period, p.start, p.end) for p in weeks] == [
        ("2026-W01", t("2026-01-01T00:00"), t("2026-01-05T00:00")),  # clipped to the window
        ("2026-W02", t("2026-01-05T00:00"), t("2026-01-12T00:00")),
        ("2026-W03", t("2026-01-12T00:00"), t("2026-01-19T00:00")),
        ("2026-W04", t("2026-01-19T00:00"), t("2026-01-26T00:00")),
        ("2026-W05", t("2026-01-26T00:00"), t("2026-01-29T00:00")),
    ]
    assert [(p.deploys, p.failures, p.median_lead_time_s and p.median_lead_time_s / H)
            for p in weeks] == [(1, 0, 24), (2, 1, 36), (1, 0, 24), (1, 1, 48), (1, 1, 36)]
    assert [(p.incidents, p.restored, p.median_restore_s) for p in weeks] == [
        (0, 0, None), (0, 0, None), (0, 0, None), (1, 1, 3 * H), (1, 0, None)]

    (month,) = report(history, by="month").periods
    assert (month.period, month.deploys, month.failures, month.median_lead_time_s) == (
        "2026-01", 6, 3, 30 * H)

    days = report(history, by="day").periods
    assert len(days) == 28 and days[0].period == "2026-01-01" and days[-1].period == "2026-01-28"
    assert {p.period: p.deploys for p in days if p.deploys} == {
        "2026-01-01": 1, "2026-01-06": 1, "2026-01-11": 1, "2026-01-15": 1, "2026-01-20": 1,
        "2026-01-26": 1}
    assert sum(p.deploys for p in days) == 6

    # a narrower window: only what was promoted (and opened) in it counts; "now" is the clock
    history.at("2026-01-16T00:00")
    r = DoraService(history.ws).report(model="m", since="7d")
    assert [d.ref for d in r.deploys] == ["m@3", "m@4"]
    assert (r.change_failure_rate.failed, r.time_to_restore.incidents) == (1, 0)


def test_every_model_unless_one_is_named(history: Project) -> None:
    history.train("2026-01-27T00:00", None, 1.0, name="other")  # at c7, without data
    history.deploy("other@1", "2026-01-27T23:00")
    everything = DoraService(history.ws).report(since="28d", until=UNTIL)
    assert [d.ref for d in everything.deploys] == [*(f"m@{v}" for v in range(1, 7)), "other@1"]
    assert everything.lead_time.sources == {"data": 1, "git": 6}
    assert everything.deploys[-1].lead_time_s == 84 * H  # first deploy: from its run's commit c7
    assert everything.lead_time.median_s == 36 * H  # 24, 24, 24, 36, 48, 48, 84
    assert report(history).deployment_frequency.deploys == 6


def test_cli_prints_the_keys_and_the_table_or_json(history: Project,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from dsops.cli.app import app

    monkeypatch.chdir(history.ws.root)
    monkeypatch.setenv("DSOPS_STORE_URL", history.ws.store_url)
    runner = CliRunner()
    args = ["metrics", "dora", "--model", "m", "--since", "2026-01-01", "--until", "2026-01-29"]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["deployment_frequency"]["tier"] == "high"
    assert data["change_failure_rate"]["rate"] == 0.5
    assert [p["deploys"] for p in data["periods"]] == [1, 2, 1, 1, 1]
    assert len(data["deploys"]) == 6 and len(data["incidents"]) == 2

    result = runner.invoke(app, [*args, "--by", "month"])
    assert result.exit_code == 0, result.output
    out = result.output
    for expected in ("1.50 per week", "30.0 h (p90 48.0 h)", "50%", "3.0 h", "1 restored, 1 still open",
                     "m@3 promoted 2026-01-11 00:00: rolled back", "2026-01", "high", "low",
                     "Accelerate State of DevOps Report 2023"):
        assert expected in out, expected

    result = runner.invoke(app, ["metrics", "dora", "--model", "mm", "--json"])
    assert result.exit_code != 0
    assert isinstance(result.exception, NotFound) and "did you mean 'm'" in str(result.exception)


# ----------------------------------------------------------------- fallbacks, no data


@pytest.fixture
def project(store_url: str, make_workspace, manual_clock: ManualClock, models: Path) -> Project:  # type: ignore[no-untyped-def]
    """An empty project with environments and a git repository."""
    return _project(make_workspace(store_url=store_url, clock=manual_clock), manual_clock, models)


def test_lead_time_falls_back_when_git_cannot_answer(project: Project) -> None:
    p = project
    p.data(10, "2025-12-30T00:00")  # credit@1
    p.commit("c1", "2025-12-31T00:00")
    p.train("2026-01-01T00:00", "credit@1", 1.0)
    p.deploy("m@1", "2026-01-02T00:00")
    p.commit("c2", "2026-01-02T00:00")
    p.train("2026-01-03T00:00", "credit@1", 0.5)
    p.deploy("m@2", "2026-01-04T00:00")

    ok = DoraService(p.ws).report(model="m", until=t("2026-01-05T00:00"))
    assert [(d.lead_source, d.lead_time_s / H) for d in ok.deploys] == [("git", 49), ("git", 49)]

    # a repository that does not hold the runs' commits: the data's creation, else the run
    shutil.rmtree(p.ws.root / ".git")
    p.git("init", "-q")
    p.commit("other history", "2026-01-01T00:00")
    unknown = DoraService(p.ws).report(model="m", until=t("2026-01-05T00:00"))
    first, second = unknown.deploys
    assert (first.lead_source, first.lead_time_s / H) == ("data", 73)  # credit@1 at 12-30 00:00
    assert first.lead_note.startswith("credit@1 created; code: commit ")
    assert "is not in the git repository" in first.lead_note
    assert (second.lead_source, second.lead_time_s / H) == ("run", 25)  # run at 01-03 00:00
    assert "is not in the git repository" in second.lead_note

    # no repository at all
    shutil.rmtree(p.ws.root / ".git")
    none = DoraService(p.ws).report(model="m", until=t("2026-01-05T00:00"))
    assert [d.lead_source for d in none.deploys] == ["data", "run"]
    assert all("is not in a git repository" in d.lead_note for d in none.deploys)


def test_an_empty_history_is_no_data_not_an_error(project: Project) -> None:
    project.at("2026-01-10T00:00")
    r = DoraService(project.ws).report()
    assert r.deployment_frequency.deploys == 0
    assert (r.deployment_frequency.per_day, r.deployment_frequency.tier) == (None, None)
    assert (r.lead_time.measured, r.lead_time.median_s, r.lead_time.tier) == (0, None, None)
    assert (r.change_failure_rate.rate, r.change_failure_rate.tier) == (None, None)
    assert (r.time_to_restore.incidents, r.time_to_restore.median_s, r.time_to_restore.tier) == (
        0, None, None)
    assert r.availability.value is None and r.accuracy.value is None
    assert len(r.periods) == 14 and all(p.deploys == 0 for p in r.periods)  # 90 days by week

    project.train("2026-01-09T00:00", None, 1.0)  # a model that was never deployed
    assert DoraService(project.ws).report(model="m").deploys == []

    from dsops.cli.metrics import render

    render(r)  # "no data" everywhere renders too


def test_a_project_without_environments_has_no_data_yet(store_url: str, make_workspace,  # type: ignore[no-untyped-def]
                                                         manual_clock: ManualClock) -> None:
    r = DoraService(make_workspace(store_url=store_url, clock=manual_clock)).report(by="month")
    assert r.env == "prod" and r.deploys == [] and r.deployment_frequency.tier is None
    assert [p.period for p in r.periods] == ["2025-10", "2025-11", "2025-12"]


def test_bad_requests_are_clear_errors(project: Project) -> None:
    project.train("2026-01-09T00:00", None, 1.0)
    service = DoraService(project.ws)
    with pytest.raises(NotFound, match="unknown model 'mm' — did you mean 'm'"):
        service.report(model="mm")
    with pytest.raises(NotFound, match="unknown environment 'prd' — did you mean 'prod'"):
        service.report(env="prd")
    with pytest.raises(UsageError, match="unknown period 'year'"):
        service.report(by="year")
    with pytest.raises(UsageError, match="invalid --since 'lately'"):
        service.report(since="lately")
    with pytest.raises(UsageError, match="the report window is empty"):
        service.report(since="2026-02-01", until="2026-01-01")


# ------------------------------------------------------------------- ML extras, tiers


def test_availability_and_accuracy_come_from_the_prediction_log(project: Project) -> None:
    from dsops.serving.predlog import FeedbackWriter, PredictionLogWriter

    p = project
    p.train("2026-01-01T00:00", None, 1.0)
    p.deploy("m@1", "2026-01-01T01:00")
    log = PredictionLogWriter(p.ws.objects, env="prod", clock=p.clock, flush_interval_s=3600)
    other = PredictionLogWriter(p.ws.objects, env="staging", clock=p.clock, flush_interval_s=3600)
    feedback = FeedbackWriter(p.ws.objects, clock=p.clock, flush_interval_s=3600)
    at = t("2026-01-03T00:00")
    for i in range(10):  # 10 requests, 2 failed; 8 answers: 1,0,1,0,...
        failed = i >= 8
        log.append(f"r{i}", "m", 1, None if failed else i % 2, status="error" if failed else "ok",
                   time=at)
    log.append("r0", "m", 1, 0, role="shadow", status="error", time=at)  # never served
    log.append("old", "m", 1, 1, status="error", time=t("2025-12-01T00:00"))  # before the window
    other.append("s0", "m", 1, 1, status="error", time=at)  # another environment
    for i in range(6):  # labels for r0..r5: r0..r3 right, r4 and r5 wrong
        feedback.append(f"r{i}", i % 2 if i < 4 else 1 - i % 2, time=at + timedelta(hours=1))
    for writer in (log, other, feedback):
        writer.close()

    p.at("2026-01-10T00:00")
    r = DoraService(p.ws).report(model="m", since="30d")
    assert (r.availability.requests, r.availability.failed, r.availability.value) == (10, 2, 0.8)
    acc = r.accuracy
    assert (acc.predictions, acc.labelled, acc.correct) == (8, 6, 4)
    assert acc.value == pytest.approx(4 / 6) and acc.coverage == pytest.approx(6 / 8)


@pytest.mark.parametrize(("per_week", "tier"), [
    (7.0, "elite"), (6.99, "high"), (1.0, "high"), (0.99, "medium"), (7 / 30, "medium"),
    (0.2, "low"), (None, None)])
def test_deployment_frequency_tiers(per_week: float | None, tier: str | None) -> None:
    assert deployment_frequency_tier(None if per_week is None else per_week / 7) == tier


@pytest.mark.parametrize(("hours", "lead", "restore"), [
    (0.5, "elite", "elite"), (1, "elite", "high"), (23.9, "elite", "high"), (24, "high", "medium"),
    (24 * 7 - 1, "high", "medium"), (24 * 7, "medium", "low"), (24 * 30, "low", "low")])
def test_lead_time_and_restore_tiers(hours: float, lead: str, restore: str) -> None:
    assert (lead_time_tier(hours * H), restore_tier(hours * H)) == (lead, restore)


@pytest.mark.parametrize(("rate", "tier"), [
    (0.0, "elite"), (0.05, "elite"), (0.06, "high"), (0.10, "high"), (0.15, "medium"),
    (0.151, "low"), (1.0, "low")])
def test_change_failure_rate_tiers(rate: float, tier: str) -> None:
    assert change_failure_tier(rate) == tier
