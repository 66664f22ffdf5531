"""Benchmark: ``dsops data add`` / ``dsops status`` side by side with DVC 3, plus hashing.

Run from the repository root with the venv's ``bin`` on PATH (``make bench`` does this):

    python bench/data_add.py [--size-mb 200] [--files 10000] [--reps 3] [--status-reps 5]

Every case runs dsops and DVC on the same generated input, each in a fresh project under
``bench/.work`` (same disk as the repository; removed at the end):

1. hashing: sequential read speed of a 200 MB file (8 MiB reads) vs
   ``dsops.core.hashing.hash_file`` on the same file, cold-ish (fsync, then
   ``posix_fadvise(DONTNEED)`` before every pass; interleaved, median of ``--hash-reps``)
   and warm. Target: hashing ≥ 70% of read.
2. ``dsops data add big.bin --name big`` vs ``dvc add big.bin`` (200 MB of random bytes).
   Target: dsops ≥ 3× faster.
3. ``dsops data add files --name files`` vs ``dvc add files`` (10,000 × 1 KB files).
   Target: ≥ 10× faster.
4. no-op ``dsops status`` vs ``dvc status`` in the projects of 2 and 3, after the dataset is
   declared in ``dsops.yaml``. Target: ≥ 10× faster.
5. the import floor: ``python -c "import dsops.data.service"`` (what ``data add`` imports
   before any work) and its parts, median of ``--status-reps``, printed next to the time
   each add target allows (DVC's median ÷ the target).

Commands are timed as subprocesses (wall clock, output captured): the median of ``--reps``
fresh repetitions for adds (a new project each time, tool order alternating), the median of
``--status-reps`` runs for status after one untimed warm-up run of each tool. Before each
timed add, the input has just been copied into the project and ``sync`` has run, so it is
in the page cache and no write-back is pending for either tool.

Results: a table on stdout and ``bench/results/data_add.json``.
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
WORK = REPO / "bench" / ".work"
RESULTS = REPO / "bench" / "results" / "data_add.json"
MIB = 1 << 20
READ_BLOCK = 8 * MIB

TARGETS = {
    "hash_vs_read_cold": 0.70,
    "add_big_file": 3.0,
    "add_many_files": 10.0,
    "status_big_file": 10.0,
    "status_many_files": 10.0,
}


# --- helpers ------------------------------------------------------------------------------


def tool_env() -> dict[str, str]:
    """The environment for both tools: the venv's bin first, no DVC telemetry or updater,
    and Python bytecode caches as after a regular ``pip install`` (which compiles them):
    with PYTHONDONTWRITEBYTECODE set, an editable dsops would recompile its modules on
    every call (+0.1 s for ``data add`` here) while DVC's were compiled at install."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    bindir = str(Path(sys.executable).parent)  # the venv's bin (not resolved: keep the venv)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    env["DVC_NO_ANALYTICS"] = "1"
    env["DVC_SITE_CACHE_DIR"] = str(WORK / "dvc-site-cache")
    env.setdefault("GIT_AUTHOR_NAME", "bench")
    env.setdefault("GIT_AUTHOR_EMAIL", "bench@example.com")
    env.setdefault("GIT_COMMITTER_NAME", "bench")
    env.setdefault("GIT_COMMITTER_EMAIL", "bench@example.com")
    return env


ENV: dict[str, str] = {}


def which(name: str) -> str:
    found = shutil.which(name, path=ENV["PATH"])
    if found is None:
        sys.exit(f"bench: '{name}' not found on PATH; run `pip install -e '.[dev,bench]'` "
                 "in the venv first (or `make bench`)")
    return found


