"""The check language: parsing, canonical rendering, errors with columns, evaluation."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import pytest

from dsops.core.errors import UsageError
from dsops.gates.expr import (
    BinOp,
    BoolOp,
    Call,
    Compare,
    MappingSource,
    Name,
    Neg,
    NoData,
    Not,
    Number,
    UnknownName,
    evaluate,
    parse_check,
    parse_checks,
    validate,
)


def run(text: str, values: Mapping[str, float | None] | None = None, **kwargs: Any) -> Any:
    return evaluate(parse_check(text), MappingSource(values or {}, **kwargs))


def value_of(text: str, **values: float) -> Any:
    """The value of an arithmetic expression, read through a truthy check's outcome."""
    return run(text, values).value


# --------------------------------------------------------------------------- parsing


def test_precedence_of_arithmetic() -> None:
    a, b, c = Name(None, "a"), Name(None, "b"), Name(None, "c")
    assert parse_check("a + b * c").node == BinOp(a, "+", BinOp(b, "*", c))
    assert parse_check("(a + b) * c").node == BinOp(BinOp(a, "+", b), "*", c)
    assert parse_check("a - b - c").node == BinOp(BinOp(a, "-", b), "-", c)
    assert parse_check("a / b * c").node == BinOp(BinOp(a, "/", b), "*", c)
    assert parse_check("-a * b").node == BinOp(Neg(a), "*", b)
    assert parse_check("a + b < c * 2").node == Compare(BinOp(a, "+", b), "<", BinOp(c, "*", Number(2)))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("10 - 4 - 3", 3),
        ("8 / 4 / 2", 1),
        ("2 * -3 + 1", -5),
        ("-(2 + 3)", -5),
        ("- -4", 4),
        ("1e-3 * 1000", 1),
        ("1.5E+2 / .5", 300),
        ("x * 2 - y", 3),
    ],
)
def test_arithmetic(text: str, expected: float) -> None:
    assert value_of(text, x=2.5, y=2) == pytest.approx(expected)


def test_numbers_keep_int_or_float() -> None:
    assert parse_check("row_count >= 1000").node == Compare(Name(None, "row_count"), ">=", Number(1000))
    assert isinstance(parse_check("x < 1000").node.right.value, int)  # type: ignore[union-attr]
    assert parse_check("x < 1e-3").node.right == Number(0.001)  # type: ignore[union-attr]
    assert parse_check("x > -0.5").node.right == Number(-0.5)  # type: ignore[union-attr]


def test_boolean_precedence() -> None:
    a, b, c = (Compare(Name(None, n), ">", Number(0)) for n in "abc")
    assert parse_check("a > 0 or b > 0 and c > 0").node == BoolOp("or", (a, BoolOp("and", (b, c))))
    assert parse_check("(a > 0 or b > 0) and c > 0").node == BoolOp("and", (BoolOp("or", (a, b)), c))
    assert parse_check("not a > 0 and b > 0").node == BoolOp("and", (Not(a), b))
    assert parse_check("a > 0 and b > 0 and c > 0").node == BoolOp("and", (a, b, c))
    assert parse_check("a > 0 and (b > 0 and c > 0)").node == BoolOp("and", (a, b, c))


def test_scopes_calls_and_arguments() -> None:
    node = parse_check("auc >= champion.auc - 0.01").node
    assert node == Compare(Name(None, "auc"), ">=", BinOp(Name("champion", "auc"), "-", Number(0.01)))
    assert parse_check("demographic_parity_difference(by=sex) <= 0.10").node.left == Call(  # type: ignore[union-attr]
        "demographic_parity_difference", (), (("by", "sex"),)
    )
    assert parse_check("psi(income, bins=10) < 0.2").calls() == (Call("psi", ("income",), (("bins", 10),)),)
    assert parse_check("expectations(data:credit)").node == Call("expectations", ("data:credit",))
    assert parse_check("expectations(data:credit@3)").node == Call("expectations", ("data:credit@3",))
    assert parse_check("expectations(data:credit-risk@prod)").node == Call(
        "expectations", ("data:credit-risk@prod",)
    )
    assert parse_check("""f('a b', "x'y", t=-2, u='it\\'s')""").node == Call(
        "f", ("a b", "x'y"), (("t", -2), ("u", "it's"))
    )
    assert parse_check("champion.demographic_parity_difference(by=sex) < 0.1").calls() == (
        Call("demographic_parity_difference", (), (("by", "sex"),), scope="champion"),
    )
    assert parse_check("f()").node == Call("f")


