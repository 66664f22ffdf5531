"""Schema, profile (checked against NumPy) and profile diff on generated data."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from dsops.data.profile import HISTOGRAM_BINS, diff_profiles, profile_table, schema_of

N = 20_000


def _generated(seed: int = 7, *, shift: float = 0.0, n: int = N) -> pa.Table:
    rng = np.random.default_rng(seed)
    income = rng.normal(50_000 + shift * 15_000, 15_000, n)
    income_mask = rng.random(n) < 0.05
    cities = rng.choice(["Paris", "Berlin", "Rome", "Oslo"], n, p=[0.4, 0.3, 0.2, 0.1])
    return pa.table({
        "income": pa.array(income, mask=income_mask),
        "age": pa.array(rng.integers(18, 90, n)),
        "city": pa.array(cities),
        "user": pa.array([f"u{i % 5000}" for i in range(n)]),
        "active": pa.array(rng.random(n) < 0.3),
        "signup": pa.array(np.datetime64("2020-01-01") + rng.integers(0, 900, n)),
    })


def _strict_json(value: Any) -> Any:
    return json.loads(json.dumps(value, allow_nan=False))


def test_schema_of() -> None:
    schema = schema_of(_generated(n=10))
    assert schema["columns"][0] == {
        "name": "income", "type": "float", "arrow_type": "double", "nullable": True
    }
    assert [c["type"] for c in schema["columns"]] == [
        "float", "int", "str", "str", "bool", "date"
    ]
    assert _strict_json(schema) == schema


def test_numeric_profile_matches_numpy() -> None:
    table = _generated()
    profile = profile_table(table)
    assert profile["row_count"] == N
    for name in ("income", "age"):
        stats = profile["columns"][name]
        values = table.column(name).drop_null().to_numpy().astype(np.float64)
        assert stats["null_count"] == table.column(name).null_count
        assert stats["distinct_count"] == np.unique(values).size
        assert stats["min"] == values.min() and stats["max"] == values.max()
        assert stats["mean"] == pytest.approx(values.mean(), rel=1e-12)
        assert stats["std"] == pytest.approx(values.std(ddof=1), rel=1e-12)
        quantiles = np.quantile(values, [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99])
        assert list(stats["quantiles"]) == ["p01", "p05", "p25", "p50", "p75", "p95", "p99"]
        assert list(stats["quantiles"].values()) == pytest.approx(quantiles, rel=1e-12)
        counts, edges = np.histogram(values, bins=HISTOGRAM_BINS)
        assert stats["histogram"]["edges"] == pytest.approx(edges, rel=1e-12)
        assert stats["histogram"]["counts"] == counts.tolist()
        assert len(stats["histogram"]["edges"]) == 21
    assert profile["columns"]["income"]["null_count"] > 0
    assert isinstance(profile["columns"]["age"]["min"], int)


def test_category_profile_matches_counter() -> None:
    table = _generated()
    profile = profile_table(table)
    for name in ("city", "user", "active"):
        stats = profile["columns"][name]
        counter = Counter(table.column(name).to_pylist())
        assert stats["distinct_count"] == len(counter)
        top = stats["top"]
        assert len(top) == min(20, len(counter))
        for entry in top:
            assert counter[entry["value"]] == entry["count"]
        assert [e["count"] for e in top] == sorted((e["count"] for e in top), reverse=True)
        assert top[0]["count"] == max(counter.values())
        assert stats["other_count"] == N - sum(e["count"] for e in top)
    assert profile["columns"]["city"]["other_count"] == 0
    assert {e["value"] for e in profile["columns"]["active"]["top"]} == {True, False}


def test_datetime_profile_iso_bounds() -> None:
    table = pa.table({
        "day": pa.array([dt.date(2024, 3, 1), None, dt.date(2023, 1, 5)]),
        "at": pa.array([dt.datetime(2024, 1, 1, 12, 30), None, None]),
    })
    columns = profile_table(table)["columns"]
    assert columns["day"] == {"type": "date", "null_count": 1, "distinct_count": 2,
                              "min": "2023-01-05", "max": "2024-03-01"}
    assert columns["at"]["min"] == columns["at"]["max"] == "2024-01-01T12:30:00"


def test_nan_inf_all_null_degenerate_and_empty_are_json_safe() -> None:
    table = pa.table({
        "x": pa.array([1.0, float("nan"), float("inf"), -float("inf"), 3.0, None]),
        "nothing": pa.array([None] * 6, type=pa.float64()),
        "null_typed": pa.array([None] * 6),
        "constant": pa.array([4] * 6),
        "no_strings": pa.array([None] * 6, type=pa.string()),
    })
    profile = profile_table(table)
    assert _strict_json(profile) == profile
    x = profile["columns"]["x"]
    assert (x["nan_count"], x["inf_count"], x["null_count"]) == (1, 2, 1)
    assert (x["min"], x["max"], x["mean"]) == (1.0, 3.0, 2.0)
    assert x["distinct_count"] == 5
    nothing = profile["columns"]["nothing"]
    assert nothing["null_count"] == 6 and nothing["histogram"] is None and nothing["mean"] is None
    constant = profile["columns"]["constant"]
    assert constant["std"] == 0.0
    assert constant["histogram"]["edges"][0] == 3.5 and constant["histogram"]["edges"][-1] == 4.5
    assert sum(constant["histogram"]["counts"]) == 6
    assert profile["columns"]["no_strings"]["top"] == []
    empty = profile_table(table.slice(0, 0))
    assert empty["row_count"] == 0 and _strict_json(empty) == empty


def _diff(old: pa.Table, new: pa.Table) -> dict[str, Any]:
    return diff_profiles(profile_table(old), profile_table(new), schema_of(old), schema_of(new))


def test_diff_of_identical_data_reports_no_change() -> None:
    table = _generated()
    diff = _diff(table, table)
    assert diff["row_count"] == {"old": N, "new": N, "delta": 0}
    assert diff["added_columns"] == diff["removed_columns"] == diff["type_changes"] == []
    for name, column in diff["columns"].items():
        assert not column["changed"], name
        assert column["psi"] is None or column["psi"] == pytest.approx(0.0, abs=1e-12), name
    assert _strict_json(diff) == diff


def test_diff_of_a_fresh_sample_of_the_same_distribution_is_stable() -> None:
    diff = _diff(_generated(seed=1), _generated(seed=2))
    changed = [name for name, column in diff["columns"].items() if column["changed"]]
    assert changed == []


def test_diff_detects_shifted_distribution() -> None:
    diff = _diff(_generated(seed=1), _generated(seed=2, shift=0.5))
    income = diff["columns"]["income"]
    assert income["psi"] > 0.1
    assert income["changed"]
    assert income["mean"]["delta"] == pytest.approx(7_500, rel=0.1)
    assert income["mean"]["rel"] == pytest.approx(0.15, rel=0.1)
    assert not diff["columns"]["age"]["changed"]


def test_diff_detects_category_shift_and_null_rate() -> None:
    old = pa.table({"city": ["Paris"] * 50 + ["Rome"] * 50, "x": list(range(100))})
    new = pa.table({"city": ["Paris"] * 90 + ["Rome"] * 10,
                    "x": [None] * 5 + list(range(95))})
    diff = _diff(old, new)
    assert diff["columns"]["city"]["psi"] > 0.25 and diff["columns"]["city"]["changed"]
    assert diff["columns"]["x"]["null_count"] == {"old": 0, "new": 5, "delta": 5}
    assert diff["columns"]["x"]["changed"]


def test_diff_detects_added_removed_and_type_change() -> None:
    old = pa.table({"id": [1, 2, 3], "zip": [75001, 10115, 28001], "gone": [1, 1, 1]})
    new = pa.table({"id": [1, 2, 3], "zip": ["75001", "10115", "28001"], "extra": [0.1] * 3})
    diff = _diff(old, new)
    assert diff["added_columns"] == ["extra"]
    assert diff["removed_columns"] == ["gone"]
    assert diff["type_changes"] == [{"column": "zip", "old": "int", "new": "str"}]
    assert diff["columns"]["zip"]["changed"] and diff["columns"]["zip"]["psi"] is None
    assert not diff["columns"]["id"]["changed"]


def test_diff_values_outside_the_old_range_count() -> None:
    rng = np.random.default_rng(3)
    old = pa.table({"v": rng.uniform(0, 1, 5000)})
    new = pa.table({"v": rng.uniform(0, 1, 5000) + 2})  # entirely beyond the old max
    assert _diff(old, new)["columns"]["v"]["psi"] > 1
