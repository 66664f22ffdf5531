"""Cache correctness: each kind of input change reruns exactly the affected stages."""

from __future__ import annotations

from typing import Any

import pytest

from dsops.tracking.service import TrackingService
from tests.pipelines.conftest import STAGES, Project


def why(project: Project) -> dict[str, list[str]]:
    return {s.stage: s.why for s in project.service().status()}


def test_first_run_runs_both_and_a_rerun_is_all_cached(project: Project) -> None:
    result = project.service().run()
    assert [(s.stage, s.action, s.why) for s in result.stages] == [
        ("prepare", "run", ["never run"]), ("train", "run", ["never run"])]
    assert (project.root / "build/model.txt").read_text() == "lr=0.1 n=8"
    assert project.actions() == {"prepare": "cached", "train": "cached"}
    assert why(project) == {"prepare": ["up to date"], "train": ["up to date"]}


def test_a_stage_run_is_tracked_with_params_metrics_lineage_and_logs(project: Project) -> None:
    result = project.service().run()
    train = TrackingService(project.ws).get(result.stages[1].run_id or "")
    assert (train.kind, train.status, train.exit_code) == ("stage", "finished", 0)
    assert train.params == {"train.lr": "0.1"}
    assert train.metrics == {"auc": pytest.approx(0.6), "loss.train": 0.25}
    assert any(i.startswith("file:build/features.txt@") for i in train.inputs)
    assert any(o.startswith("file:build/model.txt@") for o in train.outputs)
    assert {a.path for a in train.artifacts} == {"stdout.log", "stderr.log"}


def test_changing_a_param_reruns_only_the_stage_that_lists_it(project: Project) -> None:
    project.service().run()
    project.write("params.yaml", "prepare:\n  repeat: 2\ntrain:\n  lr: 0.2\n  epochs: 9\n")
    assert why(project) == {"prepare": ["up to date"], "train": ["param train.lr changed 0.1 → 0.2"]}
    assert project.actions() == {"prepare": "cached", "train": "run"}
    assert (project.root / "build/model.txt").read_text() == "lr=0.2 n=8"


def test_changing_a_dep_reruns_the_stage_and_downstream_only_if_its_outs_changed(
        project: Project) -> None:
    project.service().run()
    project.write("train.py", project.root.joinpath("train.py").read_text() + "\n# tweak\n")
    assert why(project)["train"] == ["dep train.py changed"]
    assert project.actions() == {"prepare": "cached", "train": "run"}
    project.write("raw.csv", "a\nb\nc\nd\n")
    assert project.service().status()[1].why == ["upstream prepare will run"]
    assert project.actions() == {"prepare": "run", "train": "run"}
    # a dep whose content did not change (same bytes rewritten) reruns nothing
    project.write("raw.csv", "a\nb\nc\nd\n")
    assert project.actions() == {"prepare": "cached", "train": "cached"}


def test_changing_the_command_reruns_that_stage(project: Project) -> None:
    project.service().run()
    project.write_stages(STAGES.replace("python prepare.py", "python ./prepare.py"))
    assert why(project)["prepare"] == ["command changed"]
    # prepare's out is the same bytes: train stays cached
    assert project.actions() == {"prepare": "run", "train": "cached"}


def test_changing_the_environment_reruns_every_stage(project: Project,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from dsops.tracking import environment

    real = environment.environment_lock()
    monkeypatch.setattr(environment, "environment_lock", lambda: {
        **real, "packages": {**real["packages"], "scikit-learn": "1.8"}})
    project.service().run()
    monkeypatch.setattr(environment, "environment_lock", lambda: {
        **real, "packages": {**real["packages"], "scikit-learn": "1.9"}})
    assert why(project)["prepare"] == ["environment changed (scikit-learn 1.8 → 1.9)"]
    assert project.actions() == {"prepare": "run", "train": "run"}


def test_force_reruns_cached_stages(project: Project) -> None:
    project.service().run()
    assert project.actions(force=True) == {"prepare": "run", "train": "run"}
    assert project.actions() == {"prepare": "cached", "train": "cached"}


def test_deleted_outs_are_restored_from_the_cache_without_running(project: Project) -> None:
    first = {s.stage: s.run_id for s in project.service().run().stages}
    model = (project.root / "build/model.txt").read_text()
    (project.root / "build/model.txt").unlink()
    (project.root / "build/metrics.json").unlink()
    result = project.service().run()
    assert [(s.action, s.run_id) for s in result.stages] == [
        ("cached", first["prepare"]), ("cached", first["train"])]
    assert result.stages[1].why[0] == "out build/model.txt missing"
    assert (project.root / "build/model.txt").read_text() == model
    runs = TrackingService(project.ws).list()
    assert len(runs) == 2


def test_reverting_a_change_restores_the_earlier_outs_from_the_cache(project: Project) -> None:
    project.service().run()
    project.write("params.yaml", "prepare:\n  repeat: 2\ntrain:\n  lr: 0.3\n")
    assert project.actions() == {"prepare": "cached", "train": "run"}
    project.write("params.yaml", "prepare:\n  repeat: 2\ntrain:\n  lr: 0.1\n")
    result = project.service().run()
    assert result.stages[1].action == "cached"
    assert result.stages[1].why == ["param train.lr changed 0.3 → 0.1", "outs restored from the cache"]
    assert (project.root / "build/model.txt").read_text() == "lr=0.1 n=8"


def test_dry_run_reports_without_running(project: Project) -> None:
    result = project.service().run(dry=True)
    assert result.dry and [s.action for s in result.stages] == ["run", "run"]
    assert not (project.root / "build").exists()
    assert TrackingService(project.ws).list() == []


def test_selecting_a_stage_runs_its_out_of_date_upstreams(project: Project) -> None:
    assert project.actions(stages=["prepare"]) == {"prepare": "run"}
    project.write("raw.csv", "z\n")
    assert project.actions(stages=["train"]) == {"prepare": "run", "train": "run"}


def test_data_deps_use_the_dataset_version(make_project: Any, store_url: str) -> None:
    from dsops.data.service import DatasetService

    project = make_project(store_url, with_stages=False)
    project.write("credit.csv", "age,income\n30,100\n")
    DatasetService(project.ws).add(project.root / "credit.csv", "credit")
    project.write("count.py", "import pathlib; pathlib.Path('out.txt').write_text('ok')\n")
    project.write_stages("""\
        stages:
          count:
            cmd: python count.py
            deps: [data:credit]
            outs: [out.txt]
        """)
    result = project.service().run()
    run = TrackingService(project.ws).get(result.stages[0].run_id)
    assert "data:credit@1" in run.inputs
    project.write("credit.csv", "age,income\n30,100\n40,200\n")
    DatasetService(project.ws).add(project.root / "credit.csv", "credit")
    assert why(project) == {"count": ["dep data:credit changed (credit@1 → credit@2)"]}
