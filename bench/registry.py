"""Benchmark: the model registry, ``dsops.log_model`` / ``dsops.load_model`` side by side with
MLflow 3 (``mlflow.<flavor>.log_model`` with registration, ``mlflow.pyfunc.load_model``).

Run from the repository root (``make bench`` does this, after installing the ``bench``
extra, which brings MLflow):

    python bench/registry.py [--rows 10000] [--reps 7] [--cold-reps 5] [--profile]

Two models on the same generated data (``make_classification``, 20 features, fixed seed):
a ``StandardScaler`` + ``LogisticRegression`` pipeline and an ``LGBMClassifier`` with 100
trees. Each tool gets a fresh project under ``bench/.work/registry`` (same disk as the
repository; removed at the end unless ``--keep``): dsops ``Workspace.init`` (SQLite store,
local object store); MLflow a ``sqlite:///`` tracking and registry store with a local
artifact root. Neither tool has an active run. In this one process, both tools warm (one
untimed log and load of each model per tool first: imports and first-call set-up are not
timed), then ``--reps`` repetitions, the tools interleaved (order alternating):

1. log: register a new version of a changed model (a different ``C`` or ``random_state`` each
   repetition, so neither tool can return an existing version; the version numbers are
   checked): ``dsops.log_model(model, name, input_example=X[:5])`` vs
   ``mlflow.sklearn.log_model`` / ``mlflow.lightgbm.log_model(model, name="model",
   input_example=X[:5], registered_model_name=name)``, MLflow's defaults otherwise (skops
   format, pip requirements inferred). MLflow with ``pip_requirements`` given (no
   inference) is timed as well, for reference.
2. then, for each version logged: a fresh load, the first in this process; for dsops its
   local model cache ``.dsops/models/<digest>`` does not exist yet (checked), so the files
   are fetched from the object store and hash-verified; MLflow downloads the artifacts (it
   has no cache).
3. a second load of the same version (dsops: from its cache, every file hash-checked;
   MLflow: downloaded again).
4. predictions: both loaded models' ``predict`` on all rows must equal the original
   model's, and their probabilities match to 1e-9, for both tools; otherwise the
   benchmark stops.

The medians are reported. Then cold figures, as a CLI user pays them: a fresh subprocess
that imports the tool and loads one version (``python -c "import dsops.sdk as s;
s.load_model(...)"`` in the project vs ``python -c "import mlflow.pyfunc;
mlflow.pyfunc.load_model(...)"`` with ``MLFLOW_TRACKING_URI`` set), median of
``--cold-reps``; dsops both with its model cache removed before each run (fetched) and with
it in place. Bare imports (``skops.io``, ``lightgbm``, ``mlflow.pyfunc``) are timed the same
way, to show where cold time goes. Target (issue 5): dsops ≥ 5× faster in every case.
``--profile`` prints a cProfile of 5 more dsops ``log_model`` calls per model.

Results: a table on stdout and ``bench/results/registry.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import logging
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from data_add import ENV, contention, machine, save_results, tool_env

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / "bench" / ".work" / "registry"
RESULTS = REPO / "bench" / "results" / "registry.json"
TARGET = 5.0
KINDS = ("sklearn", "lightgbm")
LABELS = {"sklearn": "LogisticRegression pipeline", "lightgbm": "LGBMClassifier, 100 trees"}
PROBA_TOLERANCE = 1e-9
PROFILE_CALLS = 5


# --- models ---------------------------------------------------------------------------------


def dataset(rows: int) -> tuple[Any, Any]:
    import pandas as pd
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=rows, n_features=20, n_informative=10,
                               random_state=0)
    return pd.DataFrame(X, columns=[f"f{i}" for i in range(20)]), y


def fit(kind: str, i: int, X: Any, y: Any) -> Any:
    """Model ``i`` of a kind: a different C / random_state each, so every one is a new version."""
    if kind == "sklearn":
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        return make_pipeline(StandardScaler(),
                             LogisticRegression(C=1.0 / (i + 1), max_iter=1000)).fit(X, y)
    from lightgbm import LGBMClassifier

    # Column sampling makes random_state change the trees (without it, equal models).
    return LGBMClassifier(n_estimators=100, random_state=i, colsample_bytree=0.8,
                          verbose=-1).fit(X, y)


def check_predictions(tool: str, ref: str, original: Any, predict: Any, proba: Any,
                      X: Any) -> float:
    """Stop the benchmark unless the loaded model predicts as the original; max |Δproba|."""
    import numpy as np

    got, expected = np.asarray(predict(X)), original.predict(X)
    if not np.array_equal(got, expected):
        sys.exit(f"bench: {tool} {ref}: loaded model's predictions differ from the original's "
                 f"on {int((got != expected).sum())} of {len(expected)} rows")
    diff = float(np.abs(np.asarray(proba(X)) - original.predict_proba(X)).max())
    if diff > PROBA_TOLERANCE:
        sys.exit(f"bench: {tool} {ref}: probabilities differ from the original's by {diff:g}")
    return diff


# --- the two tools ----------------------------------------------------------------------------


class Dsops:
    """dsops in a fresh project: log, load, and where a version's local cache lives."""

    name = "dsops"

    def __init__(self, root: Path) -> None:
        from dsops.workspace import Workspace

        self.root = root
        self.ws = Workspace.init(root, project="bench", identity="bench@example.com")
        self.digests: dict[str, str] = {}

    def log(self, kind: str, model: Any, example: Any, expected_version: int) -> str:
        import dsops.sdk

        info = dsops.sdk.log_model(model, f"bench-{kind}", input_example=example,
                                   workspace=self.ws)
        ref = f"bench-{kind}@{info.version}"
        assert info.version == expected_version, f"dsops registered {ref}, not a new version"
        self.digests[ref] = info.digest
        return ref

    def cache_dir(self, ref: str) -> Path:
        return self.ws.state_dir / "models" / self.digests[ref]

    def load(self, ref: str) -> Any:
        import dsops.sdk

        return dsops.sdk.load_model(ref, workspace=self.ws)

    def check(self, ref: str, loaded: Any, original: Any, X: Any) -> float:
        return check_predictions(self.name, ref, original, loaded.predict,
                                 loaded.predict_proba, X)

    def cold_command(self, ref: str) -> tuple[list[str], dict[str, str]]:
        code = f"import dsops.sdk as s; s.load_model({ref!r})"  # the project from the cwd
        return [sys.executable, "-c", code], ENV