def run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run a setup or timed command; a failure stops the benchmark with its output."""
    proc = subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"bench: `{' '.join(cmd)}` failed in {cwd} (exit {proc.returncode}):\n"
                 f"{proc.stdout}\n{proc.stderr}")
    return proc


def timed(cmd: list[str], cwd: Path) -> tuple[float, subprocess.CompletedProcess[str]]:
    t0 = time.perf_counter()
    proc = run(cmd, cwd)
    return time.perf_counter() - t0, proc


def sync() -> None:
    os.sync()


def write_random_file(path: Path, size: int) -> None:
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 4 * MIB)
            f.write(os.urandom(n))
            left -= n
        f.flush()
        os.fsync(f.fileno())


def drop_cache(path: Path) -> bool:
    """Ask the kernel to evict ``path`` from the page cache (after fsync). True if possible."""
    if not hasattr(os, "posix_fadvise"):
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    return True


def resident_fraction(path: Path) -> float | None:
    """Share of the file's pages in the page cache, via util-linux ``fincore`` if present."""
    fincore = shutil.which("fincore")
    if fincore is None:
        return None
    proc = subprocess.run([fincore, "--bytes", "--noheadings", "--output", "RES,SIZE",
                           str(path)], capture_output=True, text=True)
    try:
        res, size = (int(x) for x in proc.stdout.split())
    except ValueError:
        return None
    return res / size if size else None


def read_file(path: Path) -> int:
    buf = bytearray(READ_BLOCK)
    view = memoryview(buf)
    total = 0
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(view):
            total += n
    return total


def copy_tree(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst)


def git_dvc_init(project: Path) -> None:
    run(["git", "init", "-q"], project)
    run([which("dvc"), "init", "-q"], project)
    run([which("dvc"), "config", "core.analytics", "false"], project)


def dsops_init(project: Path) -> None:
    run(["git", "init", "-q"], project)
    run([which("dsops"), "init"], project)


def declare(project: Path, name: str, rel: str) -> None:
    """Declare ``name`` with ``path: rel`` in the project's dsops.yaml."""
    import yaml

    config_path = project / "dsops.yaml"
    config = yaml.safe_load(config_path.read_text()) or {}
    config["datasets"] = {name: {"path": rel}}
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))


# --- cases --------------------------------------------------------------------------------


def bench_hashing(big: Path, reps: int) -> dict[str, Any]:
    """Cold-ish and warm: plain sequential read vs dsops hash_file, interleaved."""
    from dsops.core.hashing import hash_file

    size = big.stat().st_size
    cold_read: list[float] = []
    cold_hash: list[float] = []
    residency = []
    can_drop = False
    for _ in range(reps):
        for fn, out in ((read_file, cold_read), (hash_file, cold_hash)):
            can_drop = drop_cache(big)
            residency.append(resident_fraction(big))
            t0 = time.perf_counter()
            fn(big)
            out.append(time.perf_counter() - t0)
    read_file(big)  # warm it
    warm_read, warm_hash = [], []
    for _ in range(reps):
        t0 = time.perf_counter()
        read_file(big)
        warm_read.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        hash_file(big)
        warm_hash.append(time.perf_counter() - t0)
    res_known = [r for r in residency if r is not None]

    def mbps(seconds: float) -> float:
        return size / MIB / seconds

    out = {
        "size_bytes": size,
        "read_block_bytes": READ_BLOCK,
        "fadvise_dontneed": can_drop,
        "resident_after_drop_max": max(res_known) if res_known else None,
        "cold": {"read_s": cold_read, "hash_s": cold_hash},
        "warm": {"read_s": warm_read, "hash_s": warm_hash},
    }
    for mode in ("cold", "warm"):
        r = statistics.median(out[mode]["read_s"])
        h = statistics.median(out[mode]["hash_s"])
        out[mode].update(read_median_s=r, hash_median_s=h, read_mib_s=mbps(r),
                         hash_mib_s=mbps(h), hash_over_read=r / h)
    return out


# What any ``dsops data add`` imports before it does any work: the interpreter, then the
# modules of the command (SQLAlchemy ORM and the store's models, pydantic and the config).
FLOOR_IMPORTS = {
    "interpreter": "pass",
    "sqlalchemy_orm": "import sqlalchemy.orm",
    "data_add_modules": "import dsops.data.service",
}


