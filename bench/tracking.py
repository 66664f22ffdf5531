"""Benchmark: dsops experiment tracking side by side with MLflow 3 on a local SQLite store.

Run from the repository root (``make bench`` does this, after installing the ``bench``
extra, which brings MLflow):

    python bench/tracking.py [--single 10000] [--mlflow-single 1000] [--values 100000]
                             [--batch 1000] [--runs 10000] [--search-reps 11]

Both tools use SQLite files under ``bench/.work/tracking`` (same disk as the repository;
removed at the end unless ``--keep``), in this one process, on the same machine:

1. single calls: ``--single`` ``dsops.log_metric`` calls in a loop inside
   ``dsops.start_run``, timed until the values are durable (the loop, then ``end()``: the
   buffered values and the end of the run committed in one transaction), vs
   ``mlflow.log_metric`` in ``mlflow.start_run`` (each call is committed; the end of run
   is timed too). MLflow commits a transaction per call, so only ``--mlflow-single`` of
   its calls are timed and the time is scaled linearly to ``--single`` (the output says
   so). Target: dsops ≥ 1,000× MLflow's rate. ``start_run`` itself is untimed for both,
   and reported (dsops records the git commit and dirtiness and the package set).
2. batches: ``--values`` values, ``--batch`` per call (10 metrics × 100 steps a batch),
   ``TrackingService.log_metrics`` (one transaction a batch, durable on return) vs
   ``MlflowClient.log_batch``. The SDK's buffered ``dsops.log_metrics`` on the same values
   is reported as well.
3. run search: ``--runs`` runs × (5 params, 5 metrics); the filter
   ``metrics.auc > 0.9 and params.model = 'lgbm'`` (about 2% of runs match), all matches
   returned with their params and metrics: ``TrackingService.list(filter=...)`` (a list of
   ``RunSummary``) vs ``mlflow.search_runs(filter_string=...)`` (a DataFrame); both results
   are checked to hold the 5 params and 5 metrics of every match. One untimed warm-up each,
   then ``--search-reps`` searches of each tool, alternating dsops and MLflow (so both
   are timed under the same load of the machine); the medians are compared. MLflow's runs
   are created with ``create_run`` + ``log_batch``; dsops's by one bulk insert into its
   store tables, as the service leaves them (the service's ``start_run`` records the git
   state and the package list of each run, which would take most of an hour for 10,000);
   both creation times are reported, and the service's per-run cost is measured on a few
   runs. Target: dsops ≥ 20×.

Times are wall-clock; each case also records the thread's CPU time (``cpu_ratio``), which
moves less with the load of a shared machine. Results: a table on stdout and
``bench/results/tracking.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import platform
import random
import shutil
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from data_add import contention, save_results, src_digest

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / "bench" / ".work" / "tracking"
RESULTS = REPO / "bench" / "results" / "tracking.json"
FILTER = "metrics.auc > 0.9 and params.model = 'lgbm'"
MODELS = ("lgbm", "xgb", "rf", "logreg", "svm")
TARGETS = {"single": 1000.0, "search": 20.0}


# --- machine ------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    from importlib.metadata import version

    mem_kib = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "mem_gib": round(mem_kib / (1 << 20), 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "dsops": version("dsops"),
        "mlflow": version("mlflow"),
        "sqlalchemy": version("sqlalchemy"),
        "sqlite": __import__("sqlite3").sqlite_version,
        "src_digest": src_digest(),
        "contention_at_start": contention(),
    }


# --- set-up --------------------------------------------------------------------------------


def dsops_workspace(name: str) -> Any:
    from dsops.workspace import Workspace

    return Workspace.init(WORK / name, project="bench", identity="bench@example.com")


def mlflow_store(name: str) -> tuple[Any, str]:
    """A fresh MLflow SQLite store and an experiment in it (migrations run here, untimed)."""
    import mlflow

    logging.getLogger("mlflow").setLevel(logging.WARNING)  # MLflow sets INFO on import
    mlflow.set_tracking_uri(f"sqlite:///{WORK / name}.db")
    experiment_id = mlflow.create_experiment(
        name, artifact_location=(WORK / f"{name}-artifacts").as_uri())
    mlflow.set_experiment(experiment_id=experiment_id)
    return mlflow, experiment_id


# --- 1. single calls -------------------------------------------------------------------------


def bench_single(n: int, mlflow_n: int) -> dict[str, Any]:
    import dsops
    from dsops.tracking.service import TrackingService

    ws = dsops_workspace("single")
    values = [1.0 / (i + 1) for i in range(n)]
    t0 = time.perf_counter()
    run = dsops.start_run("single", workspace=ws)  # untimed, as MLflow's start_run
    start_s = time.perf_counter() - t0
    log_metric = dsops.log_metric
    t0, c0 = time.perf_counter(), time.thread_time()
    for v in values:
        log_metric("loss", v)
    loop_s = time.perf_counter() - t0
    run.end()  # the buffered values and the end of the run, committed: now durable
    dsops_s, dsops_cpu_s = time.perf_counter() - t0, time.thread_time() - c0
    stored = len(TrackingService(ws).metric_history(run.id, "loss"))
    assert stored == n, f"dsops stored {stored} of {n} values"
    ws.close()

    mlflow, _ = mlflow_store("single")
    mlflow_n = min(mlflow_n, n)
    t0 = time.perf_counter()
    with mlflow.start_run() as mrun:
        mlflow_start_s = time.perf_counter() - t0
        t0, c0 = time.perf_counter(), time.thread_time()
        for i, v in enumerate(values[:mlflow_n]):
            mlflow.log_metric("loss", v, step=i)
    mlflow_measured_s = time.perf_counter() - t0  # includes end_run
    mlflow_cpu_s = (time.thread_time() - c0) * n / mlflow_n
    history = mlflow.MlflowClient().get_metric_history(mrun.info.run_id, "loss")
    assert len(history) == mlflow_n, f"MLflow stored {len(history)} of {mlflow_n} values"
    mlflow_s = mlflow_measured_s * n / mlflow_n
    return {
        "calls": n, "dsops_s": dsops_s, "dsops_loop_s": loop_s,
        "dsops_flush_and_end_s": dsops_s - loop_s, "dsops_us_per_call": loop_s / n * 1e6,
        "dsops_cpu_s": dsops_cpu_s, "dsops_start_run_s": start_s,
        "mlflow_calls_timed": mlflow_n, "mlflow_measured_s": mlflow_measured_s,
        "mlflow_s": mlflow_s, "mlflow_extrapolated": mlflow_n < n, "mlflow_cpu_s": mlflow_cpu_s,
        "mlflow_start_run_s": mlflow_start_s,
        "mlflow_calls_per_s": mlflow_n / mlflow_measured_s, "dsops_calls_per_s": n / dsops_s,
        "ratio": mlflow_s / dsops_s, "cpu_ratio": mlflow_cpu_s / dsops_cpu_s,
    }


# --- 2. batches ---------------------------------------------------------------------------


def batches(values: int, batch: int) -> list[list[tuple[str, float, int]]]:
    """``values`` (key, value, step) rows: 10 metrics, ``batch // 10`` steps a batch."""
    rng = random.Random(2)
    per_key = batch // 10
    out = []
    for b in range(values // batch):
        out.append([(f"m{k}", rng.random(), b * per_key + s)
                    for s in range(per_key) for k in range(10)])
    return out


def bench_batches(values: int, batch: int) -> dict[str, Any]:
    from datetime import UTC, datetime

    import dsops
    from dsops.tracking.service import TrackingService

    data = batches(values, batch)
    ws = dsops_workspace("batch")
    svc = TrackingService(ws)
    run_id = svc.start_run("batch").id
    now = datetime.now(UTC)
    t0 = time.perf_counter()
    for rows in data:
        svc.log_metrics(run_id, [(k, v, s, now) for k, v, s in rows])
    dsops_s = time.perf_counter() - t0
    svc.end_run(run_id)
    assert len(svc.metric_history(run_id, "m0")) == values // 10

    # The SDK on the same values: dsops.log_metrics({10 metrics}, step) per step, buffered.
    run = dsops.start_run("batch-sdk", workspace=ws)
    t0 = time.perf_counter()
    for rows in data:
        for i in range(0, len(rows), 10):
            dsops.log_metrics({k: v for k, v, _ in rows[i:i + 10]}, step=rows[i][2])
    sdk_loop_s = time.perf_counter() - t0
    run.end()
    sdk_s = time.perf_counter() - t0
    assert len(svc.metric_history(run.id, "m0")) == values // 10
    ws.close()

    mlflow, _ = mlflow_store("batch")
    from mlflow.entities import Metric

    client = mlflow.MlflowClient()
    with mlflow.start_run() as mrun:
        ts = int(time.time() * 1000)
        t0 = time.perf_counter()
        for rows in data:
            client.log_batch(mrun.info.run_id, metrics=[Metric(k, v, ts, s) for k, v, s in rows])
        mlflow_s = time.perf_counter() - t0
    assert len(client.get_metric_history(mrun.info.run_id, "m0")) == values // 10
    return {
        "values": values, "batch": batch, "dsops_s": dsops_s, "dsops_sdk_s": sdk_s,
        "dsops_sdk_loop_s": sdk_loop_s, "mlflow_s": mlflow_s,
        "dsops_values_per_s": values / dsops_s, "dsops_sdk_values_per_s": values / sdk_s,
        "mlflow_values_per_s": values / mlflow_s, "ratio": mlflow_s / dsops_s,
        "ratio_sdk": mlflow_s / sdk_s,
    }


# --- 3. run search ----------------------------------------------------------------------


def run_values(n: int) -> list[tuple[dict[str, str], dict[str, float]]]:
    rng = random.Random(3)
    out = []
    for _ in range(n):
        params = {"model": rng.choice(MODELS), "lr": f"{rng.choice((0.01, 0.03, 0.1, 0.3))}",
                  "depth": str(rng.randint(2, 12)), "n_estimators": str(rng.choice((100, 300))),
                  "seed": str(rng.randint(0, 10_000))}
        metrics = {"auc": rng.random(), "acc": rng.random(), "f1": rng.random(),
                   "loss": rng.random(), "precision": rng.random()}
        out.append((params, metrics))
    return out


def create_dsops_runs(ws: Any, runs: list[tuple[dict[str, str], dict[str, float]]]) -> float:
    """Bulk-insert finished runs into the store tables, as the service would leave them."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import insert

    from dsops.core.ids import new_id
    from dsops.store.models import Run, RunLatestMetric, RunMetric, RunParam, RunValues
    from dsops.tracking.environment import environment_lock
    from dsops.tracking.run_values import encode

    env = environment_lock()  # every run records the package set: keep the rows that big
    start = datetime.now(UTC) - timedelta(days=1)
    t0 = time.perf_counter()
    rows: dict[str, list[dict[str, Any]]] = {"runs": [], "params": [], "latest": [], "history": [],
                                             "values": []}
    for i, (params, metrics) in enumerate(runs):
        run_id = new_id()
        at = start + timedelta(seconds=i)
        rows["runs"].append({"id": run_id, "name": f"run-{i}", "kind": "manual",
                             "status": "finished", "created_by": "bench@example.com",
                             "started_at": at, "ended_at": at + timedelta(seconds=1),
                             "environment": env})
        for key, value in params.items():
            number = float(value) if key != "model" else None
            rows["params"].append({"run_id": run_id, "key": key, "value": value,
                                   "number": number})
        for key, value in metrics.items():
            rows["latest"].append({"run_id": run_id, "key": key, "value": value, "step": 0})
            rows["history"].append({"run_id": run_id, "key": key, "value": value, "step": 0,
                                    "at": at})
        rows["values"].append({"run_id": run_id, **encode(params, metrics)})
    with ws.store.transaction() as session:
        session.execute(insert(Run), rows["runs"])
        session.execute(insert(RunParam), rows["params"])
        session.execute(insert(RunLatestMetric), rows["latest"])
        session.execute(insert(RunMetric), rows["history"])
        session.execute(insert(RunValues), rows["values"])
    return time.perf_counter() - t0


def service_run_cost(ws: Any, runs: list[tuple[dict[str, str], dict[str, float]]]) -> float:
    """Seconds per run through the service API (start with params, log metrics, end)."""
    from datetime import UTC, datetime

    from dsops.tracking.service import TrackingService

    svc = TrackingService(ws)
    t0 = time.perf_counter()
    for params, metrics in runs:
        run_id = svc.start_run("service-run", params=dict(params)).id
        svc.log_metrics(run_id, [(k, v, 0, datetime.now(UTC)) for k, v in metrics.items()])
        svc.end_run(run_id)
    return (time.perf_counter() - t0) / len(runs)


def create_mlflow_runs(runs: list[tuple[dict[str, str], dict[str, float]]],
                       progress_every: int) -> tuple[float, str]:
    mlflow, experiment_id = mlflow_store("search")
    from mlflow.entities import Metric, Param

    client = mlflow.MlflowClient()
    ts = int(time.time() * 1000)
    t0 = time.perf_counter()
    for i, (params, metrics) in enumerate(runs):
        run = client.create_run(experiment_id, run_name=f"run-{i}")
        client.log_batch(run.info.run_id,
                         metrics=[Metric(k, v, ts, 0) for k, v in metrics.items()],
                         params=[Param(k, v) for k, v in params.items()])
        if progress_every and (i + 1) % progress_every == 0:
            print(f"      MLflow: {i + 1} runs created, {time.perf_counter() - t0:.0f} s",
                  flush=True)
    return time.perf_counter() - t0, experiment_id


def bench_search(n: int, reps: int) -> dict[str, Any]:
    from dsops.tracking.service import TrackingService

    runs = run_values(n)
    expected = sum(1 for p, m in runs if m["auc"] > 0.9 and p["model"] == "lgbm")

    per_run_ws = dsops_workspace("service-runs")
    per_run_s = service_run_cost(per_run_ws, runs[:20])
    per_run_ws.close()
    ws = dsops_workspace("search")
    dsops_create_s = create_dsops_runs(ws, runs)
    svc = TrackingService(ws)
    print(f"      creating {n} MLflow runs (create_run + log_batch each)", flush=True)
    mlflow_create_s, experiment_id = create_mlflow_runs(runs, progress_every=max(n // 5, 1))
    import mlflow

    def dsops_search() -> Any:
        return svc.list(filter=FILTER, limit=n)

    def mlflow_search() -> Any:
        return mlflow.search_runs(experiment_ids=[experiment_id], filter_string=FILTER,
                                  max_results=n)

    listed, frame = dsops_search(), mlflow_search()  # warm-ups
    assert len(listed) == expected, f"dsops found {len(listed)} runs, expected {expected}"
    assert all(len(r.params) == 5 and len(r.metrics) == 5 for r in listed)
    assert len(frame) == expected, f"MLflow found {len(frame)} runs, expected {expected}"
    assert sum(c.startswith(("params.", "metrics.")) for c in frame.columns) == 10
    # Alternately, so that both tools' times are taken under the same load of the machine.
    times: dict[str, list[float]] = {"dsops": [], "mlflow": [], "dsops_cpu": [], "mlflow_cpu": []}
    for _ in range(reps):
        for tool, search in (("dsops", dsops_search), ("mlflow", mlflow_search)):
            t0, c0 = time.perf_counter(), time.thread_time()
            search()
            times[tool].append(time.perf_counter() - t0)
            times[f"{tool}_cpu"].append(time.thread_time() - c0)
    ws.close()
    dsops_s, mlflow_s = statistics.median(times["dsops"]), statistics.median(times["mlflow"])
    dsops_cpu_s = statistics.median(times["dsops_cpu"])
    mlflow_cpu_s = statistics.median(times["mlflow_cpu"])
    return {
        "runs": n, "filter": FILTER, "matches": expected, "reps": reps,
        "dsops_s": dsops_s, "dsops_times_s": times["dsops"], "mlflow_s": mlflow_s,
        "mlflow_times_s": times["mlflow"], "ratio": mlflow_s / dsops_s,
        "dsops_cpu_s": dsops_cpu_s, "mlflow_cpu_s": mlflow_cpu_s,
        "cpu_ratio": mlflow_cpu_s / dsops_cpu_s,
        "dsops_create_s": dsops_create_s, "dsops_create_method": "bulk insert into store tables",
        "dsops_service_s_per_run": per_run_s, "mlflow_create_s": mlflow_create_s,
        "mlflow_create_method": "create_run + log_batch per run",
    }


# --- main ---------------------------------------------------------------------------------


def quiet_mlflow() -> None:
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    for name in ("mlflow", "alembic", "sqlalchemy"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore")


def print_table(rows: list[dict[str, Any]]) -> None:
    header = ("case", "dsops s", "MLflow s", "ratio", "target", "result")
    lines = [(r["case"], f"{r['dsops_s']:.4f}", f"{r['mlflow_s']:.3f}", f"{r['ratio']:,.1f}×",
              f"≥ {r['target']:,g}×" if r["target"] else "—",
              ("PASS" if r["pass"] else "FAIL") if r["target"] else "—") for r in rows]
    widths = [max(len(str(x[i])) for x in [header, *lines]) for i in range(len(header))]
    for line in [header, *lines]:
        print("  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                        for i, (c, w) in enumerate(zip(line, widths, strict=True))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--single", type=int, default=10_000, help="single log_metric calls")
    parser.add_argument("--mlflow-single", type=int, default=1_000,
                        help="MLflow single calls actually timed (scaled to --single)")
    parser.add_argument("--values", type=int, default=100_000, help="values logged in batches")
    parser.add_argument("--batch", type=int, default=1_000, help="values per batch")
    parser.add_argument("--runs", type=int, default=10_000, help="runs for the search case")
    parser.add_argument("--search-reps", type=int, default=11, help="timed searches per tool")
    parser.add_argument("--json", type=Path, default=RESULTS, help="where to write results")
    parser.add_argument("--keep", action="store_true", help="keep bench/.work/tracking")
    args = parser.parse_args()

    os.environ.setdefault("DSOPS_USER", "bench@example.com")
    for name in ("DSOPS_STORE_URL", "DSOPS_OBJECTS_URL", "DSOPS_URL", "DSOPS_RUN_ID"):
        os.environ.pop(name, None)
    quiet_mlflow()
    if WORK.exists():
        shutil.rmtree(WORK)
    WORK.mkdir(parents=True)
    started = time.perf_counter()
    try:
        info = machine()
        print(f"machine: {info['cpus']} CPUs, {info['mem_gib']} GiB, Python {info['python']}, "
              f"dsops {info['dsops']}, MLflow {info['mlflow']}, SQLite {info['sqlite']}; "
              f"{info['contention_at_start']}", flush=True)
        print(f"[1/3] {args.single:,} single log_metric calls "
              f"(MLflow: {min(args.mlflow_single, args.single):,} timed)", flush=True)
        single = bench_single(args.single, args.mlflow_single)
        print(f"[2/3] {args.values:,} values in batches of {args.batch:,}", flush=True)
        batch = bench_batches(args.values, args.batch)
        print(f"[3/3] search over {args.runs:,} runs × (5 params, 5 metrics)", flush=True)
        search = bench_search(args.runs, args.search_reps)
    finally:
        if not args.keep:
            shutil.rmtree(WORK, ignore_errors=True)
    ended = contention()

    rows = [
        {"case": f"{args.single:,} log_metric calls, durable", "key": "single",
         "dsops_s": single["dsops_s"], "mlflow_s": single["mlflow_s"], "ratio": single["ratio"]},
        {"case": f"{args.values:,} values, batches of {args.batch:,} (service)", "key": "batch",
         "dsops_s": batch["dsops_s"], "mlflow_s": batch["mlflow_s"], "ratio": batch["ratio"]},
        {"case": f"{args.values:,} values, SDK log_metrics (buffered)", "key": "batch_sdk",
         "dsops_s": batch["dsops_sdk_s"], "mlflow_s": batch["mlflow_s"],
         "ratio": batch["ratio_sdk"]},
        {"case": f"search {args.runs:,} runs, {search['matches']} matches", "key": "search",
         "dsops_s": search["dsops_s"], "mlflow_s": search["mlflow_s"], "ratio": search["ratio"]},
    ]
    for r in rows:
        r["target"] = TARGETS.get(r["key"])
        r["pass"] = r["target"] is None or r["ratio"] >= r["target"]

    print()
    print_table(rows)
    print("(ratio: MLflow seconds ÷ dsops seconds)")
    if single["mlflow_extrapolated"]:
        print(f"MLflow single calls: {single['mlflow_calls_timed']:,} timed "
              f"({single['mlflow_measured_s']:.2f} s, {single['mlflow_calls_per_s']:.0f} calls/s), "
              f"scaled linearly to {args.single:,}")
    print(f"dsops single calls: loop {single['dsops_loop_s'] * 1e3:.1f} ms "
          f"({single['dsops_us_per_call']:.2f} µs a call), final flush + end "
          f"{single['dsops_flush_and_end_s'] * 1e3:.0f} ms; "
          f"{single['dsops_calls_per_s']:,.0f} durable calls/s; CPU ratio "
          f"{single['cpu_ratio']:,.0f}×; start_run: dsops "
          f"{single['dsops_start_run_s'] * 1e3:.0f} ms, MLflow "
          f"{single['mlflow_start_run_s'] * 1e3:.0f} ms")
    print(f"batches: dsops {batch['dsops_values_per_s']:,.0f} values/s (service), "
          f"{batch['dsops_sdk_values_per_s']:,.0f} values/s (SDK), "
          f"MLflow {batch['mlflow_values_per_s']:,.0f} values/s")
    print(f"search: dsops median {search['dsops_s'] * 1e3:.1f} ms, MLflow median "
          f"{search['mlflow_s'] * 1e3:.1f} ms (CPU {search['dsops_cpu_s'] * 1e3:.1f} vs "
          f"{search['mlflow_cpu_s'] * 1e3:.1f} ms: {search['cpu_ratio']:.1f}×); "
          f"creating the runs: dsops "
          f"{search['dsops_create_s']:.1f} s ({search['dsops_create_method']}; service API "
          f"{search['dsops_service_s_per_run'] * 1e3:.0f} ms a run), MLflow "
          f"{search['mlflow_create_s']:.1f} s ({search['mlflow_create_method']})")
    print(f"contention: start {info['contention_at_start']}, end {ended}")

    save_results(
        args.json, "bench/tracking.py", info=info,
        params=vars(args) | {"json": str(args.json)},
        started=started, ended=ended,
        rows=rows,
        single=single,
        batch=batch,
        search=search,
    )


if __name__ == "__main__":
    main()
