"""Benchmark: ``dsops.monitoring.drift.compute_drift`` side by side with Evidently's DataDriftPreset.

Run from the repository root (``make bench`` does this):

    python bench/drift.py [--rows 1000000 100000 1000] [--reps 1] [--no-evidently]

For each size, a reference and a current Parquet file of ``rows`` × 20 columns are
generated with a fixed seed under ``bench/.work/drift`` (15 numeric columns — normal,
log-normal, uniform, exponential and integer ages, three of each — and 5 string
categorical columns with 3 to 19 categories; in the current file 5 numeric columns are
shifted by half a standard deviation, the ages by 8 years). Then, each in its own
process, so each has its own peak memory:

1. dsops: ``compute_drift(ref_path, cur_path)`` in the project's venv (median of
   ``--dsops-reps`` runs).
2. Evidently 0.7: both files read with ``pandas.read_parquet``, then
   ``Report([DataDriftPreset()]).run(current, reference)``, in ``bench/.venv-evidently``
   (created here with ``pip install 'evidently==0.7.23' 'pandas<3'``: Evidently 0.7.23
   does not import with pandas 3).
3. The plain SciPy loop a user would write: read both files whole, then per column
   ``scipy.stats.wasserstein_distance`` / ``ks_2samp`` or ``jensenshannon`` /
   ``chisquare`` of the value counts, as Evidently picks them.

Each process reports the time of its work (reading and comparing, imports excluded), the
columns it found drifted and its peak RSS (``VmHWM``: ``ru_maxrss`` would also count
the parent's pages between fork and exec); the parent measures wall time (interpreter
start and imports included) and CPU time. Targets at 1,000,000 rows: dsops ≥ 50× faster
than Evidently (work time), ≤ 1/5 of its peak memory, and the same drifted columns.

Results: a table on stdout and ``bench/results/drift.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / "bench" / ".work" / "drift"
EVIDENTLY_VENV = REPO / "bench" / ".venv-evidently"
EVIDENTLY_PINS = ("evidently==0.7.23", "pandas<3")
RESULTS = REPO / "bench" / "results" / "drift.json"
SEED = 20261130
TARGETS = {"speed": 50.0, "memory": 0.2}


# --- data ---------------------------------------------------------------------------------


def generate(rows: int, directory: Path) -> tuple[Path, Path]:
    """Reference and current Parquet files (pyarrow's default writer settings)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    ref_path, cur_path = directory / f"reference-{rows}.parquet", directory / f"current-{rows}.parquet"
    if ref_path.exists() and cur_path.exists():
        return ref_path, cur_path
    directory.mkdir(parents=True, exist_ok=True)

    def table(seed: int, shifted: bool) -> pa.Table:
        rng = np.random.default_rng(seed)
        columns: dict[str, Any] = {}
        for i in range(15):
            kind = i % 5
            if kind == 0:
                values, std = rng.normal(50, 10, rows), 10.0
            elif kind == 1:
                values, std = rng.lognormal(3, 0.5, rows), 10.7
            elif kind == 2:
                values, std = rng.uniform(0, 100, rows), 28.9
            elif kind == 3:
                values, std = rng.exponential(5, rows), 5.0
            else:
                values, std = rng.integers(18, 90, rows), 20.8
            if shifted and i < 5:
                values = values + (8 if kind == 4 else 0.5 * std)
            columns[f"num_{i:02d}"] = values
        for j in range(5):
            categories = np.array([f"c{j}_{k}" for k in range(3 + 4 * j)])
            columns[f"cat_{j}"] = categories[rng.integers(0, len(categories), rows)]
        return pa.table(columns)

    pq.write_table(table(SEED, False), ref_path)
    pq.write_table(table(SEED + 1, True), cur_path)
    return ref_path, cur_path


# --- workers (run in their own processes) ----------------------------------------------------


def worker_dsops(ref: str, cur: str) -> dict[str, Any]:
    import_start = time.perf_counter()
    from dsops.monitoring.drift import compute_drift

    start = time.perf_counter()
    report = compute_drift(ref, cur)
    work = time.perf_counter() - start
    return {"import_s": start - import_start, "work_s": work,
            "drifted": sorted(report.drifted_columns),
            "columns": {c.column: {"method": c.method, "score": c.score,
                                   "error_bound": c.error_bound}
                        for c in report.columns.values()}}


def worker_evidently(ref: str, cur: str) -> dict[str, Any]:
    import_start = time.perf_counter()
    import pandas as pd
    from evidently import Report
    from evidently.presets import DataDriftPreset

    start = time.perf_counter()
    reference = pd.read_parquet(ref)
    current = pd.read_parquet(cur)
    snapshot = Report([DataDriftPreset()]).run(current, reference)
    work = time.perf_counter() - start
    p_value_methods = {"K-S p_value": True, "chi-square p_value": False, "Z-test p_value": False}
    columns, drifted = {}, []
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if not config["type"].endswith("ValueDrift"):
            continue
        method, threshold, score = config["method"], config["threshold"], metric["value"]
        if method in p_value_methods:  # Evidently: K-S drifts at p <= threshold, others p <
            hit = score <= threshold if p_value_methods[method] else score < threshold
        else:
            hit = score >= threshold
        columns[config["column"]] = {"method": method, "score": score}
        if hit:
            drifted.append(config["column"])
    return {"import_s": start - import_start, "work_s": work, "drifted": sorted(drifted),
            "columns": columns}


def worker_scipy(ref: str, cur: str) -> dict[str, Any]:
    import_start = time.perf_counter()
    import numpy as np
    import pyarrow.parquet as pq
    from scipy.spatial.distance import jensenshannon
    from scipy.stats import chisquare, ks_2samp, wasserstein_distance

    start = time.perf_counter()
    reference, current = pq.read_table(ref), pq.read_table(cur)
    drifted = []
    for name in reference.column_names:
        r = reference.column(name).to_numpy(zero_copy_only=False)
        c = current.column(name).to_numpy(zero_copy_only=False)
        small = len(r) <= 1000
        if r.dtype.kind in "if":
            if small:
                hit = ks_2samp(r, c).pvalue <= 0.05
            else:
                hit = wasserstein_distance(r, c) / max(float(np.std(r)), 0.001) >= 0.1
        else:
            keys = sorted(set(r.tolist()) | set(c.tolist()))
            rc = np.array([np.count_nonzero(r == k) for k in keys], dtype=float)
            cc = np.array([np.count_nonzero(c == k) for k in keys], dtype=float)
            if small:
                hit = chisquare(cc, rc * cc.sum() / rc.sum()).pvalue < 0.05
            else:
                hit = jensenshannon(rc, cc) >= 0.1
        if hit:
            drifted.append(name)
    return {"import_s": start - import_start, "work_s": time.perf_counter() - start,
            "drifted": sorted(drifted), "columns": {}}


WORKERS = {"dsops": worker_dsops, "evidently": worker_evidently, "scipy": worker_scipy}


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM), in MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# --- measuring ------------------------------------------------------------------------------