def test_introspection_without_evaluating() -> None:
    check = parse_check("auc >= champion.auc - 0.01 and psi(income, bins=10) < drift_limit")
    assert check.names() == {(None, "auc"), ("champion", "auc"), (None, "drift_limit")}
    assert [c.name for c in check.calls()] == ["psi"]
    assert check.calls()[0].kwargs_dict() == {"bins": 10}
    assert parse_check("auc >= 0.8").is_comparison and not parse_check("expectations(data:x)").is_comparison


def test_parse_checks_splits_on_top_level_commas_only() -> None:
    checks = parse_checks("error_rate < 0.01, p99_latency_ms < 50, psi(prediction, bins=5) < 0.2")
    assert [c.text for c in checks] == [
        "error_rate < 0.01", "p99_latency_ms < 50", "psi(prediction, bins=5) < 0.2",
    ]
    assert checks[2].calls() == (Call("psi", ("prediction",), (("bins", 5),)),)
    assert [c.text for c in parse_checks("  f(a, 'x, y') > 1,g(b)  ")] == ["f(a, 'x, y') > 1", "g(b)"]
    assert len(parse_checks("auc >= 0.8")) == 1


@pytest.mark.parametrize(
    "text",
    [
        "auc >= champion.auc - 0.01",
        "a - (b - c)",
        "a / (b * c)",
        "(a + b) * -c",
        "a - -0.5 >= -x",
        "not (a > 1 or b > 2) and c",
        "not not expectations(data:credit@3)",
        "(a > 1 or b > 2) and (c > 3 or d < 4)",
        "psi(income, bins=10) < 0.2",
        "f('a b', 'and', 'data:x@0', \"it's\", 1e+20, k=-3) != 2",
        "champion.demographic_parity_difference(by=sex) <= 0.1",
        "x <= 1e-10",
    ],
)
def test_canonical_text_round_trips(text: str) -> None:
    check = parse_check(text)
    assert parse_check(str(check)).node == check.node
    assert str(parse_check(str(check))) == str(check)


def test_canonical_text_is_normalised() -> None:
    assert str(parse_check("  auc>=champion.auc-0.010 ")) == "auc >= champion.auc - 0.01"
    assert str(parse_check("((a)) * (b + c)")) == "a * (b + c)"
    assert str(parse_check("demographic_parity_difference( by = sex )<=0.10")) == (
        "demographic_parity_difference(by=sex) <= 0.1"
    )
    assert parse_check("  auc>=0.8 ").text == "auc>=0.8"


# --------------------------------------------------------------------------- syntax errors