def bench_floor(reps: int) -> dict[str, Any]:
    """Seconds to start Python and import what ``data add`` needs, doing nothing else:
    the least any ``data add`` can take on this stack, next to what the targets allow."""
    times: dict[str, list[float]] = {name: [] for name in FLOOR_IMPORTS}
    for _ in range(reps):
        for name, code in FLOOR_IMPORTS.items():
            elapsed, _ = timed([sys.executable, "-c", code], REPO)
            times[name].append(elapsed)
    return {"times_s": times,
            "median_s": {name: statistics.median(ts) for name, ts in times.items()}}


def bench_add(kind: str, make_input: Any, reps: int) -> dict[str, Any]:
    """``dsops data add`` vs ``dvc add`` on fresh copies of the same input, ``reps`` times."""
    dsops, dvc = which("dsops"), which("dvc")
    times: dict[str, list[float]] = {"dsops": [], "dvc": []}
    outputs: dict[str, str] = {}
    keep: dict[str, Path] = {}
    for i in range(reps):
        order = ("dsops", "dvc") if i % 2 == 0 else ("dvc", "dsops")
        for tool in order:
            project = WORK / f"{kind}-{tool}-{i}"
            project.mkdir(parents=True)
            (dsops_init if tool == "dsops" else git_dvc_init)(project)
            rel = make_input(project)
            sync()
            cmd = ([dsops, "data", "add", rel, "--name", kind] if tool == "dsops"
                   else [dvc, "add", "-q", rel])
            seconds, proc = timed(cmd, project)
            times[tool].append(seconds)
            outputs[tool] = (proc.stdout + proc.stderr).strip()
            if i == reps - 1:
                keep[tool] = project
            else:
                shutil.rmtree(project)
    check_stored(kind, keep)
    return {"times_s": times, "median_s": {t: statistics.median(v) for t, v in times.items()},
            "last_output": outputs, "projects": keep}


def check_stored(kind: str, projects: dict[str, Path]) -> None:
    """Both tools really stored the content (objects/cache hold at least the input bytes)."""
    def du(path: Path) -> int:
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())

    stored = {"dsops": du(projects["dsops"] / ".dsops" / "objects"),
              "dvc": du(projects["dvc"] / ".dvc" / "cache")}
    for tool, n in stored.items():
        if n == 0:
            sys.exit(f"bench: {tool} stored nothing for {kind}")


def bench_status(kind: str, rel: str, projects: dict[str, Path], reps: int) -> dict[str, Any]:
    """No-op ``dsops status`` vs ``dvc status`` (one warm-up run each, then ``reps``)."""
    dsops, dvc = which("dsops"), which("dvc")
    declare(projects["dsops"], kind, rel)
    cmds = {"dsops": [dsops, "status"], "dvc": [dvc, "status"]}
    warm = {tool: run(cmd, projects[tool]) for tool, cmd in cmds.items()}
    dsops_out, dvc_out = warm["dsops"].stdout, warm["dvc"].stdout
    if "unchanged" not in dsops_out:
        sys.exit(f"bench: dsops status is not a no-op in {projects['dsops']}:\n{dsops_out}")
    if "up to date" not in dvc_out:
        sys.exit(f"bench: dvc status is not a no-op in {projects['dvc']}:\n{dvc_out}")
    times: dict[str, list[float]] = {"dsops": [], "dvc": []}
    for i in range(reps):
        for tool in (("dsops", "dvc") if i % 2 == 0 else ("dvc", "dsops")):
            times[tool].append(timed(cmds[tool], projects[tool])[0])
    return {"times_s": times, "median_s": {t: statistics.median(v) for t, v in times.items()},
            "output": {"dsops": dsops_out.strip(), "dvc": dvc_out.strip()}}


# --- main ---------------------------------------------------------------------------------


def contention() -> dict[str, Any]:
    """Load average and I/O pressure (PSI): other work on the machine skews every figure."""
    out: dict[str, Any] = {"loadavg": [round(x, 2) for x in os.getloadavg()]}
    try:
        with open("/proc/pressure/io") as f:
            some = f.readline().split()
        out["io_pressure_some_avg60"] = float(some[2].split("=")[1])
    except (OSError, IndexError, ValueError):
        pass
    return out