def run_worker(python: Path, tool: str, ref: Path, cur: Path) -> dict[str, Any]:
    """Run one worker process; wall time, CPU time and peak RSS of that process alone."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    start = time.perf_counter()
    proc = subprocess.Popen([str(python), str(Path(__file__).resolve()), "--worker", tool,
                             str(ref), str(cur)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env)
    assert proc.stdout is not None and proc.stderr is not None
    out, err = proc.stdout.read(), proc.stderr.read()  # small outputs: no deadlock
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{tool} worker failed ({proc.returncode}):\n{err.decode()[-3000:]}")
    result = json.loads(out.decode().strip().splitlines()[-1])
    # ru_maxrss of a child also counts the parent's pages it had between fork and exec;
    # the child's own VmHWM (reported by the worker) does not.
    return result | {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime,
                     "ru_maxrss_mb": usage.ru_maxrss / 1024}


def evidently_python() -> tuple[Path | None, str]:
    """The Evidently venv's interpreter (created on first use), or None and the reason."""
    python = EVIDENTLY_VENV / "bin" / "python"
    try:
        if not python.exists():
            base = getattr(sys, "_base_executable", sys.executable)
            subprocess.run([base, "-m", "venv", str(EVIDENTLY_VENV)], check=True,
                           capture_output=True, text=True)
            (EVIDENTLY_VENV / ".gitignore").write_text("*\n")
        check = subprocess.run([str(python), "-c", "import evidently, pandas"], capture_output=True)
        if check.returncode != 0:
            install = subprocess.run([str(python), "-m", "pip", "install", "--quiet", *EVIDENTLY_PINS],
                                     capture_output=True, text=True)
            if install.returncode != 0:
                return None, f"pip install {' '.join(EVIDENTLY_PINS)} failed: " \
                             f"{install.stderr.strip()[-1500:]}"
        versions = subprocess.run(
            [str(python), "-c", "import importlib.metadata as m; print(' '.join(f'{p} '"
             "+ m.version(p) for p in ('evidently', 'pandas', 'numpy', 'scipy')))"],
            capture_output=True, text=True, check=True).stdout.strip()
        return python, versions
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        return None, f"cannot create {EVIDENTLY_VENV}: {str(detail).strip()[-1500:]}"