@pytest.mark.parametrize(
    ("text", "column", "expected"),
    [
        ("auc >= >0.8", 8, "expected a number, name or '('"),
        ("(auc >= 0.8", 12, "expected ')' for the '(' of column 1"),
        ("auc >= 0.8)", 11, "unmatched ')'"),
        ("auc >= 0.8 x", 12, "expected an operator, 'and', 'or' or the end"),
        ("auc # 0.8", 5, "unexpected character '#'"),
        ("a && b", 3, "use 'and'"),
        ("f(by=a, by=b) < 1", 9, "keyword argument 'by' is repeated"),
        ("f(by=a, b) < 1", 9, "positional argument after a keyword argument"),
        ("psi(x", 6, "expected ',' or ')'"),
        ("a < b < c", 7, "cannot be chained"),
        ("auc = 0.8", 5, "'=' is written '=='"),
        ("(a < 1) + 2 > 0", 1, "not a condition"),
        ("(a < 1) < 2", 1, "not a condition"),
        ("1 < (a < 1)", 5, "not a condition"),
        ("-(a or b)", 2, "not a condition"),
        ("'x' < 1", 1, "only allowed as function arguments"),
        ("f('x) > 1", 10, "unterminated string"),
        ("1e < 2", 1, "invalid number '1e'"),
        ("f(data:) > 1", 8, "expected a dataset name after 'data:'"),
        ("f(data:x@0)", 3, "versions start at 1"),
        ("a.b.c > 1", 4, "only one scope"),
        ("auc >=", 7, "expected a number, name or '('"),
        ("not", 4, "expected a number, name or '('"),
        ("auc and or x", 9, "expected a number, name or '('"),
    ],
)
def test_syntax_errors_point_at_the_column(text: str, column: int, expected: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_check(text)
    message = info.value.message
    first, shown, caret = message.split("\n")
    assert first.startswith(f"invalid check {text!r}: ")
    assert expected in first
    assert first.endswith(f"at column {column}")
    assert shown == f"  {text}"
    assert caret == "  " + " " * (column - 1) + "^"


def test_syntax_error_message_has_the_documented_shape() -> None:
    with pytest.raises(UsageError) as info:
        parse_check("auc >= >0.8")
    assert str(info.value) == (
        "invalid check 'auc >= >0.8': expected a number, name or '(' at column 8\n"
        "  auc >= >0.8\n"
        "         ^"
    )


def test_empty_checks_and_stray_commas() -> None:
    for text in ("", "   ", "\n"):
        with pytest.raises(UsageError, match="empty"):
            parse_check(text)
    with pytest.raises(UsageError, match="expected one check, found a ','"):
        parse_check("a < 1, b < 2")
    with pytest.raises(UsageError, match="at column 7"):
        parse_checks("a < 1, ")  # the text is stripped: 'a < 1,'
    with pytest.raises(UsageError, match="at column 8"):
        parse_checks("a < 1, , b > 2")


def test_columns_in_a_multi_line_check_stay_aligned() -> None:
    with pytest.raises(UsageError) as info:
        parse_check("auc >= 0.8 and\n  p99 < ")
    assert info.value.message.endswith("at column 23\n  auc >= 0.8 and   p99 <\n" + " " * 24 + "^")


# --------------------------------------------------------------------------- evaluation


@pytest.mark.parametrize(
    ("op", "value", "passed"),
    [
        (">=", 0.80, True), (">=", 0.7999, False), (">=", 0.81, True),
        (">", 0.80, False), (">", 0.8001, True), (">", 0.79, False),
        ("<=", 0.80, True), ("<=", 0.8001, False), ("<=", 0.79, True),
        ("<", 0.80, False), ("<", 0.7999, True), ("<", 0.81, False),
        ("==", 0.80, True), ("==", 0.8001, False),
        ("!=", 0.80, False), ("!=", 0.7999, True),
    ],
)
def test_every_comparison_at_pass_fail_and_boundary(op: str, value: float, passed: bool) -> None:
    outcome = run(f"auc {op} 0.80", {"auc": value})
    assert outcome.passed is passed
    assert (outcome.value, outcome.op, outcome.threshold) == (value, op, 0.8)


def test_outcome_detail_and_dict() -> None:
    outcome = run("auc >= champion.auc - 0.01", {"auc": 0.83}, scopes={"champion": {"auc": 0.83}})
    assert outcome.passed is True and outcome.ok
    assert outcome.check == "auc >= champion.auc - 0.01"
    assert outcome.threshold == pytest.approx(0.82)
    assert outcome.detail == "0.83 >= 0.82"
    failed = run("auc >= 0.8", {"auc": 0.79})
    assert failed.detail == "0.79 is not >= 0.8"
    assert not failed.ok
    assert json.loads(json.dumps(failed.to_dict())) == {
        "check": "auc >= 0.8", "passed": False, "value": 0.79, "op": ">=", "threshold": 0.8,
        "detail": "0.79 is not >= 0.8", "parts": [],
    }


def test_detail_shows_more_digits_when_short_forms_look_equal() -> None:
    assert run("auc >= 0.8", {"auc": 0.79999999}).detail == "0.79999999 is not >= 0.8"


def test_float_rounding_does_not_flip_a_verdict() -> None:
    # 0.1 + 0.2 is 0.30000000000000004 and 0.3 - 0.1 is 0.19999999999999998 in binary floating point.
    values = {"x": 0.1, "y": 0.2, "z": 0.3}
    assert run("x + y <= 0.3", values).passed is True
    assert run("x + y == z", values).passed is True
    assert run("x + y > 0.3", values).passed is False
    assert run("z - x >= 0.2", values).passed is True
    assert run("z - x < 0.2", values).passed is False
    assert run("z - x != 0.2", values).passed is False
    champion = {"champion": {"auc": 0.83}}
    assert run("auc > champion.auc - 0.02", {"auc": 0.81}, scopes=champion).passed is False
    assert run("auc >= champion.auc - 0.02", {"auc": 0.8099}, scopes=champion).passed is False


def test_functions_receive_positional_keyword_and_data_arguments() -> None:
    seen: list[tuple[Any, ...]] = []

    def psi(column: str, bins: int = 10) -> float:
        seen.append(("psi", column, bins))
        return {"income": 0.3, "prediction": 0.1}[column]

    def expectations(ref: str) -> bool:
        seen.append(("expectations", ref))
        return ref == "data:credit@3"

    functions = {"psi": psi, "expectations": expectations, "champion.dpd": lambda by: 0.04}
    assert run("psi(income, bins=20) > 0.25", functions=functions).passed is True
    assert run("psi(prediction) < 0.2", functions=functions).passed is True
    assert run("champion.dpd(by=sex) <= 0.05", functions=functions).passed is True
    good = run("expectations(data:credit@3)", functions=functions)
    bad = run("expectations(data:credit)", functions=functions)
    assert (good.passed, good.value, good.op) == (True, True, None)
    assert good.detail == "expectations(data:credit@3) is true"
    assert (bad.passed, bad.detail) == (False, "expectations(data:credit) is false")
    assert seen == [
        ("psi", "income", 20), ("psi", "prediction", 10), ("expectations", "data:credit@3"),
        ("expectations", "data:credit"),
    ]


def test_bare_numbers_are_truthy_when_not_zero() -> None:
    assert run("row_count", {"row_count": 12}).passed is True
    assert run("row_count", {"row_count": 0}).passed is False
    assert run("not row_count", {"row_count": 0}).passed is True


def test_and_or_not() -> None:
    values = {"error_rate": 0.02, "p99_latency_ms": 40.0}
    both = run("error_rate < 0.01 and p99_latency_ms < 50", values)
    either = run("error_rate < 0.01 or p99_latency_ms < 50", values)
    assert both.passed is False and either.passed is True
    assert (both.value, both.op, both.threshold) == (None, None, None)
    assert both.detail == "[error_rate < 0.01: 0.02 is not < 0.01] and [p99_latency_ms < 50: 40 < 50]"
    assert [p.passed for p in both.parts] == [False, True]
    assert run("not error_rate < 0.01", values).passed is True
    assert run("not (error_rate < 0.01 or p99_latency_ms < 50)", values).passed is False
    assert json.loads(json.dumps(both.to_dict()))["parts"][0]["value"] == 0.02


def test_undecided_parts_follow_three_valued_logic() -> None:
    values = {"a": 1.0, "nan": math.nan}
    assert run("a > 0 or nan > 0", values).passed is True
    assert run("a < 0 and nan > 0", values).passed is False
    assert run("a > 0 and nan > 0", values).passed is None
    assert run("a < 0 or nan > 0", values).passed is None
    assert run("not nan > 0", values).passed is None


def test_nan_is_undecided_not_a_crash() -> None:
    outcome = run("psi(income) < 0.2", functions={"psi": lambda column: math.nan})
    assert outcome.passed is None and not outcome.ok
    assert outcome.detail == "psi(income) is NaN"
    assert outcome.to_dict()["value"] is None
    json.dumps(outcome.to_dict(), allow_nan=False)
    bare = run("drifted_share", {"drifted_share": math.nan})
    assert (bare.passed, bare.detail) == (None, "drifted_share is NaN")
    assert run("auc >= champion.auc", {"auc": 0.9}, scopes={"champion": {"auc": math.nan}}).detail == (
        "champion.auc is NaN"
    )


def test_infinite_values_compare_and_serialise() -> None:
    outcome = run("psi(x) < 0.2", functions={"psi": lambda column: math.inf})
    assert outcome.passed is False
    assert outcome.to_dict()["value"] is None
    json.dumps(outcome.to_dict(), allow_nan=False)


def test_division_by_zero_is_undecided() -> None:
    outcome = run("errors / requests < 0.01", {"errors": 0, "requests": 0})
    assert outcome.passed is None
    assert outcome.detail == "division by zero in errors / requests"
    assert run("errors / requests < 0.01", {"errors": 1, "requests": 1000}).passed is True


def test_no_data_is_undecided() -> None:
    class EmptyWindow:
        def value(self, name: str, scope: str | None) -> float | None:
            raise NoData

        def call(self, name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any], scope: Any) -> Any:
            raise NoData("no predictions in the last 10 minutes")

    outcome = evaluate(parse_check("error_rate < 0.01"), EmptyWindow())
    assert (outcome.passed, outcome.detail, outcome.value) == (None, "no data", None)
    assert evaluate(parse_check("psi(prediction) < 0.2"), EmptyWindow()).detail == (
        "no predictions in the last 10 minutes"
    )
    missing = run("accuracy < 0.75", {"accuracy": None})
    assert (missing.passed, missing.detail) == (None, "no value for accuracy")