class Mlflow:
    """MLflow 3 on a SQLite tracking + registry store with a local artifact root."""

    name = "MLflow"

    def __init__(self, root: Path) -> None:
        import mlflow

        root.mkdir(parents=True)
        self.root = root
        self.uri = f"sqlite:///{root / 'mlflow.db'}"
        mlflow.set_tracking_uri(self.uri)
        mlflow.set_registry_uri(self.uri)
        experiment_id = mlflow.create_experiment(
            "bench", artifact_location=(root / "artifacts").as_uri())
        mlflow.set_experiment(experiment_id=experiment_id)
        quiet_mlflow()  # the store's migrations log at INFO again

    def log(self, kind: str, model: Any, example: Any, expected_version: int,
            pip_requirements: list[str] | None = None) -> str:
        import mlflow.lightgbm
        import mlflow.sklearn

        flavor = mlflow.sklearn if kind == "sklearn" else mlflow.lightgbm
        # Registration prints "Created version ..." itself, past the logging levels.
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            info = flavor.log_model(model, name="model", input_example=example,
                                    registered_model_name=f"bench-{kind}",
                                    pip_requirements=pip_requirements)
        version = int(info.registered_model_version)
        assert version == expected_version, f"MLflow registered version {version}, not new"
        return f"models:/bench-{kind}/{version}"

    def load(self, ref: str) -> Any:
        import mlflow.pyfunc

        return mlflow.pyfunc.load_model(ref)

    def check(self, ref: str, loaded: Any, original: Any, X: Any) -> float:
        return check_predictions(self.name, ref, original, loaded.predict,
                                 loaded.get_raw_model().predict_proba, X)

    def cold_command(self, ref: str) -> tuple[list[str], dict[str, str]]:
        code = f"import mlflow.pyfunc; mlflow.pyfunc.load_model({ref!r})"
        return [sys.executable, "-c", code], ENV | {"MLFLOW_TRACKING_URI": self.uri}


def pip_requirements(kind: str) -> list[str]:
    """What MLflow would infer, given up front: MLflow then skips the inference."""
    from importlib.metadata import version

    names = ["mlflow", "scikit-learn", "skops", "numpy", "pandas"]
    if kind == "lightgbm":
        names.append("lightgbm")
    return [f"{n}=={version(n)}" for n in names]


# --- warm, in one process ---------------------------------------------------------------------


def timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t0, out


