"""Declarative expectations run through Pandera: every kind passing and failing."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pyarrow as pa
import pytest

from dsops.config.models import Expectation
from dsops.data.expectations import check_expectations, format_report


def _expect(**fields: Any) -> Expectation:
    return Expectation.model_validate(fields)


def _people() -> pa.Table:
    return pa.table({
        "id": [1, 2, 3, 4, 5, 6],
        "age": [25, None, 130, -1, 40, 7],
        "score": [0.5, 0.1, float("nan"), 0.9, float("inf"), None],
        "city": ["Paris", "Oslo", None, "Lyon", "Paris", "paris"],
        "email": ["ann@example.com", "bob-at-example", None, "eve@example.org", "x", "y@z.io"],
        "joined": [dt.date(2024, 1, d) for d in range(1, 7)],
        "active": [True, False, True, None, True, True],
        "tag": ["a", "b", "a", None, None, "c"],
    })


def _only(report: dict[str, Any]) -> dict[str, Any]:
    assert len(report["checks"]) == 1, report
    return report["checks"][0]


def _run(*expectations: Expectation, table: pa.Table | None = None, **kw: Any) -> dict[str, Any]:
    report = check_expectations(_people() if table is None else table, list(expectations), **kw)
    assert json.loads(json.dumps(report, allow_nan=False)) == report
    return report


@pytest.mark.parametrize(
    ("fields", "label", "failing", "examples"),
    [
        ({"between": [18, 100]}, "between [18, 100]", 3, [130, -1, 7]),
        ({"min": 18}, "min 18", 2, [-1, 7]),
        ({"max": 100}, "max 100", 1, [130]),
        ({"max": 99.5}, "max 99.5", 1, [130]),
        ({"not_null": True}, "not_null", 1, []),
    ],
)
def test_age_checks_fail_with_counts_and_examples(
    fields: dict[str, Any], label: str, failing: int, examples: list[Any]
) -> None:
    check = _only(_run(_expect(column="age", **fields)))
    assert check == {"check": label, "column": "age", "passed": False,
                     "failing_rows": failing, "examples": examples}


@pytest.mark.parametrize(
    "fields",
    [{"between": [-5, 200]}, {"min": -1}, {"max": 130}, {"unique": True}, {"type": "int"},
     {"type": "float"}, {"in": [25, 130, -1, 40, 7]}],
)
def test_age_checks_pass(fields: dict[str, Any]) -> None:
    report = _run(_expect(column="age", **fields))
    assert report["passed"] and _only(report)["failing_rows"] == 0


def test_nan_and_inf_are_outside_a_range_nulls_are_not() -> None:
    check = _only(_run(_expect(column="score", between=[0, 1])))
    assert check["failing_rows"] == 2 and check["examples"] == ["nan", "inf"]


def test_unique() -> None:
    failing = _only(_run(_expect(column="city", unique=True)))
    assert (failing["passed"], failing["failing_rows"], failing["examples"]) == (False, 2, ["Paris"])
    # Nulls are not duplicates of each other.
    assert _run(_expect(column="id", unique=True), _expect(column="email", unique=True))["passed"]
    tags = _only(_run(_expect(column="tag", unique=True)))
    assert tags["failing_rows"] == 2 and tags["examples"] == ["a"]


def test_type() -> None:
    report = _run(
        _expect(column="city", type="str"), _expect(column="joined", type="date"),
        _expect(column="active", type="bool"), _expect(column="score", type="float"),
        _expect(column="city", type="int"), _expect(column="score", type="int"),
        _expect(column="joined", type="datetime"),
    )
    verdicts = [(c["check"], c["column"], c["passed"]) for c in report["checks"]]
    assert verdicts == [
        ("type str", "city", True), ("type date", "joined", True), ("type bool", "active", True),
        ("type float", "score", True), ("type int", "city", False), ("type int", "score", False),
        ("type datetime", "joined", False),
    ]
    assert report["checks"][4]["detail"] == "found str"


def test_in() -> None:
    check = _only(_run(_expect(column="city", **{"in": ["Paris", "Oslo", "Lyon"]})))
    assert check["check"] == 'in ["Paris", "Oslo", "Lyon"]'
    assert (check["failing_rows"], check["examples"]) == (1, ["paris"])
    assert _run(_expect(column="active", **{"in": [True, False]}))["passed"]
    assert _only(_run(_expect(column="active", **{"in": [True]})))["examples"] == [False]
    # Numbers given for a text column compare by their text.
    codes = pa.table({"code": ["1", "2", "3"]})
    assert _only(_run(_expect(column="code", **{"in": [1, 2]}), table=codes))["examples"] == ["3"]


def test_regex_searches_and_ignores_nulls() -> None:
    check = _only(_run(_expect(column="email", regex=r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$")))
    assert check["check"] == r"regex '^[^@\s]+@[^@\s]+\.[a-z]{2,}$'"
    assert (check["failing_rows"], check["examples"]) == (2, ["bob-at-example", "x"])
    assert _run(_expect(column="email", regex="@|-|x"))["passed"]


def test_regex_with_lookahead_falls_back_to_python() -> None:
    check = _only(_run(_expect(column="city", regex=r"^(?!paris$)")))
    assert (check["failing_rows"], check["examples"]) == (1, ["paris"])


def test_range_on_text_column_fails_the_non_numbers() -> None:
    table = pa.table({"amount": ["12", " 7.5 ", "n/a", None, "1e3"]})
    check = _only(_run(_expect(column="amount", between=[0, 100]), table=table))
    assert (check["failing_rows"], check["examples"]) == (2, ["n/a", "1e3"])


def test_range_on_date_column_fails() -> None:
    check = _only(_run(_expect(column="joined", min=0)))
    assert not check["passed"] and check["detail"] == "date column, not numeric"


def test_row_count() -> None:
    report = _run(_expect(row_count={"min": 100}), _expect(row_count={"min": 1, "max": 6}),
                  _expect(row_count={"max": 5}))
    assert [(c["check"], c["column"], c["passed"]) for c in report["checks"]] == [
        ("row_count min 100", None, False), ("row_count min 1 max 6", None, True),
        ("row_count max 5", None, False),
    ]
    assert report["checks"][0]["detail"] == "found 6 rows"


def test_missing_column_is_a_failed_check_once() -> None:
    report = _run(_expect(column="agee", not_null=True), _expect(column="agee", unique=True),
                  _expect(column="id", unique=True))
    assert [(c["check"], c["column"], c["passed"]) for c in report["checks"]] == [
        ("column exists", "agee", False), ("unique", "id", True),
    ]
    assert "did you mean 'age'" in report["checks"][0]["detail"]


def test_all_failures_are_collected() -> None:
    report = _run(
        _expect(column="age", between=[18, 100], not_null=True, type="int"),
        _expect(column="city", unique=True, **{"in": ["Paris", "Oslo", "Lyon"]}),
        _expect(column="email", regex=r"@"),
        _expect(column="missing", not_null=True),
        _expect(row_count={"min": 10}),
    )
    assert not report["passed"]
    failed = [(c["column"], c["check"]) for c in report["checks"] if not c["passed"]]
    assert failed == [
        ("age", "not_null"), ("age", "between [18, 100]"), ("city", "unique"),
        ("city", 'in ["Paris", "Oslo", "Lyon"]'), ("email", "regex '@'"),
        ("missing", "column exists"), (None, "row_count min 10"),
    ]


def test_examples_are_capped_and_distinct() -> None:
    table = pa.table({"v": list(range(100, 120)) * 2})
    check = _only(_run(_expect(column="v", max=10), table=table))
    assert check["failing_rows"] == 40 and check["examples"] == [100, 101, 102, 103, 104]


def test_masked_columns_never_show_values() -> None:
    secret = "bob-at-example"
    report = _run(_expect(column="email", regex="@", unique=True), mask_columns={"email"})
    check = report["checks"][1]
    assert check["failing_rows"] == 2 and check["examples"] == ["***", "***"]
    assert secret not in json.dumps(report)
    assert secret not in "\n".join(format_report(report))


def test_format_report() -> None:
    report = _run(
        _expect(column="age", between=[18, 100]), _expect(column="id", not_null=True),
        _expect(column="age", not_null=True), _expect(column="city", type="int"),
        _expect(row_count={"min": 100}), _expect(column="agee", unique=True),
    )
    assert format_report(report) == [
        "✗ age: between [18, 100] — 3 rows fail, e.g. 130, -1, 7",
        "✓ id: not_null",
        "✗ age: not_null — 1 row fails",
        "✗ city: type int — found str",
        "✗ row_count min 100 — found 6 rows",
        "✗ agee: column exists — not in the table; did you mean 'age'?",
    ]


def test_date_examples_are_json_strings() -> None:
    table = pa.table({"day": [dt.date(2024, 1, 1), dt.date(2024, 1, 1)]})
    assert _only(_run(_expect(column="day", unique=True), table=table))["examples"] == [
        "2024-01-01"
    ]


def test_no_expectations_pass() -> None:
    assert _run() == {"passed": True, "checks": []}