def median_run(python: Path, tool: str, ref: Path, cur: Path, reps: int) -> dict[str, Any]:
    runs = [run_worker(python, tool, ref, cur) for _ in range(reps)]
    if len(runs) == 1:
        return runs[0]
    best = sorted(runs, key=lambda r: r["work_s"])[len(runs) // 2]
    return best | {"work_s_all": [r["work_s"] for r in runs],
                   "work_s_median": statistics.median(r["work_s"] for r in runs)}


# --- report ---------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    from importlib.metadata import version

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from data_add import contention, src_digest

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
        "numpy": version("numpy"),
        "pyarrow": version("pyarrow"),
        "scipy": version("scipy"),
        "src_digest": src_digest(),
        "contention_at_start": contention(),
    }


def print_table(rows: list[dict[str, Any]]) -> None:
    header = ("rows", "tool", "work s", "wall s", "cpu s", "peak MB", "drifted", "speed ×",
              "memory", "same set", "result")
    lines = []
    for r in rows:
        lines.append((f"{r['rows']:,}", r["tool"], f"{r['work_s']:.3f}", f"{r['wall_s']:.2f}",
                      f"{r['cpu_s']:.2f}", f"{r['peak_rss_mb']:.0f}", str(len(r["drifted"])),
                      "" if r.get("speed") is None else f"{r['speed']:,.1f}×",
                      "" if r.get("memory") is None else f"{r['memory']:.1%}",
                      "" if r.get("same") is None else ("yes" if r["same"] else "NO"),
                      r.get("result", "")))
    widths = [max(len(str(x[i])) for x in [header, *lines]) for i in range(len(header))]
    for line in [header, *lines]:
        print("  ".join(str(c).ljust(w) if i < 2 else str(c).rjust(w)
                        for i, (c, w) in enumerate(zip(line, widths, strict=True))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 100_000, 1_000])
    parser.add_argument("--reps", type=int, default=1,
                        help="runs of Evidently and the SciPy loop per size (median)")
    parser.add_argument("--dsops-reps", type=int, default=3, help="runs of dsops per size (median)")
    parser.add_argument("--no-evidently", action="store_true", help="skip Evidently")
    parser.add_argument("--no-scipy", action="store_true", help="skip the SciPy loop")
    parser.add_argument("--json", type=Path, default=RESULTS, help="where to write results")
    parser.add_argument("--keep", action="store_true", help="keep bench/.work/drift")
    parser.add_argument("--worker", nargs=3, metavar=("TOOL", "REF", "CUR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        tool, ref, cur = args.worker
        if tool == "generate":
            generate(int(ref), Path(cur))
            return
        print(json.dumps(WORKERS[tool](ref, cur) | {"peak_rss_mb": peak_rss_mb()}))
        return

    started = time.perf_counter()
    info = machine()
    ev_python, ev_versions = (None, "skipped (--no-evidently)") if args.no_evidently \
        else evidently_python()
    info["evidently_env"] = ev_versions
    print(f"machine: {info['cpus']} CPUs, {info['mem_gib']} GiB, Python {info['python']}, "
          f"dsops {info['dsops']}, numpy {info['numpy']}, pyarrow {info['pyarrow']}; "
          f"Evidently env: {ev_versions}; {info['contention_at_start']}", flush=True)
    rows: list[dict[str, Any]] = []
    try:
        for n in args.rows:
            # In a child: the parent stays small, and no child inherits its pages.
            subprocess.run([sys.executable, __file__, "--worker", "generate", str(n), str(WORK)],
                           check=True)
            ref, cur = generate(n, WORK)  # the paths (the files exist now)
            print(f"[{n:,} rows × 20 columns] {ref.stat().st_size / 2**20:.0f} MB + "
                  f"{cur.stat().st_size / 2**20:.0f} MB Parquet", flush=True)
            results = {"dsops": median_run(Path(sys.executable), "dsops", ref, cur, args.dsops_reps)}
            print(f"  dsops {results['dsops']['work_s']:.3f} s", flush=True)
            if ev_python is not None:
                results["evidently"] = median_run(ev_python, "evidently", ref, cur, args.reps)
                print(f"  Evidently {results['evidently']['work_s']:.1f} s", flush=True)
            if not args.no_scipy:
                results["scipy"] = median_run(Path(sys.executable), "scipy", ref, cur, args.reps)
                print(f"  SciPy loop {results['scipy']['work_s']:.1f} s", flush=True)
            ev = results.get("evidently")
            for tool, r in results.items():
                row = {"rows": n, "tool": tool, **r}
                if tool == "dsops" and ev is not None:
                    row["speed"] = ev["work_s"] / r["work_s"]
                    row["speed_wall"] = ev["wall_s"] / r["wall_s"]
                    row["memory"] = r["peak_rss_mb"] / ev["peak_rss_mb"]
                    row["same"] = r["drifted"] == ev["drifted"]
                    if n >= 1_000_000:
                        row["pass"] = (row["speed"] >= TARGETS["speed"] and
                                       row["memory"] <= TARGETS["memory"] and row["same"])
                        row["result"] = "PASS" if row["pass"] else "FAIL"
                elif tool == "scipy":
                    row["speed"] = r["work_s"] / results["dsops"]["work_s"]
                    row["same"] = r["drifted"] == results["dsops"]["drifted"]
                rows.append(row)
    finally:
        if not args.keep:
            shutil.rmtree(WORK, ignore_errors=True)
    from data_add import contention, save_results

    ended = contention()
    print()
    print_table(rows)
    print("(work: reading both files and comparing, imports excluded; wall: the whole process; "
          "speed: Evidently work ÷ dsops work (SciPy row: SciPy ÷ dsops); memory: dsops peak "
          "RSS ÷ Evidently's; same set: drifted columns equal to Evidently's (SciPy row: to "
          "dsops's))")
    imports = {(r["rows"], r["tool"]): r["import_s"] for r in rows}
    for r in rows:
        if r["tool"] == "dsops" and r.get("speed_wall"):
            print(f"{r['rows']:,} rows: whole-process ratio {r['speed_wall']:.1f}× (imports: "
                  f"Evidently {imports[(r['rows'], 'evidently')]:.1f} s, dsops {r['import_s']:.2f} s)")
    if ev_python is None:
        print(f"Evidently not run: {ev_versions}")
    print(f"contention: start {info['contention_at_start']}, end {ended}")
    save_results(
        args.json, "bench/drift.py", info=info,
        params=vars(args) | {"json": str(args.json)},
        started=started, ended=ended,
        targets=TARGETS,
        rows=rows,
    )


if __name__ == "__main__":
    main()
