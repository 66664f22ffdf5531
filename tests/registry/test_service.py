"""The registry service and SDK: versions, aliases, trust, integrity, flags, stage registration."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import dsops.sdk as sdk
from dsops.config import load_config
from dsops.core.errors import IntegrityError, NotFound, PermissionDenied, UsageError
from dsops.registry.service import RegistryService
from dsops.tracking.service import TrackingService
from dsops.workspace import Workspace


def _frame(seed: int = 0, n: int = 200) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame({"age": rng.integers(18, 90, n), "income": rng.normal(50, 10, n)})
    y = (x["income"] + rng.normal(0, 5, n) > 50).astype(int).to_numpy()
    return x, y


def _model(c: float = 1.0) -> tuple[LogisticRegression, pd.DataFrame]:
    x, y = _frame()
    return LogisticRegression(C=c).fit(x, y), x


class PickledOnly:
    """Not a scikit-learn estimator, with state that JSON cannot hold: stored as pickle."""

    def __init__(self) -> None:
        self.table = {(1, 2): 3.0}

    def predict(self, x: object) -> np.ndarray:
        return np.zeros(len(x))  # type: ignore[arg-type]


def test_log_model_numbers_versions_and_loads_the_same_predictions(workspace: Workspace) -> None:
    model, x = _model()
    v1 = sdk.log_model(model, "credit-risk", input_example=x.head(), workspace=workspace)
    v2 = sdk.log_model(_model(0.01)[0], "credit-risk", input_example=x.head(), workspace=workspace)
    assert (v1.version, v2.version) == (1, 2)
    assert v1.flavor == "sklearn" and v1.signature is not None
    loaded = sdk.load_model("credit-risk@1", workspace=workspace)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    np.testing.assert_allclose(loaded.predict_proba(x), model.predict_proba(x))
    assert sdk.load_model("credit-risk", workspace=workspace).ref == "credit-risk@2"


def test_the_same_artifact_is_not_a_new_version(workspace: Workspace) -> None:
    model, x = _model()
    first = sdk.log_model(model, "m", input_example=x.head(), workspace=workspace)
    again = sdk.log_model(model, "m", input_example=x.head(), workspace=workspace)
    assert again.version == first.version == 1
    assert [v.version for v in RegistryService(workspace).versions("m")] == [1]


def test_log_model_in_a_run_links_run_metrics_and_lineage(workspace: Workspace) -> None:
    model, x = _model()
    tracking = TrackingService(workspace)
    run = tracking.start_run("train", params={"C": 1.0})
    tracking.log_metrics(run.id, [("auc", 0.91, 0, workspace.now())])
    tracking.add_lineage(["data:credit@2"], [f"run:{run.id}"])
    registry = RegistryService(workspace)
    model_dir = sdk.save_model(model, workspace.root / "build" / "model", input_example=x.head())
    info = registry.register("credit-risk", model_dir, run_id=run.id).version
    assert info.run_id == run.id
    assert info.metrics["auc"] == pytest.approx(0.91)
    assert info.params == {"C": "1.0"}
    assert info.datasets == ["data:credit@2"]


def test_aliases_move_with_history_and_champion_needs_a_gate(workspace: Workspace) -> None:
    model, x = _model()
    for _ in range(2):
        sdk.log_model(model, "m", input_example=x.head(), workspace=workspace)
        model = _model(0.001)[0]
    registry = RegistryService(workspace)
    registry.set_alias("m@1", "challenger", reason="try it")
    registry.set_alias("m@2", "challenger")
    assert registry.show("m@challenger").version == 2
    with pytest.raises(PermissionDenied, match="champion alias moves only to a version that passed"):
        registry.set_alias("m@2", "champion")
    with pytest.raises(UsageError, match="--force needs --reason"):
        registry.set_alias("m@2", "champion", force=True)
    registry.set_alias("m@2", "champion", force=True, reason="hotfix, gate service down")
    history = registry.history("m")
    assert [(c.alias, c.from_version, c.to_version, c.forced) for c in history] == [
        ("challenger", None, 1, False), ("challenger", 1, 2, False), ("champion", None, 2, True)]
    assert history[0].actor == workspace.identity and history[0].reason == "try it"
    from dsops.security.audit import AuditService

    actions = [e.action for e in AuditService(workspace).list(limit=100)]
    assert "model.alias.forced" in actions


def test_unknown_model_version_and_alias_are_clear(workspace: Workspace) -> None:
    model, x = _model()
    sdk.log_model(model, "credit-risk", input_example=x.head(), workspace=workspace)
    registry = RegistryService(workspace)
    with pytest.raises(NotFound, match="did you mean 'credit-risk'"):
        registry.show("credit-rsk")
    with pytest.raises(NotFound, match="versions are 1 to 1"):
        registry.show("credit-risk@5")
    with pytest.raises(NotFound, match="unknown alias of credit-risk 'champion'"):
        registry.show("credit-risk@champion")


def test_a_tampered_artifact_is_refused(workspace: Workspace) -> None:
    model, x = _model()
    info = sdk.log_model(model, "m", input_example=x.head(), workspace=workspace)
    artifact = next(f for f in info.files if f.path.endswith(".skops"))
    # In the object store, before anything was fetched:
    stored = workspace.state_dir / "objects" / artifact.digest[:2] / artifact.digest[2:]
    os.chmod(stored, 0o644)
    stored.write_bytes(stored.read_bytes()[:-8] + b"tampered")
    with pytest.raises(IntegrityError, match="does not match its recorded hash"):
        sdk.load_model("m@1", workspace=workspace)


def test_a_tampered_local_copy_is_refused(workspace: Workspace) -> None:
    model, x = _model()
    info = sdk.log_model(model, "m", input_example=x.head(), workspace=workspace)
    sdk.load_model("m@1", workspace=workspace)  # fetched into .dsops/models/
    artifact = next(f for f in info.files if f.path.endswith(".skops"))
    cached = workspace.state_dir / "models" / info.digest / artifact.path
    os.chmod(cached, 0o644)
    cached.write_bytes(cached.read_bytes() + b"\0")
    with pytest.raises(IntegrityError, match="changed after it was registered"):
        sdk.load_model("m@1", workspace=workspace)


def test_pickle_needs_recorded_trust(workspace: Workspace) -> None:
    info = sdk.log_model(PickledOnly(), "odd", workspace=workspace)
    assert info.needs_trust and "untrusted format" in info.flags
    with pytest.raises(PermissionDenied, match="dsops models trust"):
        sdk.load_model("odd@1", workspace=workspace)
    trusted = RegistryService(workspace).trust("odd@1", reason="built by our CI from commit abc")
    assert trusted.trusted_by == workspace.identity and not trusted.flags
    assert list(sdk.load_model("odd@1", workspace=workspace).predict([[1], [2]])) == [0, 0]


def test_signature_is_enforced_on_predict(workspace: Workspace) -> None:
    model, x = _model()
    sdk.log_model(model, "m", input_example=x.head(), workspace=workspace)
    loaded = sdk.load_model("m", workspace=workspace)
    with pytest.raises(UsageError, match="income"):
        loaded.predict(x.drop(columns=["income"]))
    # Columns in another order, and extra columns, are fine.
    shuffled = x[["income", "age"]].assign(extra=1)
    np.testing.assert_array_equal(loaded.predict(shuffled), model.predict(x))


def test_a_model_trained_on_revoked_data_is_flagged(workspace: Workspace, tmp_path: Path) -> None:
    from dsops.data.service import DatasetService

    csv = tmp_path / "d.csv"
    csv.write_text("a,b\n1,2\n3,4\n")
    DatasetService(workspace).add(csv, name="d")
    model, x = _model()
    tracking = TrackingService(workspace)
    run = tracking.start_run("train")
    tracking.add_lineage(["data:d@1"], [f"run:{run.id}"])
    path = sdk.save_model(model, tmp_path / "model", input_example=x.head())
    RegistryService(workspace).register("m", path, run_id=run.id)
    DatasetService(workspace).revoke("d@1", reason="consent withdrawn")
    registry = RegistryService(workspace)
    assert registry.show("m@1").flags == ["trained on revoked d@1"]
    assert registry.list()[0].flags == ["trained on revoked d@1"]


def test_listing_counts_versions_and_flags_only_the_versions_shown(workspace: Workspace,
                                                                   tmp_path: Path) -> None:
    from dsops.data.service import DatasetService

    csv = tmp_path / "d.csv"
    csv.write_text("a,b\n1,2\n3,4\n")
    DatasetService(workspace).add(csv, name="d")
    tracking = TrackingService(workspace)
    run = tracking.start_run("train")
    tracking.add_lineage(["data:d@1"], [f"run:{run.id}"])
    registry = RegistryService(workspace)
    for c in (1.0, 0.5, 0.1):
        model, x = _model(c)
        path = sdk.save_model(model, tmp_path / f"model-{c}", input_example=x.head())
        registry.register("m", path, run_id=run.id if c == 1.0 else None)
    registry.set_alias("m@1", "staging")
    DatasetService(workspace).revoke("d@1", reason="consent withdrawn")

    (summary,) = registry.list()
    assert (summary.latest, summary.versions, summary.aliases) == (3, 3, {"staging": 1})
    assert summary.flags == ["trained on revoked d@1"]  # of m@1, shown through its alias
    registry.set_alias("m@2", "staging")
    assert registry.list()[0].flags == []  # m@1 is no longer shown


def test_models_diff(workspace: Workspace) -> None:
    model, x = _model()
    sdk.log_model(model, "m", input_example=x.head(), metrics={"auc": 0.8}, workspace=workspace)
    wide = LogisticRegression().fit(x.assign(extra=x["age"] * 2), _frame()[1])
    sdk.log_model(wide, "m", input_example=x.assign(extra=1).head(), metrics={"auc": 0.85},
                  workspace=workspace)
    diff = RegistryService(workspace).diff("m@1", "m@2")
    assert diff.metrics["auc"].changed and diff.metrics["auc"].new == pytest.approx(0.85)
    assert diff.inputs["extra"].old is None and diff.inputs["extra"].new is not None
    assert not diff.inputs["age"].changed


def test_stage_registers_its_model(make_workspace, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ws = make_workspace()
    (ws.root / "train.py").write_text(textwrap.dedent("""
        import numpy as np
        from sklearn.linear_model import LogisticRegression
        import dsops
        x = np.arange(40, dtype=float).reshape(20, 2)
        y = (x[:, 0] > 20).astype(int)
        dsops.save_model(LogisticRegression().fit(x, y), "build/model")
        open("build/metrics.json", "w").write('{"auc": 0.75}')
    """))
    (ws.root / "dsops.yaml").write_text(textwrap.dedent("""
        project: demo
        stages:
          train:
            cmd: python train.py
            deps: [train.py]
            outs: [build/model]
            metrics: [build/metrics.json]
            registers: credit-risk
            model: build/model
    """))
    from dsops.pipelines.service import PipelineService

    ws.config = load_config(ws.root / "dsops.yaml")
    result = PipelineService(ws).run([])
    assert result.stages[0].model == "credit-risk@1"
    info = RegistryService(ws).show("credit-risk@1")
    assert info.run_id == result.stages[0].run_id and info.metrics["auc"] == 0.75
    again = PipelineService(ws).run([])
    assert again.stages[0].action == "cached"
    assert [v.version for v in RegistryService(ws).versions("credit-risk")] == [1]


def test_registers_needs_a_model_among_the_outs(tmp_path: Path) -> None:
    from dsops.core.errors import ConfigError

    path = tmp_path / "dsops.yaml"
    path.write_text("project: p\nstages:\n  train:\n    cmd: x\n    outs: [a]\n"
                    "    registers: m\n    model: b\n")
    with pytest.raises(ConfigError, match=r"dsops.yaml:3: stages.train: model 'b' must be one of"):
        load_config(path)


def test_register_a_directory_that_is_not_a_saved_model(workspace: Workspace, tmp_path: Path) -> None:
    (tmp_path / "junk").mkdir()
    with pytest.raises(UsageError, match="is not a saved model"):
        RegistryService(workspace).register("m", tmp_path / "junk")
    assert RegistryService(workspace).list() == []