def test_unknown_names_suggest_the_closest_known_one() -> None:
    source = MappingSource({"auc": 0.9, "accuracy": 0.8}, {"psi": lambda c: 0.1}, {"champion": {"auc": 0.9}})
    cases = {
        "acu >= 0.8": "unknown metric 'acu' in check 'acu >= 0.8' — did you mean 'auc'?",
        "psy(income) < 0.2": "unknown function 'psy' in check 'psy(income) < 0.2' — did you mean 'psi'?",
        "auc > champoin.auc": (
            "unknown scope 'champoin' in check 'auc > champoin.auc' — did you mean 'champion'?"
        ),
        "zzz > 1": "unknown metric 'zzz' in check 'zzz > 1' (known: accuracy, auc)",
    }
    for text, message in cases.items():
        with pytest.raises(UnknownName) as info:
            evaluate(parse_check(text), source)
        assert info.value.message == message
        assert isinstance(info.value, UsageError) and info.value.exit_code == 2
        with pytest.raises(UnknownName) as early:
            validate(parse_check(text), source)
        assert early.value.message == message
    validate(parse_check("auc >= champion.auc and psi(x) < 0.2"), source)


def test_unknown_name_raises_even_when_the_other_side_has_no_data() -> None:
    with pytest.raises(UnknownName, match="'acu'"):
        run("accuracy > acu", {"accuracy": None})