def src_digest() -> str:
    """BLAKE3 of src/ (*.py): which code the figures are for, even between commits."""
    import blake3

    h = blake3.blake3()
    for path in sorted((REPO / "src").rglob("*.py")):
        h.update(path.relative_to(REPO).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def machine() -> dict[str, Any]:
    def out(cmd: list[str]) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, env=ENV).stdout.strip()
        except OSError:
            return ""

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
        "filesystem": out(["findmnt", "-n", "-o", "SOURCE,FSTYPE", "--target", str(REPO)]),
        "python": platform.python_version(),
        "dsops": version("dsops"),
        "dvc": out([which("dvc"), "--version"]),
        "blake3": version("blake3"),
        "src_digest": src_digest(),
        "contention_at_start": contention(),
    }


def save_results(path: Path, script: str, *, info: dict[str, Any], params: dict[str, Any],
                 started: float, ended: dict[str, Any], **figures: Any) -> None:
    """Write a benchmark's results as JSON: the command and machine it ran on, its
    parameters, its figures, how long it took and the machine's load at the end."""
    result = {"benchmark": script, "command": " ".join(["python", script, *sys.argv[1:]]),
              "machine": info, "params": params, **figures,
              "total_s": time.perf_counter() - started, "contention_at_end": ended}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"results: {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=200, help="size of the big file")
    parser.add_argument("--files", type=int, default=10_000, help="number of small files")
    parser.add_argument("--file-kb", type=int, default=1, help="size of each small file")
    parser.add_argument("--reps", type=int, default=3, help="fresh repetitions per add")
    parser.add_argument("--status-reps", type=int, default=5, help="runs per status")
    parser.add_argument("--hash-reps", type=int, default=5, help="passes per hashing mode")
    parser.add_argument("--json", type=Path, default=RESULTS, help="where to write results")
    parser.add_argument("--keep", action="store_true", help="keep bench/.work afterwards")
    args = parser.parse_args()

    ENV.update(tool_env())
    if WORK.exists():
        shutil.rmtree(WORK)
    WORK.mkdir(parents=True)
    started = time.perf_counter()
    try:
        info = machine()
        print(f"machine: {info['cpus']} CPUs, {info['mem_gib']} GiB, {info['filesystem']}, "
              f"Python {info['python']}, dsops {info['dsops']}, DVC {info['dvc']}; "
              f"{info['contention_at_start']}", flush=True)

        # Inputs, generated once; each project gets a fresh copy.
        src = WORK / "input"
        src.mkdir()
        big = src / "big.bin"
        write_random_file(big, args.size_mb * MIB)
        files = src / "files"
        per_dir = 1000
        for i in range(args.files):
            sub = files / f"part{i // per_dir:03d}"
            if i % per_dir == 0:
                sub.mkdir(parents=True)
            # Half text (PII-scanned by dsops), half binary: like an unstructured dataset.
            data = os.urandom(args.file_kb * 1024)
            if i % 2:
                (sub / f"doc{i:05d}.txt").write_bytes(data.hex().encode()[: len(data)])
            else:
                (sub / f"blob{i:05d}.bin").write_bytes(data)
        sync()
        # Bytecode for every module, as a regular install leaves it (see tool_env).
        run([sys.executable, "-m", "compileall", "-q", str(REPO / "src")], REPO)

        print(f"[1/4] hashing vs disk read ({args.size_mb} MB)", flush=True)
        hashing = bench_hashing(big, reps=args.hash_reps)

        def big_input(project: Path) -> str:
            shutil.copyfile(big, project / "big.bin")
            return "big.bin"

        def files_input(project: Path) -> str:
            copy_tree(files, project / "files")
            return "files"

        print(f"[2/4] data add, one {args.size_mb} MB file ×{args.reps}", flush=True)
        add_big = bench_add("big", big_input, args.reps)
        print(f"[3/4] data add, {args.files} × {args.file_kb} KB files ×{args.reps}", flush=True)
        add_many = bench_add("files", files_input, args.reps)
        print(f"[4/4] no-op status ×{args.status_reps}; import floor", flush=True)
        status_big = bench_status("big", "big.bin", add_big.pop("projects"), args.status_reps)
        status_many = bench_status("files", "files", add_many.pop("projects"),
                                   args.status_reps)
        floor = bench_floor(args.status_reps)
    finally:
        if not args.keep:
            shutil.rmtree(WORK, ignore_errors=True)

    ended = contention()
    rows = []

    def row(case: str, key: str, dsops_s: float, base_s: float, baseline: str) -> None:
        ratio = base_s / dsops_s
        rows.append({"case": case, "key": key, "dsops_s": dsops_s, "baseline_s": base_s,
                     "baseline": baseline, "ratio": ratio, "target": TARGETS[key],
                     "pass": ratio >= TARGETS[key]})

    cold, warm = hashing["cold"], hashing["warm"]
    row(f"hash_file vs plain read, {args.size_mb} MB, cold", "hash_vs_read_cold",
        cold["hash_median_s"], cold["read_median_s"], "read")
    for case, key, result in (
        (f"add 1 × {args.size_mb} MB file", "add_big_file", add_big),
        (f"add {args.files} × {args.file_kb} KB files", "add_many_files", add_many),
        (f"no-op status, {args.size_mb} MB file", "status_big_file", status_big),
        (f"no-op status, {args.files} files", "status_many_files", status_many),
    ):
        row(case, key, result["median_s"]["dsops"], result["median_s"]["dvc"], "dvc")

    print()
    print(f"hashing, {args.size_mb} MB: cold read {cold['read_mib_s']:.0f} MiB/s, "
          f"hash {cold['hash_mib_s']:.0f} MiB/s ({cold['hash_over_read']:.0%}); "
          f"warm read {warm['read_mib_s']:.0f} MiB/s, hash {warm['hash_mib_s']:.0f} MiB/s "
          f"({warm['hash_over_read']:.0%}); page-cache residency after DONTNEED: "
          f"{hashing['resident_after_drop_max']}")
    header = ("case", "dsops s", "base s", "base", "ratio", "target", "result")
    lines = [(r["case"], f"{r['dsops_s']:.3f}", f"{r['baseline_s']:.3f}", r["baseline"],
              f"{r['ratio']:.2f}×" if r["baseline"] == "dvc" else f"{r['ratio']:.0%}",
              f"≥ {r['target']:g}×" if r["baseline"] == "dvc" else f"≥ {r['target']:.0%}",
              "PASS" if r["pass"] else "FAIL") for r in rows]
    widths = [max(len(str(x[i])) for x in [header, *lines]) for i in range(len(header))]
    for line in [header, *lines]:
        print("  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                        for i, (c, w) in enumerate(zip(line, widths, strict=True))))
    print("(ratio: dvc ÷ dsops seconds; for hashing, read ÷ hash seconds = hash throughput ÷ "
          "read throughput)")
    floors = floor["median_s"]
    print(f"import floor (start Python and import, no work): interpreter "
          f"{floors['interpreter']:.3f} s, SQLAlchemy ORM {floors['sqlalchemy_orm']:.3f} s, "
          f"data add's modules {floors['data_add_modules']:.3f} s; the add targets allow "
          + ", ".join(f"{r['baseline_s'] / r['target']:.3f} s ({r['key']})"
                      for r in rows if r["key"].startswith("add_")))
    print(f"contention: start {info['contention_at_start']}, end {ended}")

    save_results(
        args.json, "bench/data_add.py", info=info,
        params={"size_mb": args.size_mb, "files": args.files, "file_kb": args.file_kb,
                "reps": args.reps, "status_reps": args.status_reps},
        started=started, ended=ended,
        rows=rows,
        hashing=hashing,
        add_big_file=add_big,
        add_many_files=add_many,
        status_big_file=status_big,
        status_many_files=status_many,
        import_floor=floor,
    )


if __name__ == "__main__":
    main()
