"""Drift and data quality: values against SciPy's own functions, detection of known shifts,
streaming, data quality figures, and the ``dsops drift`` command."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import chisquare, ks_2samp, wasserstein_distance

from dsops.core.errors import NotFound, UsageError
from dsops.monitoring.drift import build_reference, compute_drift
from dsops.monitoring.stats import psi


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def shares_table(counts: dict[str, int], seed: int = 0) -> pa.Table:
    values = np.repeat(list(counts), list(counts.values()))
    rng(seed).shuffle(values)
    return pa.table({"c": values})


# --------------------------------------------------------------- values against SciPy


def test_small_numeric_is_scipy_ks_exactly() -> None:
    ref, cur = rng(1).normal(0, 1, 400), rng(2).normal(0.3, 1, 300)
    column = compute_drift(pa.table({"x": ref}), pa.table({"x": cur})).column("x")
    expected = ks_2samp(ref, cur)
    assert (column.method, column.exact, column.error_bound) == ("ks", True, 0.0)
    assert column.statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert column.p_value == pytest.approx(expected.pvalue, rel=1e-9)
    assert column.score == column.p_value and column.threshold == 0.05
    assert column.drifted is bool(expected.pvalue <= 0.05)


@pytest.mark.parametrize("make", [
    lambda g, n: g.normal(10, 3, n),
    lambda g, n: g.lognormal(1, 1, n),
    lambda g, n: np.round(g.exponential(100, n), 1),
])
def test_large_wasserstein_is_within_the_stated_bound_of_scipy(make: Any) -> None:
    ref, cur = make(rng(3), 30_000), make(rng(4), 25_000) * 1.05
    column = compute_drift(pa.table({"x": ref}), pa.table({"x": cur})).column("x")
    expected = wasserstein_distance(ref, cur) / np.std(ref)
    assert column.method == "wasserstein" and not column.exact
    assert abs(column.statistic - expected) <= column.error_bound + 1e-12
    assert column.error_bound < 0.01 * max(expected, 0.01)


@pytest.mark.parametrize("make", [
    lambda g, n: np.where(g.random(n) < 0.9, 0.0, g.exponential(3, n)),  # zero-inflated
    lambda g, n: 1e9 + g.normal(0, 1, n),  # far from zero: sums kept relative to the bins
    lambda g, n: g.pareto(1.0, n),  # heavy tail: most values in a few cells
    lambda g, n: np.sort(g.normal(0, 1, n)),  # ordered: bins from the first values only
])
def test_binned_statistics_hold_their_bounds_on_awkward_data(make: Any) -> None:
    ref, cur = make(rng(16), 40_000), make(rng(17), 30_000)
    for shift in (0.0, 0.3 * float(np.std(cur))):
        report = compute_drift(pa.table({"x": ref}), pa.table({"x": cur + shift}),
                               methods={"x": "ks"})
        column = report.column("x")
        assert 0 <= ks_2samp(ref, cur + shift).statistic - column.statistic <= column.error_bound
        column = compute_drift(pa.table({"x": ref}), pa.table({"x": cur + shift})).column("x")
        expected = wasserstein_distance(ref, cur + shift) / np.std(ref)
        assert abs(column.statistic - expected) <= column.error_bound + 1e-9 * expected


def test_binned_ks_is_within_its_bound_of_scipy() -> None:
    ref, cur = rng(5).normal(0, 1, 40_000), rng(6).normal(0.02, 1.1, 30_000)
    column = compute_drift(pa.table({"x": ref}), pa.table({"x": cur}), methods="ks").column("x")
    expected = ks_2samp(ref, cur)
    assert abs(column.statistic - expected.statistic) <= column.error_bound + 1e-12
    assert column.error_bound < 2e-3
    assert column.p_value == pytest.approx(expected.pvalue, rel=0.2, abs=1e-12)


def test_chisquare_small_categorical_is_scipys() -> None:
    ref = shares_table({"a": 300, "b": 200, "c": 100})
    cur = shares_table({"a": 200, "b": 220, "c": 80}, seed=1)
    column = compute_drift(ref, cur).column("c")
    expected = chisquare([200, 220, 80], np.array([300, 200, 100]) * 500 / 600)
    assert column.method == "chisquare"
    assert column.statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert column.p_value == pytest.approx(expected.pvalue, rel=1e-9)
    assert column.drifted is True


def test_jensenshannon_large_categorical_is_scipys() -> None:
    ref = shares_table({"a": 3000, "b": 2000, "c": 1000})
    cur = shares_table({"a": 1500, "b": 2500, "c": 900, "d": 100}, seed=1)
    column = compute_drift(ref, cur).column("c")
    assert column.method == "jensenshannon"
    assert column.statistic == pytest.approx(
        jensenshannon([3000, 2000, 1000, 0], [1500, 2500, 900, 100]), rel=1e-12)


def test_psi_against_a_hand_computation() -> None:
    ref = shares_table({"a": 500, "b": 500})
    cur = shares_table({"a": 800, "b": 200}, seed=1)
    hand = (0.8 - 0.5) * math.log(0.8 / 0.5) + (0.2 - 0.5) * math.log(0.2 / 0.5)
    assert compute_drift(ref, cur).column("c").psi == pytest.approx(hand, rel=1e-12)
    # Numbers: deciles of the reference 0..9 → one value per bin; the current has none in 0-4.
    numbers_ref, numbers_cur = np.arange(10.0).repeat(10), np.arange(5.0, 10.0).repeat(20)
    hand = 5 * (1e-4 - 0.1) * math.log(1e-4 / 0.1) + 5 * (0.2 - 0.1) * math.log(0.2 / 0.1)
    assert psi(numbers_ref, numbers_cur) == pytest.approx(hand, rel=1e-12)
    column = compute_drift(pa.table({"x": numbers_ref}), pa.table({"x": numbers_cur})).column("x")
    assert column.psi == pytest.approx(hand, rel=1e-12)


def test_psi_of_large_samples_is_close_to_the_exact_one() -> None:
    ref, cur = rng(7).normal(0, 1, 60_000), rng(8).normal(0.2, 1, 50_000)
    column = compute_drift(pa.table({"x": ref}), pa.table({"x": cur})).column("x")
    assert column.psi == pytest.approx(psi(ref, cur), abs=2e-3)


# ----------------------------------------------------------------------- detection


@pytest.mark.parametrize("n", [800, 20_000])
def test_a_known_shift_is_detected_and_an_unshifted_column_is_not(n: int) -> None:
    # Seeded: Evidently's chi-square treats the reference shares as exact, so an unshifted
    # categorical column of two equal-sized samples is flagged far more often than 5 % of
    # the time (docs/monitoring.md); seed 11 is one where it is not.
    g = rng(11)
    cats = np.array(["red", "green", "blue", "grey"])

    def table(shift: float, p: list[float]) -> pa.Table:
        return pa.table({"moved": g.normal(shift, 1, n), "still": g.normal(0, 1, n),
                         "moved_cat": cats[g.choice(4, n, p=p)],
                         "still_cat": cats[g.choice(4, n, p=[0.4, 0.3, 0.2, 0.1])]})

    report = compute_drift(table(0, [0.4, 0.3, 0.2, 0.1]), table(0.5, [0.1, 0.2, 0.3, 0.4]))
    small = n <= 1000
    assert report.column("moved").method == ("ks" if small else "wasserstein")
    assert report.column("moved_cat").method == ("chisquare" if small else "jensenshannon")
    assert report.drifted_columns == ["moved", "moved_cat"]
    assert report.drifted_share == 0.5 and report.dataset_drift is True


def test_few_valued_numbers_follow_evidentlys_rules() -> None:
    g = rng(10)
    ref = pa.table({"rating": g.integers(1, 6, 2000), "flag": g.integers(0, 2, 2000).astype(float),
                    "age": g.integers(18, 90, 2000)})
    cur = pa.table({"rating": g.integers(1, 6, 2000), "flag": g.integers(0, 2, 2000).astype(float),
                    "age": g.integers(18, 90, 2000)})
    report = compute_drift(ref, cur)
    # Integers with at most 10 values are categorical; floats with <= 5 values are compared
    # per value (Jensen-Shannon above 1,000 reference rows); other integers are numeric.
    assert (report.column("rating").kind, report.column("rating").method) == \
        ("categorical", "jensenshannon")
    assert (report.column("flag").kind, report.column("flag").method) == ("numeric", "jensenshannon")
    assert (report.column("age").kind, report.column("age").method) == ("numeric", "wasserstein")
    assert report.column("age").exact  # few distinct values: exact from value counts
    small = compute_drift(ref.slice(0, 500), cur.slice(0, 500))
    assert small.column("flag").method == "z" and small.column("rating").method == "chisquare"


# ----------------------------------------------------------------------- streaming


def test_streaming_in_chunks_gives_the_same_result_as_one_table() -> None:
    g = rng(11)
    n = 30_000
    ref = pa.table({"x": g.normal(0, 1, n), "k": g.integers(0, 1000, n),
                    "c": np.array(["a", "b", "c"])[g.integers(0, 3, n)]})
    cur = pa.table({"x": g.normal(0.1, 1, n), "k": g.integers(0, 1000, n),
                    "c": np.array(["a", "b", "c"])[g.integers(0, 3, n)]})
    whole = compute_drift(ref, cur).to_dict()
    reader = pa.RecordBatchReader.from_batches(cur.schema, cur.to_batches(max_chunksize=999))
    streamed = compute_drift(iter(ref.to_batches(max_chunksize=1234)), reader,
                             chunk_rows=4096).to_dict()
    assert streamed["drifted_columns"] == whole["drifted_columns"]
    for name, column in whole["columns"].items():
        other = streamed["columns"][name]
        for key in ("method", "drifted", "reference_count", "current_count", "exact"):
            assert other[key] == column[key], (name, key)
        for key in ("statistic", "psi", "error_bound"):
            assert other[key] == pytest.approx(column[key], rel=1e-9, abs=1e-12), (name, key)


def test_a_reference_profile_serves_several_windows() -> None:
    g = rng(12)
    profile = build_reference(pa.table({"x": g.normal(0, 1, 5000)}))
    first = compute_drift(profile, pa.table({"x": g.normal(0, 1, 3000)}))
    second = compute_drift(profile, pa.table({"x": g.normal(1, 1, 3000)}))
    assert (first.drifted_columns, second.drifted_columns) == ([], ["x"])


# ----------------------------------------------------------------------- data quality


def test_data_quality_figures() -> None:
    ref = pa.table({"x": pa.array([float(i) for i in range(100)] + [None] * 0),
                    "c": pa.array(["a", "b"] * 50)})
    cur = pa.table({"x": pa.array([-1.0] * 5 + [50.0] * 70 + [200.0] * 5 + [None] * 20),
                    "c": pa.array(["a"] * 60 + ["z"] * 30 + [None] * 10)})
    report = compute_drift(ref, cur)
    x, c = report.column("x").quality, report.column("c").quality
    assert x is not None and c is not None
    assert (x.null_share, x.reference_null_share, x.null_share_change) == (0.2, 0.0, 0.2)
    assert x.out_of_range_share == pytest.approx(10 / 80)
    assert (x.reference_min, x.reference_max) == (0.0, 99.0)
    assert c.null_share == pytest.approx(0.1) and c.unseen_share == pytest.approx(30 / 90)
    assert c.unseen_examples == ["z"]
    assert report.column("c").drifted is True  # a category the reference never had: p = 0


def test_nan_and_infinity_count_as_missing() -> None:
    ref = pa.table({"x": [1.0, 2.0, 3.0, 4.0]})
    cur = pa.table({"x": [1.0, float("nan"), float("inf"), 2.0]})
    column = compute_drift(ref, cur).column("x")
    assert (column.current_count, column.quality.null_share) == (2, 0.5)  # type: ignore[union-attr]


def test_type_mismatch_and_missing_columns_are_reported_not_raised() -> None:
    ref = pa.table({"x": [1.0, 2.0, 3.0], "y": [1, 2, 3], "z": ["a", "b", "c"]})
    cur = pa.table({"x": ["1", "2", "3"], "z": ["a", "b", "b"]})
    report = compute_drift(ref, cur)
    assert report.column("x").status == "type_mismatch"
    assert "reference double, current string" in (report.column("x").message or "")
    assert report.column("y").status == "missing"
    assert report.compared_count == 1 and report.column("z").status == "ok"


def test_empty_current_data_is_a_no_data_report() -> None:
    ref = pa.table({"x": [1.0, 2.0], "c": ["a", "b"]})
    report = compute_drift(ref, ref.slice(0, 0))
    assert (report.status, report.drifted_share, report.dataset_drift) == ("no_data", None, None)
    assert {c.status for c in report.columns.values()} == {"no_data"}
    json.dumps(report.to_dict(), allow_nan=False)


def test_unknown_column_and_method_name_the_known_ones() -> None:
    ref = pa.table({"income": [1.0, 2.0], "age": [1, 2]})
    with pytest.raises(NotFound, match="did you mean 'income'"):
        compute_drift(ref, ref, columns=["incme"])
    with pytest.raises(NotFound, match="known: age, income"):
        compute_drift(ref, ref, methods={"zzz": "ks"})
    with pytest.raises(NotFound, match="drift method 'kss'"):
        compute_drift(ref, ref, methods="kss")
    with pytest.raises(UsageError, match="does not apply to a categorical column"):
        compute_drift(pa.table({"c": ["a", "b"]}), pa.table({"c": ["a", "a"]}),
                      methods={"c": "wasserstein"})


def test_methods_thresholds_prediction_and_prefix() -> None:
    g = rng(13)
    ref = pa.table({"income": g.normal(0, 1, 3000), "city": np.array(["x", "y"])[g.integers(0, 2, 3000)],
                    "prediction": g.normal(0, 1, 3000)})
    cur = pa.table({"in_income": g.normal(0.15, 1, 3000),
                    "in_city": np.array(["x", "y"])[g.integers(0, 2, 3000)],
                    "prediction": g.normal(1, 1, 3000)})
    report = compute_drift(ref, cur, current_prefix="in_", methods={"*": "psi", "income": "ks"},
                           thresholds={"*": 0.2})
    income, city = report.column("income"), report.column("city")
    assert (income.method, income.threshold) == ("ks", 0.2)
    assert (city.method, city.threshold) == ("psi", 0.2) and city.statistic == city.psi
    assert report.prediction is not None and report.prediction.drifted is True
    assert "prediction" not in report.columns and report.compared_count == 2
    everywhere = compute_drift(ref, cur, current_prefix="in_", methods="wasserstein")
    assert everywhere.column("income").method == "wasserstein"
    assert everywhere.column("city").method == "jensenshannon"  # not applicable: auto


def test_inputs_of_every_kind(tmp_path: Path) -> None:
    import pandas as pd
    import polars as pl

    table = pa.table({"x": rng(14).normal(0, 1, 500), "c": ["a", "b"] * 250})
    pq.write_table(table, tmp_path / "t.parquet", row_group_size=100)
    pa_csv.write_csv(table, tmp_path / "t.csv")
    (tmp_path / "t.jsonl").write_text("\n".join(json.dumps(r) for r in table.to_pylist()))
    (tmp_path / "dir").mkdir()
    pq.write_table(table.slice(0, 250), tmp_path / "dir" / "a.parquet")
    pq.write_table(table.slice(250), tmp_path / "dir" / "b.parquet")
    expected = compute_drift(table, table).to_dict()
    for data in (tmp_path / "t.parquet", str(tmp_path / "t.csv"), tmp_path / "t.jsonl",
                 tmp_path / "dir", table.to_pandas(), pl.from_arrow(table),
                 pd.DataFrame(table.to_pydict())):
        got = compute_drift(table, data).to_dict()
        assert got["columns"]["x"]["statistic"] == pytest.approx(
            expected["columns"]["x"]["statistic"], rel=1e-12), type(data)
    with pytest.raises(UsageError, match="no such file"):
        compute_drift(table, tmp_path / "missing.parquet")
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    with pytest.raises(UsageError, match=r"bad\.parquet: not a readable Parquet file"):
        compute_drift(table, tmp_path / "bad.parquet")


# ------------------------------------------------------------------------------- CLI


def dsops(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    from dsops.cli.entry import main

    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    captured = capsys.readouterr()
    return int(exit_info.value.code or 0), captured.out, captured.err


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    g = rng(15)
    n = 3000
    ref = pa.table({"income": g.normal(50, 10, n), "age": g.integers(18, 90, n),
                    "city": np.array(["<b>Paris</b>", "Oslo"])[g.integers(0, 2, n)]})
    cur = pa.table({"income": g.normal(58, 10, n), "age": g.integers(18, 90, n),
                    "city": np.array(["<script>x</script>", "Oslo"])[g.integers(0, 2, n)]})
    pq.write_table(ref, tmp_path / "ref.parquet")
    pa_csv.write_csv(cur, tmp_path / "cur.csv")
    return tmp_path / "ref.parquet", tmp_path / "cur.csv"


def test_cli_json_and_html(files: tuple[Path, Path], tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    ref, cur = files
    page = tmp_path / "out" / "report.html"
    code, out, _ = dsops(capsys, "drift", str(ref), str(cur), "--json", "--html", str(page))
    report = json.loads(out)
    assert code == 0  # drift is information, not a failed check
    assert report["drifted_columns"] == ["income", "city"]
    assert report["columns"]["income"]["method"] == "wasserstein"
    assert report["columns"]["city"]["quality"]["unseen_examples"] == ["<script>x</script>"]
    text = page.read_text()
    assert "<script>x</script>" not in text and "&lt;script&gt;x&lt;/script&gt;" in text
    assert "plotly" in text.lower() and text.count("class=\"plotly-graph-div\"") == 4

    code, out, _ = dsops(capsys, "drift", str(ref), str(cur), "--columns", "age,income",
                         "--fail-on-drift")
    assert code == 1
    assert "income" in out and "wasserstein" in out and "drifted: 1 of 2 columns (50%)" in out


def test_cli_errors_and_no_data(files: tuple[Path, Path], tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    ref, cur = files
    code, _, err = dsops(capsys, "drift", str(ref), str(cur), "--columns", "incme")
    assert code == 2 and "unknown column 'incme' — did you mean 'income'?" in err
    code, _, err = dsops(capsys, "drift", str(ref), str(tmp_path / "nope.csv"))
    assert code == 2 and f"{tmp_path / 'nope.csv'}: no such file" in err
    (tmp_path / "empty.csv").write_text("income,age,city\n")
    code, out, _ = dsops(capsys, "drift", str(ref), str(tmp_path / "empty.csv"))
    assert code == 0 and "no data" in out
    code, out, _ = dsops(capsys, "drift", str(ref), str(tmp_path / "empty.csv"), "--json")
    assert json.loads(out)["status"] == "no_data"


def test_cli_reads_dataset_references(files: tuple[Path, Path], make_workspace: Any,
                                      monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    from dsops.data.service import DatasetService

    ref, cur = files
    ws = make_workspace()
    DatasetService(ws).add(cur, "live")
    monkeypatch.chdir(ws.root)
    code, out, _ = dsops(capsys, "drift", str(ref), "data:live@1", "--json")
    assert code == 0 and json.loads(out)["current_rows"] == 3000


def test_console_script(files: tuple[Path, Path], run_cli: Any, tmp_path: Path) -> None:
    ref, cur = files
    result = run_cli("drift", str(ref), str(cur), "--method", "psi", "--threshold", "0.2",
                     "--json", cwd=tmp_path)  # outside any project: no workspace needed
    assert result.returncode == 0, result.stderr
    columns = json.loads(result.stdout)["columns"]
    assert {c["method"] for c in columns.values()} == {"psi"}
    assert {c["threshold"] for c in columns.values()} == {0.2}


def test_personal_data_is_never_compared(make_workspace: Any, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    from dsops.core.crypto import generate_key
    from dsops.data.service import DatasetService

    monkeypatch.setenv("DSOPS_ENCRYPTION_KEY", generate_key())
    rows = "\n".join(f"{i},{20 + i % 50},person{i}@example.com" for i in range(400))
    (tmp_path / "people.csv").write_text("id,age,email\n" + rows + "\n")
    ws = make_workspace()
    DatasetService(ws).add(tmp_path / "people.csv", "people")
    monkeypatch.chdir(ws.root)
    code, out, err = dsops(capsys, "drift", "data:people@1", str(tmp_path / "people.csv"), "--json")
    assert code == 0 and "not compared (personal data): email" in err
    assert set(json.loads(out)["columns"]) == {"id", "age"} and "example.com" not in out
    code, _, err = dsops(capsys, "drift", "data:people@1", str(tmp_path / "people.csv"),
                         "--columns", "age,email")
    assert code == 2 and "email hold personal data" in err