def bench_warm(kind: str, models: list[Any], X: Any, dsops_tool: Dsops,
               mlflow_tool: Mlflow) -> dict[str, Any]:
    """Model 0 is the untimed warm-up; models 1.. are the timed repetitions.

    All versions are logged first, then loaded, the tools interleaved closely in both
    phases so that both see the same moments of a shared machine.
    """
    example = X.head(5)
    samples: dict[str, list[float]] = {
        f"{tool}_{case}": [] for tool in ("dsops", "mlflow")
        for case in ("log", "load", "load_again")}
    samples["mlflow_log_no_inference"] = []
    refs: dict[str, list[str]] = {"dsops": [], "mlflow": []}
    versions = {"dsops": 0, "mlflow": 0}
    tools: dict[str, Dsops | Mlflow] = {"dsops": dsops_tool, "mlflow": mlflow_tool}
    at_start = contention()
    for i, model in enumerate(models):
        for key in ("dsops", "mlflow") if i % 2 == 0 else ("mlflow", "dsops"):
            versions[key] += 1
            log_s, ref = timed(tools[key].log, kind, model, example, versions[key])
            refs[key].append(ref)
            if i:
                samples[f"{key}_log"].append(log_s)
        # For reference: MLflow told the requirements (a further version of the same model).
        versions["mlflow"] += 1
        log_s, _ = timed(mlflow_tool.log, kind, model, example, versions["mlflow"],
                         pip_requirements=pip_requirements(kind))
        if i:
            samples["mlflow_log_no_inference"].append(log_s)
            print(f"      {kind} log {i}: dsops {samples['dsops_log'][-1]:.3f} s, MLflow "
                  f"{samples['mlflow_log'][-1]:.2f} s (given requirements {log_s:.2f} s)",
                  flush=True)
    proba_diff = 0.0
    for i, model in enumerate(models):
        for key in ("dsops", "mlflow") if i % 2 == 0 else ("mlflow", "dsops"):
            tool, ref = tools[key], refs[key][i]
            if isinstance(tool, Dsops):
                cache = tool.cache_dir(ref)
                assert not cache.exists(), f"{cache} exists before the first load of {ref}"
            load_s, loaded = timed(tool.load, ref)
            if isinstance(tool, Dsops):
                assert tool.cache_dir(ref).is_dir(), f"dsops did not cache {ref}"
            again_s, loaded_again = timed(tool.load, ref)
            for m in (loaded, loaded_again):
                proba_diff = max(proba_diff, tool.check(ref, m, model, X))
            if i:
                samples[f"{key}_load"].append(load_s)
                samples[f"{key}_load_again"].append(again_s)
        if i:
            print(f"      {kind} load {i}: dsops {samples['dsops_load'][-1] * 1e3:.1f} ms "
                  f"(again {samples['dsops_load_again'][-1] * 1e3:.1f}), MLflow "
                  f"{samples['mlflow_load'][-1] * 1e3:.1f} ms "
                  f"(again {samples['mlflow_load_again'][-1] * 1e3:.1f})", flush=True)
    return {"samples_s": samples,
            "median_s": {k: statistics.median(v) for k, v in samples.items()},
            "refs": refs, "max_proba_diff": proba_diff, "contention_at_start": at_start}


# --- cold: a new process that imports and loads -------------------------------------------------


def run_timed(cmd: list[str], env: dict[str, str], cwd: Path) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"bench: `{' '.join(cmd)}` failed (exit {proc.returncode}):\n"
                 f"{proc.stdout}\n{proc.stderr}")
    return elapsed


def bench_cold(kind: str, refs: dict[str, str], dsops_tool: Dsops, mlflow_tool: Mlflow,
               reps: int) -> dict[str, Any]:
    """Median of ``reps`` new processes per variant, the variants interleaved."""
    dsops_cmd, dsops_env = dsops_tool.cold_command(refs["dsops"])
    mlflow_cmd, mlflow_env = mlflow_tool.cold_command(refs["mlflow"])
    cache = dsops_tool.cache_dir(refs["dsops"])
    samples: dict[str, list[float]] = {"dsops_fetched": [], "dsops_cached": [], "mlflow": []}
    at_start = contention()
    for _ in range(reps):
        shutil.rmtree(cache)
        samples["dsops_fetched"].append(run_timed(dsops_cmd, dsops_env, dsops_tool.root))
        assert cache.is_dir(), f"the cold dsops load did not fetch {refs['dsops']}"
        samples["dsops_cached"].append(run_timed(dsops_cmd, dsops_env, dsops_tool.root))
        samples["mlflow"].append(run_timed(mlflow_cmd, mlflow_env, mlflow_tool.root))
    return {"refs": refs, "commands": {"dsops": dsops_cmd[-1], "mlflow": mlflow_cmd[-1]},
            "contention_at_start": at_start,
            "samples_s": samples,
            "median_s": {k: statistics.median(v) for k, v in samples.items()}}


