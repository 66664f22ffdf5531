"""Run a dataset's declared expectations on an Arrow table and report every failure.

The engine is Pandera's polars backend: measured on 1M rows with 4 columns and ~750k
failing values, ``pandera.polars`` validated in 0.54 s against 2.46 s for
``pandera.pandas`` (plus the table's conversion to pandas); the imports cost about the
same (0.6–0.8 s once polars is loaded), hence the lazy import. The table reaches polars
without a copy. Six expectations over 1M rows: 0.19 s passing, 0.41 s with 750k failures.

Semantics: nulls pass range, ``in`` and regex checks (only ``not_null`` catches them) and
``unique`` ignores them; ``regex`` searches the value (anchor with ``^…$`` for a full
match); ``type`` compares the logical type, an int column passing ``type: float``; a
string column under a range check fails on the values that are not numbers.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa

from dsops.config.models import Expectation
from dsops.data.tabular import logical_type

if TYPE_CHECKING:
    import pandera.polars as pandera

MAX_EXAMPLES = 5
MASK = "***"


@dataclass
class _Check:
    """One line of the report, with the polars expression (True = row passes) behind it."""

    label: str
    column: str | None
    expression: pl.Expr | None = None  # None: decided without looking at the rows
    passed: bool = True
    failing_rows: int = 0
    examples: list[Any] = field(default_factory=list)
    detail: str | None = None


def check_expectations(
    table: pa.Table,
    expectations: list[Expectation],
    *,
    mask_columns: set[str] | frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """Check `table` against `expectations`, collecting every failure (JSON-serialisable)."""
    frame = pl.from_arrow(table) if table.num_columns else pl.DataFrame()
    assert isinstance(frame, pl.DataFrame)
    types = {f.name: logical_type(f.type) for f in table.schema}
    checks: list[_Check] = []
    missing_reported: set[str] = set()
    for expectation in expectations:
        if expectation.row_count is not None:
            checks.append(_row_count_check(expectation, table.num_rows))
            continue
        column = expectation.column
        assert column is not None  # the model guarantees a column or a row_count
        if column not in types:
            if column not in missing_reported:
                missing_reported.add(column)
                checks.append(_missing_column_check(column, list(types)))
            continue
        checks.extend(_column_checks(expectation, column, types[column]))

    _run_pandera(frame, [c for c in checks if c.expression is not None])
    for check in checks:
        if check.column in mask_columns:
            check.examples = [MASK] * len(check.examples)
    return {
        "passed": all(check.passed for check in checks),
        "checks": [_as_dict(check) for check in checks],
    }


def format_report(report: dict[str, Any]) -> list[str]:
    """One human-readable line per check, e.g. ``✗ age: between [18, 100] — 3 rows fail``."""
    lines = []
    for check in report["checks"]:
        mark = "✓" if check["passed"] else "✗"
        subject = f"{check['column']}: " if check["column"] is not None else ""
        line = f"{mark} {subject}{check['check']}"
        if not check["passed"]:
            parts = []
            if n := check["failing_rows"]:
                failing = f"{n} row fails" if n == 1 else f"{n} rows fail"
                if check["examples"]:
                    failing += ", e.g. " + ", ".join(_shown(v) for v in check["examples"])
                parts.append(failing)
            if check.get("detail"):
                parts.append(check["detail"])
            line += (" — " + "; ".join(parts)) if parts else ""
        lines.append(line)
    return lines


# --- building the checks ---------------------------------------------------------------


def _row_count_check(expectation: Expectation, rows: int) -> _Check:
    bounds = expectation.row_count
    assert bounds is not None
    parts = [f"min {bounds.min}"] if bounds.min is not None else []
    parts += [f"max {bounds.max}"] if bounds.max is not None else []
    passed = (bounds.min is None or rows >= bounds.min) and (
        bounds.max is None or rows <= bounds.max
    )
    return _Check(
        " ".join(["row_count", *parts]), None, passed=passed,
        detail=None if passed else f"found {rows} rows",
    )


def _missing_column_check(column: str, known: list[str]) -> _Check:
    close = difflib.get_close_matches(column, known, n=1, cutoff=0.6)
    detail = "not in the table" + (f"; did you mean {close[0]!r}?" if close else "")
    return _Check("column exists", column, passed=False, detail=detail)


def _column_checks(expectation: Expectation, column: str, kind: str) -> list[_Check]:
    checks = []
    col = pl.col(column)
    if expectation.type is not None:
        passed = kind == expectation.type or (kind == "int" and expectation.type == "float")
        detail = None if passed else f"found {kind}"
        checks.append(_Check(f"type {expectation.type}", column, passed=passed, detail=detail))
    if expectation.not_null:
        checks.append(_Check("not_null", column, col.is_not_null()))
    if expectation.unique:
        checks.append(_Check("unique", column, ~col.is_duplicated() | col.is_null()))
    numbers = _as_number(col, kind)
    ranges = []
    if expectation.between is not None:
        lo, hi = expectation.between
        ranges.append((f"between [{_num(lo)}, {_num(hi)}]", numbers.is_between(lo, hi)))
    if expectation.min is not None:
        ranges.append((f"min {_num(expectation.min)}", numbers >= expectation.min))
    if expectation.max is not None:
        ranges.append((f"max {_num(expectation.max)}", numbers <= expectation.max))
    for label, within in ranges:
        # A value that is not a number (or NaN) is outside every range.
        expression = (within & numbers.is_not_nan()).fill_null(col.is_null())
        detail = None if kind in ("int", "float", "str") else f"{kind} column, not numeric"
        checks.append(_Check(label, column, expression, detail=detail))
    if expectation.allowed is not None:
        label = "in " + json.dumps(expectation.allowed, default=str, ensure_ascii=False)
        checks.append(_Check(label, column, _is_in(col, kind, expectation.allowed)))
    if expectation.regex is not None:
        checks.append(
            _Check(f"regex '{expectation.regex}'", column, _matches(col, expectation.regex))
        )
    return checks


def _as_number(col: pl.Expr, kind: str) -> pl.Expr:
    if kind in ("int", "float"):
        return col.cast(pl.Float64)
    if kind == "str":
        return col.str.strip_chars().cast(pl.Float64, strict=False)
    return pl.lit(None, dtype=pl.Float64)  # dates, bools…: never in a numeric range


def _is_in(col: pl.Expr, kind: str, allowed: list[Any]) -> pl.Expr:
    allowed = [value for value in allowed if value is not None]
    numbers = [v for v in allowed if isinstance(v, int | float) and not isinstance(v, bool)]
    if kind in ("int", "float") and len(numbers) == len(allowed):
        return col.cast(pl.Float64).is_in([float(v) for v in numbers]).fill_null(True)
    if kind == "bool" and all(isinstance(v, bool) for v in allowed):
        return col.is_in(allowed).fill_null(True)
    # Otherwise compare the text forms: `in: [1, 2]` on a str column accepts "1" and "2".
    texts = [_text(value) for value in allowed]
    return col.cast(pl.String).is_in(texts).fill_null(True)


def _matches(col: pl.Expr, pattern: str) -> pl.Expr:
    text = col.cast(pl.String)
    try:
        pl.Series([""]).str.contains(pattern)
    except pl.exceptions.ComputeError:
        # Rust's regex has no look-around or back-references: use Python's re instead.
        compiled = re.compile(pattern)
        return text.map_elements(
            lambda v: compiled.search(v) is not None, return_dtype=pl.Boolean
        ).fill_null(True)
    return text.str.contains(pattern).fill_null(True)


# --- running them ----------------------------------------------------------------------


def _run_pandera(frame: pl.DataFrame, checks: list[_Check]) -> None:
    """Validate lazily with Pandera and copy each check's failures back onto it."""
    if not checks:
        return
    import pandera.polars as pandera  # ~1 s to import: only when there are rows to check

    by_column: dict[str, list[_Check]] = {}
    for check in checks:
        assert check.column is not None
        by_column.setdefault(check.column, []).append(check)
    schema = pandera.DataFrameSchema(
        {name: _pandera_column(pandera, column_checks)
         for name, column_checks in by_column.items()},
    )
    try:
        schema.validate(frame, lazy=True)
    except pandera.errors.SchemaErrors as errors:
        _record_failures(frame, by_column, errors.failure_cases)


