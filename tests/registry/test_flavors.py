"""Model flavors: every flavor round-trips to the same predictions; unsafe formats need trust."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from dsops.core.errors import PermissionDenied, UsageError
from dsops.registry.flavors import (
    PICKLE_REASON,
    LoadedClassifier,
    LoadedModel,
    SavedModel,
    load_model,
    save_model,
)

ROOT = Path(__file__).resolve().parents[2]
TRUST_HINT = "record trust with 'dsops models trust NAME@VERSION' after checking where the model came from"


class LinearScorer:
    """A plain Python model whose state is JSON: weights and a bias."""

    def __init__(self, weights: list[float], bias: float) -> None:
        self.weights = weights
        self.bias = bias

    def predict(self, X: Any) -> np.ndarray:
        return np.asarray(X, dtype=float) @ np.asarray(self.weights) + self.bias

    def predict_proba(self, X: Any) -> np.ndarray:
        p = 1 / (1 + np.exp(-self.predict(X)))
        return np.column_stack([1 - p, p])


class ArrayScorer:
    """A plain Python model whose state is a NumPy array: it needs pickle."""

    def __init__(self, weights: np.ndarray) -> None:
        self.weights = weights

    def predict(self, X: Any) -> np.ndarray:
        return np.asarray(X, dtype=float) @ self.weights


class Doubler(TransformerMixin, BaseEstimator):
    """A custom transformer: skops does not trust its type by default."""

    def fit(self, X: Any, y: Any = None) -> Doubler:
        return self

    def transform(self, X: Any) -> np.ndarray:
        return np.asarray(X) * 2.0


class ComplexScaler(TransformerMixin, BaseEstimator):
    """A transformer holding a complex number, which skops cannot store: it falls back to pickle."""

    def fit(self, X: Any, y: Any = None) -> ComplexScaler:
        self.factor_ = complex(3, 4)
        return self

    def transform(self, X: Any) -> np.ndarray:
        return np.asarray(X) * abs(self.factor_)


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, np.ndarray]:
    X, y = make_classification(n_samples=200, n_features=6, n_informative=4, random_state=0)
    return pd.DataFrame(X, columns=[f"x{i}" for i in range(6)]), y


def round_trip(model: Any, directory: Path, **kwargs: Any) -> tuple[SavedModel, LoadedModel]:
    saved = save_model(model, directory, **kwargs)
    json.dumps(saved.meta)  # the registry stores it as JSON
    assert sorted(p.name for p in directory.iterdir()) == sorted(saved.files)
    return saved, load_model(directory, saved.flavor, saved.meta, trusted=saved.needs_trust)


def test_sklearn_logistic_regression_round_trips_with_skops(data, tmp_path):
    X, y = data
    model = LogisticRegression().fit(X, y)
    saved, loaded = round_trip(model, tmp_path / "m")

    assert (saved.flavor, saved.files, saved.needs_trust) == ("sklearn", ["model.skops"], False)
    assert saved.trust_reason is None
    assert saved.meta["format"] == "skops" and saved.meta["untrusted_types"] == []
    assert saved.meta["feature_names"] == list(X.columns)
    assert isinstance(loaded, LoadedClassifier) and loaded.flavor == "sklearn"
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X))
    # Columns are passed in training order, whatever order (or container) they arrive in.
    shuffled = X[list(reversed(X.columns))].assign(extra=1)
    np.testing.assert_allclose(loaded.predict_proba(shuffled), model.predict_proba(X))
    as_dict = {c: X[c].tolist() for c in reversed(X.columns)}
    np.testing.assert_array_equal(loaded.predict(as_dict), model.predict(X))


def test_sklearn_pipeline_round_trips(data, tmp_path):
    X, y = data
    model = Pipeline([("scale", StandardScaler()), ("lr", LogisticRegression())]).fit(X.to_numpy(), y)
    saved, loaded = round_trip(model, tmp_path / "m")

    assert saved.needs_trust is False and saved.meta["feature_names"] is None
    np.testing.assert_array_equal(loaded.predict(X.to_numpy()), model.predict(X.to_numpy()))
    np.testing.assert_allclose(loaded.predict_proba(X.to_numpy()), model.predict_proba(X.to_numpy()))


def test_a_model_without_predict_proba_has_no_such_attribute(data, tmp_path):
    from sklearn.linear_model import LinearRegression

    X, y = data
    _, loaded = round_trip(LinearRegression().fit(X, y), tmp_path / "m")
    assert not hasattr(loaded, "predict_proba")


def test_custom_transformer_needs_trust_listing_the_types(data, tmp_path):
    X, y = data
    model = Pipeline([("double", Doubler()), ("lr", LogisticRegression())]).fit(X, y)
    saved = save_model(model, tmp_path / "m")

    assert saved.needs_trust and saved.meta["untrusted_types"] == ["tests.registry.test_flavors.Doubler"]
    with pytest.raises(PermissionDenied) as denied:
        load_model(tmp_path / "m", saved.flavor, saved.meta, ref="churn@3")
    assert "tests.registry.test_flavors.Doubler" in denied.value.message
    assert "churn@3" in denied.value.message
    assert denied.value.hint == TRUST_HINT.replace("NAME@VERSION", "churn@3")

    loaded = load_model(tmp_path / "m", saved.flavor, saved.meta, trusted=True)
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X))


def test_what_skops_cannot_store_falls_back_to_pickle_which_needs_trust(data, tmp_path):
    X, y = data
    model = Pipeline([("scale", ComplexScaler()), ("lr", LogisticRegression())]).fit(X, y)
    saved = save_model(model, tmp_path / "m")

    assert (saved.files, saved.needs_trust, saved.trust_reason) == (["model.pkl"], True, PICKLE_REASON)
    assert saved.meta["format"] == "pickle" and "skops_error" in saved.meta
    with pytest.raises(PermissionDenied) as denied:
        load_model(tmp_path / "m", saved.flavor, saved.meta)
    assert PICKLE_REASON in denied.value.message and denied.value.hint == TRUST_HINT
    loaded = load_model(tmp_path / "m", saved.flavor, saved.meta, trusted=True)
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X))


def test_meta_edited_to_skip_trust_still_refuses_pickle(data, tmp_path):
    X, y = data
    model = Pipeline([("s", ComplexScaler()), ("lr", LogisticRegression())]).fit(X, y)
    saved = save_model(model, tmp_path / "m")
    meta = {**saved.meta, "needs_trust": False, "trust_reason": None}
    with pytest.raises(PermissionDenied):
        load_model(tmp_path / "m", saved.flavor, meta)


def test_equal_models_save_to_identical_bytes(data, tmp_path):
    import zipfile

    import lightgbm
    import xgboost

    X, y = data
    makers = {
        "pipeline": lambda: Pipeline([("scale", StandardScaler()), ("lr", LogisticRegression())]).fit(X, y),
        "xgboost": lambda: xgboost.XGBClassifier(n_estimators=5, max_depth=3).fit(X, y),
        "lightgbm": lambda: lightgbm.LGBMClassifier(n_estimators=5, verbose=-1).fit(X, y),
        "python": lambda: LinearScorer([1.0, 2.0], bias=0.5),
    }
    for name, make in makers.items():
        # Two fits are distinct objects: skops' id()-named entries would differ without normalising.
        first, second = save_model(make(), tmp_path / f"{name}1"), save_model(make(), tmp_path / f"{name}2")
        assert first.meta == second.meta
        for file in first.files:
            one, two = (tmp_path / f"{name}{i}" / file for i in (1, 2))
            assert one.read_bytes() == two.read_bytes(), name
    with zipfile.ZipFile(tmp_path / "pipeline1" / "model.skops") as archive:
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_xgboost_classifier_round_trips_natively(data, tmp_path):
    import xgboost

    X, y = data
    model = xgboost.XGBClassifier(n_estimators=5, max_depth=3).fit(X, y)
    saved, loaded = round_trip(model, tmp_path / "m")

    assert (saved.flavor, saved.files, saved.needs_trust) == ("xgboost", ["model.ubj"], False)
    assert saved.meta["class"] == "XGBClassifier" and saved.meta["feature_names"] == list(X.columns)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X))


def test_xgboost_booster_takes_arrays_for_named_features(data, tmp_path):
    import xgboost

    X, y = data
    booster = xgboost.train({"max_depth": 3}, xgboost.DMatrix(X, label=y), num_boost_round=5)
    saved, loaded = round_trip(booster, tmp_path / "m")

    assert saved.meta["class"] == "Booster" and not hasattr(loaded, "predict_proba")
    expected = booster.predict(xgboost.DMatrix(X))
    np.testing.assert_allclose(loaded.predict(X.to_numpy()), expected)
    np.testing.assert_allclose(loaded.predict(X[list(reversed(X.columns))]), expected)


def test_lightgbm_classifier_keeps_labels_and_probabilities(data, tmp_path):
    import lightgbm

    X, y = data
    model = lightgbm.LGBMClassifier(n_estimators=5, verbose=-1).fit(X, y)
    saved, loaded = round_trip(model, tmp_path / "m")

    assert (saved.flavor, saved.files, saved.meta["classes"]) == ("lightgbm", ["model.txt"], [0, 1])
    assert isinstance(loaded, LoadedClassifier)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X))
    assert loaded.predict_proba(X).shape == (len(X), 2)


def test_lightgbm_multiclass_with_string_labels(tmp_path):
    import lightgbm

    X, y = make_classification(n_samples=300, n_features=6, n_informative=4, n_classes=3, random_state=1)
    labels = np.array(["low", "mid", "high"])[y]
    model = lightgbm.LGBMClassifier(n_estimators=5, verbose=-1).fit(X, labels)
    saved, loaded = round_trip(model, tmp_path / "m")

    assert saved.meta["feature_names"] is None  # trained on an array: LightGBM's Column_i names are not kept
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X))


def test_lightgbm_booster_regression_round_trips(data, tmp_path):
    import lightgbm

    X, _ = data
    target = X["x0"] * 2 + X["x1"]
    booster = lightgbm.train({"objective": "regression", "verbose": -1}, lightgbm.Dataset(X, target),
                             num_boost_round=5)
    saved, loaded = round_trip(booster, tmp_path / "m")

    assert saved.meta["class"] == "Booster" and saved.meta["feature_names"] == list(X.columns)
    assert not hasattr(loaded, "predict_proba")
    np.testing.assert_allclose(loaded.predict(X), booster.predict(X))


@pytest.mark.parametrize("zipmap", [True, False])
def test_onnx_from_skl2onnx_matches_the_sklearn_model(data, tmp_path, zipmap):
    from skl2onnx import to_onnx

    X, y = data
    array = X.to_numpy()
    model = LogisticRegression().fit(array, y)
    onx = to_onnx(model, array[:1].astype(np.float32), options=None if zipmap else {"zipmap": False})
    saved, loaded = round_trip(onx, tmp_path / "m")

    assert (saved.flavor, saved.files, saved.needs_trust) == ("onnx", ["model.onnx"], False)
    assert saved.meta["inputs"][0]["name"] == "X"
    np.testing.assert_array_equal(loaded.predict(array), model.predict(array))
    np.testing.assert_allclose(loaded.predict_proba(array), model.predict_proba(array), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(array), rtol=1e-5, atol=1e-6)


def test_onnx_with_one_input_per_column_takes_frames_and_dicts(tmp_path):
    from skl2onnx import to_onnx
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.RandomState(0)
    X = pd.DataFrame({"age": rng.rand(100).astype(np.float32), "city": rng.choice(["a", "b", "c"], 100)})
    y = (X["age"] > 0.5).astype(int)
    columns = ColumnTransformer([("num", StandardScaler(), ["age"]), ("cat", OneHotEncoder(), ["city"])])
    model = Pipeline([("columns", columns), ("lr", LogisticRegression())]).fit(X, y)
    saved, loaded = round_trip(to_onnx(model, X[:1]), tmp_path / "m")

    assert [i["name"] for i in saved.meta["inputs"]] == ["age", "city"]
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X), rtol=1e-5, atol=1e-6)
    as_dict = {"city": X["city"].tolist(), "age": X["age"].tolist()}
    np.testing.assert_array_equal(loaded.predict(as_dict), model.predict(X))
    with pytest.raises(UsageError, match="missing input column 'city'"):
        loaded.predict({"age": [0.5]})


def test_onnx_bytes_need_the_flavor_named(data, tmp_path):
    from skl2onnx import to_onnx

    X, y = data
    model = LogisticRegression().fit(X.to_numpy(), y)
    data_bytes = to_onnx(model, X.to_numpy()[:1].astype(np.float32)).SerializeToString()
    with pytest.raises(UsageError) as error:
        save_model(data_bytes, tmp_path / "a")
    assert "flavor='onnx'" in str(error.value)
    _, loaded = round_trip(data_bytes, tmp_path / "b", flavor="onnx")
    np.testing.assert_array_equal(loaded.predict(X.to_numpy()), model.predict(X.to_numpy()))
    with pytest.raises(UsageError, match="cannot save a bytes as a 'onnx' model"):
        save_model(b"not onnx", tmp_path / "c", flavor="onnx")
    assert not any((tmp_path / "c").iterdir())


def test_python_class_with_json_state_needs_no_trust(data, tmp_path):
    X, _ = data
    model = LinearScorer([0.5, -1.0, 0.0, 2.0, 0.1, 0.3], bias=0.25)
    saved, loaded = round_trip(model, tmp_path / "m")

    assert (saved.flavor, saved.files, saved.needs_trust) == ("python", ["state.json"], False)
    assert saved.meta["code_ref"] == "tests.registry.test_flavors:LinearScorer"
    assert isinstance(loaded.raw, LinearScorer) and isinstance(loaded, LoadedClassifier)
    np.testing.assert_allclose(loaded.predict(X), model.predict(X))
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X))


def test_python_class_with_array_state_needs_trust(data, tmp_path):
    X, _ = data
    model = ArrayScorer(np.arange(6, dtype=float))
    saved = save_model(model, tmp_path / "m")

    assert (saved.files, saved.needs_trust, saved.trust_reason) == (["state.pkl"], True, PICKLE_REASON)
    with pytest.raises(PermissionDenied):
        load_model(tmp_path / "m", saved.flavor, saved.meta)
    loaded = load_model(tmp_path / "m", saved.flavor, saved.meta, trusted=True)
    assert not hasattr(loaded, "predict_proba")
    np.testing.assert_allclose(loaded.predict(X), model.predict(X))


def test_a_class_in_main_is_refused_unless_code_ref_names_an_importable_one(tmp_path):
    in_main = type("Scorer", (), {"__module__": "__main__", "predict": lambda self, X: X})
    model = in_main()
    model.weights = [1.0]
    with pytest.raises(UsageError, match="defined in __main__") as error:
        save_model(model, tmp_path / "a")
    assert "importable module" in (error.value.hint or "")

    saved = save_model(model, tmp_path / "b", code_ref="tests.registry.test_flavors:LinearScorer")
    loaded = load_model(tmp_path / "b", saved.flavor, saved.meta)
    assert isinstance(loaded.raw, LinearScorer) and loaded.raw.weights == [1.0]
    with pytest.raises(UsageError, match="cannot import"):
        save_model(model, tmp_path / "c", code_ref="tests.registry.test_flavors:Nowhere")


def test_unsupported_objects_and_mismatched_flavors_are_usage_errors(data, tmp_path):
    X, y = data
    with pytest.raises(UsageError, match=r"cannot save a dict: no model flavor fits it \(supported: sklearn"):
        save_model({"weights": [1, 2]}, tmp_path / "a")
    with pytest.raises(UsageError, match=r"cannot save a sklearn\.preprocessing\._data\.StandardScaler"):
        save_model(StandardScaler().fit(X), tmp_path / "b")
    model = LogisticRegression().fit(X, y)
    with pytest.raises(UsageError, match="cannot be saved as a 'xgboost' model"):
        save_model(model, tmp_path / "c", flavor="xgboost")
    with pytest.raises(UsageError, match="unknown model flavor 'torch'"):
        save_model(model, tmp_path / "d", flavor="torch")
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "other").write_text("x")
    with pytest.raises(UsageError, match="not empty"):
        save_model(model, tmp_path / "e")


def test_a_missing_training_column_is_named(data, tmp_path):
    X, y = data
    _, loaded = round_trip(LogisticRegression().fit(X, y), tmp_path / "m")
    with pytest.raises(UsageError, match=r"missing input column 'x3' \(expected columns: x0, x1"):
        loaded.predict(X.drop(columns="x3"))


def test_models_load_in_a_fresh_interpreter(data, tmp_path):
    import lightgbm

    X, y = data
    models = {
        "skops": LogisticRegression().fit(X, y),
        "lgbm": lightgbm.LGBMClassifier(n_estimators=5, verbose=-1).fit(X, y),
        "python": LinearScorer([0.5] * 6, bias=1.0),
    }
    expected, metas = {}, {}
    for name, model in models.items():
        saved = save_model(model, tmp_path / name)
        metas[name] = [saved.flavor, saved.meta]
        expected[name] = np.asarray(model.predict(X)).tolist()
    X.to_csv(tmp_path / "X.csv", index=False)
    (tmp_path / "metas.json").write_text(json.dumps(metas))
    script = textwrap.dedent(f"""
        import json, sys
        from pathlib import Path
        import numpy as np, pandas as pd
        from dsops.registry.flavors import load_model
        base = Path({str(tmp_path)!r})
        X = pd.read_csv(base / "X.csv")
        out = {{}}
        for name, (flavor, meta) in json.loads((base / "metas.json").read_text()).items():
            out[name] = np.asarray(load_model(base / name, flavor, meta).predict(X)).tolist()
        print(json.dumps(out))
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                            check=True)
    got = json.loads(result.stdout)
    for name in models:
        np.testing.assert_allclose(got[name], expected[name], err_msg=name)


def test_importing_the_flavors_imports_no_model_library():
    script = ("import sys, dsops.registry.flavors, dsops.registry.signature; "
              "print([m for m in ('sklearn', 'skops', 'xgboost', 'lightgbm', 'onnxruntime', 'pandas') "
              "if m in sys.modules])")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