IMPORTS = {
    "python": "pass",
    "dsops.sdk": "import dsops.sdk",
    "dsops.registry.loading": "import dsops.registry.loading",  # + the store (SQLAlchemy ORM)
    "sklearn (the 3 modules used)":
        "import sklearn.linear_model, sklearn.pipeline, sklearn.preprocessing",
    "skops.io": "import skops.io",  # imports every sklearn estimator (its trusted types)
    "lightgbm": "import lightgbm",  # imports sklearn and pandas when installed
    "onnxruntime": "import onnxruntime",
    "mlflow.pyfunc": "import mlflow.pyfunc",
}


def bench_imports(reps: int) -> dict[str, float]:
    """Median seconds of a new process doing only the import (``python``: an empty one)."""
    import importlib.util

    def installed(code: str) -> bool:  # "import a.b, c" → a and c importable
        names = code.removeprefix("import ").split(",") if code != "pass" else []
        return all(importlib.util.find_spec(n.strip().split(".")[0]) for n in names)

    imports = {name: code for name, code in IMPORTS.items() if installed(code)}
    samples: dict[str, list[float]] = {name: [] for name in imports}
    for _ in range(reps):
        for name, code in imports.items():
            samples[name].append(run_timed([sys.executable, "-c", code], ENV, REPO))
    return {name: statistics.median(v) for name, v in samples.items()}


# --- profile ---------------------------------------------------------------------------------


def profile_log(kind: str, models: list[Any], X: Any, dsops_tool: Dsops, version: int) -> str:
    """cProfile of dsops ``log_model`` over ``models`` (each a new version), cumulative."""
    profiler = cProfile.Profile()
    for i, model in enumerate(models):
        profiler.enable()
        dsops_tool.log(kind, model, X.head(5), version + i)
        profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(30)
    return out.getvalue()


# --- main ------------------------------------------------------------------------------------