def test_validate_computes_nothing() -> None:
    calls: list[str] = []
    source = MappingSource({"auc": 0.9}, {"psi": lambda c: calls.append(c) or 0.1})
    validate(parse_check("psi(x) < auc"), source)
    assert calls == []


def test_a_source_without_known_names_still_explains_unknown_names() -> None:
    class Bare:
        def value(self, name: str, scope: str | None) -> float | None:
            return None

        def call(self, name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any], scope: Any) -> Any:
            return None

    with pytest.raises(UnknownName, match=r"^unknown metric 'auc' in check 'auc > 1'$"):
        evaluate(parse_check("auc > 1"), Bare())
    validate(parse_check("auc > 1"), Bare())  # nothing to validate against


def test_numpy_values_are_accepted() -> None:
    np = pytest.importorskip("numpy")
    assert run("auc >= 0.8", {"auc": np.float64(0.85)}).value == 0.85
    assert run("ok()", functions={"ok": lambda: np.bool_(True)}).passed is True


def test_a_non_numeric_value_is_a_clear_error() -> None:
    with pytest.raises(TypeError, match="auc returned 'high'"):
        run("auc > 1", {"auc": "high"})  # type: ignore[dict-item]


@pytest.mark.parametrize(
    "imports",
    [
        "from dsops.gates.expr import evaluate, CheckOutcome",
        "import dsops.gates.expr_eval; from dsops.gates.expr import evaluate, MappingSource",
        "from dsops.gates.expr_eval import evaluate, UnknownName, NoData",
    ],
)
def test_evaluation_is_importable_from_the_language_module_in_any_order(imports: str) -> None:
    import subprocess
    import sys

    subprocess.run([sys.executable, "-c", imports], check=True)