def _pandera_column(pandera: Any, checks: list[_Check]) -> pandera.Column:
    def element_check(expression: pl.Expr) -> Any:
        return lambda data: data.lazyframe.select(expression)

    return pandera.Column(
        nullable=True,
        checks=[pandera.Check(element_check(c.expression), name=c.label) for c in checks],
    )


def _record_failures(
    frame: pl.DataFrame, by_column: dict[str, list[_Check]], failures: pl.DataFrame
) -> None:
    failures = failures.filter(pl.col("check_number").is_not_null())
    for (column, number), cases in failures.partition_by(
        "column", "check_number", as_dict=True
    ).items():
        check = by_column[str(column)][int(number)]
        check.passed = False
        indices = cases["index"].drop_nulls()
        if indices.is_empty():  # the check itself raised: Pandera reports the exception text
            error = str(cases["failure_case"][0]).splitlines()[0]
            check.detail = f"check could not run: {error}"
            continue
        check.failing_rows = len(indices)
        failing = frame[check.column].gather(indices).drop_nulls().unique(maintain_order=True)
        check.examples = [_jsonable(v) for v in failing.head(MAX_EXAMPLES).to_list()]


# --- values ----------------------------------------------------------------------------


def _as_dict(check: _Check) -> dict[str, Any]:
    report = {"check": check.label, "column": check.column, "passed": check.passed,
              "failing_rows": check.failing_rows, "examples": check.examples}
    if check.detail is not None:
        report["detail"] = check.detail
    return report


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def _text(value: Any) -> str:
    """A value as polars writes it when casting to text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # "nan", "inf": strict JSON has no such numbers
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)