def quiet_mlflow() -> None:
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    for name in ("mlflow", "alembic", "sqlalchemy"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore")


def print_table(rows: list[dict[str, Any]]) -> None:
    header = ("case", "dsops s", "MLflow s", "ratio", "target", "result")
    lines = [(r["case"], f"{r['dsops_s']:.4f}", f"{r['mlflow_s']:.4f}", f"{r['ratio']:.1f}×",
              f"≥ {r['target']:g}×" if r["target"] else "—",
              ("PASS" if r["pass"] else "FAIL") if r["target"] else "—") for r in rows]
    widths = [max(len(str(x[i])) for x in [header, *lines]) for i in range(len(header))]
    for line in [header, *lines]:
        print("  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                        for i, (c, w) in enumerate(zip(line, widths, strict=True))))


def table(warm: dict[str, Any], cold: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []

    def row(case: str, key: str, dsops_s: float, mlflow_s: float, target: float | None) -> None:
        ratio = mlflow_s / dsops_s
        rows.append({"case": case, "key": key, "dsops_s": dsops_s, "mlflow_s": mlflow_s,
                     "ratio": ratio, "target": target,
                     "pass": target is None or ratio >= target})

    for kind in KINDS:
        w, c = warm[kind]["median_s"], cold[kind]["median_s"]
        row(f"{kind}: log_model + load_model (the issue's measure)", f"{kind}_log_load",
            w["dsops_log"] + w["dsops_load"], w["mlflow_log"] + w["mlflow_load"], TARGET)
        row(f"{kind}: log_model (register a new version)", f"{kind}_log",
            w["dsops_log"], w["mlflow_log"], TARGET)
        row(f"{kind}: log_model, MLflow given pip_requirements", f"{kind}_log_no_inference",
            w["dsops_log"], w["mlflow_log_no_inference"], None)
        row(f"{kind}: load_model, new version (fetch + verify)", f"{kind}_load",
            w["dsops_load"], w["mlflow_load"], TARGET)
        row(f"{kind}: load_model again (dsops cache)", f"{kind}_load_again",
            w["dsops_load_again"], w["mlflow_load_again"], TARGET)
        row(f"{kind}: cold process, import + load (fetch)", f"{kind}_cold",
            c["dsops_fetched"], c["mlflow"], TARGET)
        row(f"{kind}: cold process, import + load (cached)", f"{kind}_cold_cached",
            c["dsops_cached"], c["mlflow"], TARGET)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000, help="training rows")
    parser.add_argument("--reps", type=int, default=7, help="timed repetitions in process")
    parser.add_argument("--cold-reps", type=int, default=5, help="timed new processes")
    parser.add_argument("--profile", action="store_true",
                        help=f"print a cProfile of {PROFILE_CALLS} more dsops log_model calls "
                             "per model")
    parser.add_argument("--json", type=Path, default=RESULTS, help="where to write results")
    parser.add_argument("--keep", action="store_true", help="keep bench/.work/registry")
    args = parser.parse_args()

    for name in ("DSOPS_STORE_URL", "DSOPS_OBJECTS_URL", "DSOPS_URL", "DSOPS_RUN_ID",
                 "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        os.environ.pop(name, None)
    os.environ.setdefault("DSOPS_USER", "bench@example.com")
    quiet_mlflow()
    ENV.update(tool_env())
    if WORK.exists():
        shutil.rmtree(WORK)
    WORK.mkdir(parents=True)
    started = time.perf_counter()
    from importlib.metadata import version

    info = machine()
    info.pop("dvc", None)
    info |= {name: version(name) for name in ("mlflow", "scikit-learn", "lightgbm", "skops",
                                              "numpy", "pandas")}
    print(f"machine: {info['cpus']} CPUs, {info['mem_gib']} GiB, Python {info['python']}, "
          f"dsops {info['dsops']} ({info['src_digest']}), MLflow {info['mlflow']}, "
          f"scikit-learn {info['scikit-learn']}, LightGBM {info['lightgbm']}, "
          f"skops {info['skops']}; {info['contention_at_start']}", flush=True)
    profiles: dict[str, str] = {}
    try:
        X, y = dataset(args.rows)
        print(f"[1/4] fitting {args.reps + 1} models of each kind on {args.rows:,} rows × 20 "
              "features (untimed)", flush=True)
        models = {kind: [fit(kind, i, X, y) for i in range(args.reps + 1)] for kind in KINDS}
        dsops_tool, mlflow_tool = Dsops(WORK / "dsops"), Mlflow(WORK / "mlflow")
        print(f"[2/4] in process, both tools warm: 1 untimed warm-up, then {args.reps} "
              "repetitions of log, load, load again, predictions checked", flush=True)
        warm = {kind: bench_warm(kind, models[kind], X, dsops_tool, mlflow_tool)
                for kind in KINDS}
        print(f"[3/4] cold: {args.cold_reps} new processes each (import + load one version)",
              flush=True)
        cold = {kind: bench_cold(kind, {t: warm[kind]["refs"][t][-1] for t in ("dsops", "mlflow")},
                                 dsops_tool, mlflow_tool, args.cold_reps) for kind in KINDS}
        print("[4/4] bare imports in new processes", flush=True)
        imports = bench_imports(args.cold_reps)
        if args.profile:
            for kind in KINDS:
                version_next = len(warm[kind]["refs"]["dsops"]) + 1
                extra = [fit(kind, 1000 + i, X, y) for i in range(PROFILE_CALLS)]
                profiles[kind] = profile_log(kind, extra, X, dsops_tool, version_next)
        dsops_tool.ws.close()
    finally:
        if not args.keep:
            shutil.rmtree(WORK, ignore_errors=True)
    ended = contention()

    rows = table(warm, cold)
    print()
    print_table(rows)
    print("(ratio: MLflow seconds ÷ dsops seconds; warm rows: median of "
          f"{args.reps} after 1 untimed warm-up per tool, imports and first-call set-up "
          f"excluded; cold rows: median of {args.cold_reps} new processes)")
    diff = max(warm[k]["max_proba_diff"] for k in KINDS)
    print(f"predictions: every loaded model (both tools) predicts as the original on all "
          f"{args.rows:,} rows; max |Δ probability| {diff:g}")
    print("bare imports, new process (s): "
          + ", ".join(f"{name} {s:.2f}" for name, s in imports.items()))
    print(f"contention: start {info['contention_at_start']}, end {ended}")
    for kind, text in profiles.items():
        print(f"\n--- cProfile: {PROFILE_CALLS} dsops log_model calls, {kind} ---\n{text}")

    save_results(
        args.json, "bench/registry.py", info=info,
        params=vars(args) | {"json": str(args.json)},
        started=started, ended=ended,
        models=LABELS,
        rows=rows,
        warm=warm,
        cold=cold,
        imports_s=imports,
    )


if __name__ == "__main__":
    main()
