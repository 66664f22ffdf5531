"""The run filter and sort language of ``dsops runs ls``: parsed by hand into a small AST.

    metrics.auc > 0.8 and (params.model = 'lgbm' or params.model like 'xgb%')
    not status in ('failed', 'killed') and started_at >= '2026-01-01'

A comparison is ``field OP literal``. Fields are ``metrics.NAME`` (latest value),
``params.NAME`` and the run attributes in ``RUN_ATTRIBUTES``; ``and`` binds tighter than
``or``; ``not`` negates. ``filter_sql`` compiles the AST to SQL, where nothing of the text
appears except as a bound parameter. This module imports no SQLAlchemy, so a malformed
filter is reported before the store is opened.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal, TypeAlias

from dsops.core.clock import as_utc
from dsops.core.errors import UsageError

Scope = Literal["metrics", "params", "attribute"]
Value: TypeAlias = str | int | float | bool
RUN_ATTRIBUTES = ("id", "name", "status", "kind", "created_by", "started_at", "git_commit")
OPERATORS = ("=", "==", "!=", "<", "<=", ">", ">=", "like", "not like", "in", "not in")
_SCOPES = ("metrics", "params")
_KEYWORDS = {"and", "or", "not", "like", "in", "true", "false", "asc", "desc"}
_EXPECT_OP = "an operator (=, !=, <, <=, >, >=, like, in)"
_EXPECT_FIELD = "a field (metrics.NAME, params.NAME or a run attribute)"


# ----------------------------------------------------------------------------- the AST


@dataclass(frozen=True)
class Field:
    """What a comparison reads: a metric, a param, or a column of the run."""

    scope: Scope
    name: str

    def __str__(self) -> str:
        return self.name if self.scope == "attribute" else f"{self.scope}.{self.name}"


@dataclass(frozen=True)
class Comparison:
    """``field op value``; ``value`` is a tuple for ``in`` / ``not in``."""

    field: Field
    op: str  # one of OPERATORS, "==" normalised to "="
    value: Value | tuple[Value, ...]


@dataclass(frozen=True)
class And:
    """Every part holds."""

    parts: tuple[Filter, ...]


@dataclass(frozen=True)
class Or:
    """At least one part holds."""

    parts: tuple[Filter, ...]


@dataclass(frozen=True)
class Not:
    """The operand does not hold (runs lacking a metric or param included)."""

    operand: Filter


Filter: TypeAlias = Comparison | And | Or | Not


@dataclass(frozen=True)
class SortKey:
    """One term of ``--sort``: a field, ascending unless ``descending``."""

    field: Field
    descending: bool = False


# ------------------------------------------------------------------------- the tokens


@dataclass(frozen=True)
class _Token:
    kind: Literal["word", "field", "number", "string", "op", "(", ")", ",", "end"]
    text: str  # as written, for messages
    value: Any  # word: lower-cased; field: (scope, name); number/string: the value
    pos: int  # 0-based offset


_NAME_CHARS = re.compile(r"[\w\-./]+")
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "t": "\t", "r": "\r"}


class _Syntax(Exception):
    """A parse failure at ``pos``; turned into a UsageError with a caret by the caller."""

    def __init__(self, pos: int, message: str) -> None:
        super().__init__(message)
        self.pos, self.message = pos, message


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c in "(),":
            tokens.append(_Token(c, c, c, i))  # type: ignore[arg-type]
            i += 1
        elif c in "=!<>":
            op = text[i:i + 2] if text[i:i + 2] in ("==", "!=", "<=", ">=") else c
            if op == "!":
                raise _Syntax(i, "expected '!=' (a lone '!' is not an operator)")
            tokens.append(_Token("op", op, "=" if op == "==" else op, i))
            i += len(op)
        elif c in "'\"":
            value, end = _read_string(text, i)
            tokens.append(_Token("string", text[i:end], value, i))
            i = end
        elif (number := _NUMBER.match(text, i)) and (c.isdigit() or c in "+-."):
            end = number.end()
            if end < n and (text[end].isalnum() or text[end] in "_."):
                raise _Syntax(i, f"expected a number, got {_word_at(text, i)!r}")
            literal = number.group()
            is_int = not any(ch in literal for ch in ".eE")
            tokens.append(_Token("number", literal, int(literal) if is_int else float(literal), i))
            i = end
        elif c.isalpha() or c == "_":
            tokens.append(_read_word(text, i))
            i = tokens[-1].pos + len(tokens[-1].text)
        elif c == "`":
            raise _Syntax(i, "expected 'metrics.' or 'params.' before a backquoted name")
        else:
            raise _Syntax(i, f"unexpected character {c!r}")
    tokens.append(_Token("end", "the end", None, n))
    return tokens


def _word_at(text: str, i: int) -> str:
    match = re.compile(r"[^\s(),=!<>]+").match(text, i)
    return match.group() if match else text[i:i + 1]


def _read_string(text: str, start: int) -> tuple[str, int]:
    quote, out, i = text[start], [], start + 1
    while i < len(text):
        c = text[i]
        if c == quote:
            return "".join(out), i + 1
        if c == "\\" and i + 1 < len(text):
            # Unknown escapes keep their backslash, so 'a\%' reaches LIKE as an escaped %.
            nxt = text[i + 1]
            out.append(_ESCAPES.get(nxt, "\\" + nxt))
            i += 2
            continue
        out.append(c)
        i += 1
    raise _Syntax(start, f"unterminated string: expected a closing {quote}")


def _read_word(text: str, start: int) -> _Token:
    end = _NAME_CHARS.match(text, start).end()  # type: ignore[union-attr]
    word = text[start:end]
    if "." not in word and not (end < len(text) and text[end] == "`"):
        return _Token("word", word, word.lower(), start)
    scope, _, name = word.partition(".")
    if scope.lower() not in _SCOPES:
        close = difflib.get_close_matches(scope.lower(), _SCOPES, n=1)
        hint = f" — did you mean '{close[0]}.{name}'?" if close else ""
        raise _Syntax(start, f"unknown field {word!r}: expected {_EXPECT_FIELD}{hint}")
    if not name and end < len(text) and text[end] == "`":
        close_at = end + 1
        while True:  # a doubled backquote stands for one
            close_at = text.find("`", close_at)
            if close_at == -1:
                raise _Syntax(end, "unterminated backquoted name: expected a closing `")
            if text[close_at + 1:close_at + 2] != "`":
                break
            close_at += 2
        name, end = text[end + 1:close_at].replace("``", "`"), close_at + 1
    if not name:
        raise _Syntax(end, f"expected a {scope.lower()[:-1]} name after {word!r}")
    return _Token("field", text[start:end], (scope.lower(), name), start)


# ------------------------------------------------------------------------- the parser


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.i = 0

    @property
    def tok(self) -> _Token:
        return self.tokens[self.i]

    def at_word(self, *words: str) -> bool:
        return self.tok.kind == "word" and self.tok.value in words

    def take(self) -> _Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def fail(self, expected: str, token: _Token | None = None) -> _Syntax:
        token = token or self.tok
        got = "" if token.kind == "end" else f", got {token.text!r}"
        return _Syntax(token.pos, f"expected {expected}{got}")

    def expr(self) -> Filter:
        parts = [self.conjunction()]
        while self.at_word("or"):
            self.take()
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def conjunction(self) -> Filter:
        parts = [self.negation()]
        while self.at_word("and"):
            self.take()
            parts.append(self.negation())
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def negation(self) -> Filter:
        if self.at_word("not"):
            self.take()
            return Not(self.negation())
        return self.atom()

    def atom(self) -> Filter:
        if self.tok.kind == "(":
            opening = self.take()
            inner = self.expr()
            if self.tok.kind != ")":
                raise self.fail(f"')' to close the '(' at column {opening.pos + 1}, "
                                "or 'and' / 'or'")
            self.take()
            return inner
        return self.comparison()

    def comparison(self) -> Comparison:
        previous = self.tokens[self.i - 1] if self.i else None
        after = f" after {previous.text!r}" if previous and previous.kind == "word" else ""
        start = self.tok
        target = self.field(f"{_EXPECT_FIELD}{after}")
        op_token = self.tok
        if op_token.kind == "op" or self.at_word("like", "in"):
            op = self.take().value
        elif self.at_word("not") and self.tokens[self.i + 1].kind == "word" \
                and self.tokens[self.i + 1].value in ("like", "in"):
            self.take()
            op = "not " + self.take().value
        else:
            raise self.fail(f"{_EXPECT_OP} after {start.text!r}")
        value_token = self.tok
        value = self.values(op_token) if op.endswith("in") else self.value(op_token)
        comparison = Comparison(target, op, value)
        problem = comparison_problem(comparison)
        if problem:
            raise _Syntax(value_token.pos if problem[1] else start.pos, problem[0])
        return comparison

    def field(self, expected: str) -> Field:
        token = self.tok
        if token.kind == "field":
            self.take()
            return Field(token.value[0], token.value[1])
        if token.kind == "word" and token.value not in _KEYWORDS:
            self.take()
            if token.value not in RUN_ATTRIBUTES:
                raise _Syntax(token.pos, _unknown_attribute(token.text))
            return Field("attribute", token.value)
        raise self.fail(expected)

    def value(self, op_token: _Token) -> Value:
        token = self.tok
        if token.kind in ("number", "string"):
            return self.take().value  # type: ignore[no-any-return]
        if self.at_word("true", "false"):
            return self.take().value == "true"
        hint = ""
        if token.kind == "word" and token.value not in _KEYWORDS:
            hint = f" (quote text: '{token.text}')"
        elif token.kind == "field":
            hint = " (a field can only be compared with a literal)"
        raise _Syntax(token.pos, f"expected a value after {op_token.text!r}{hint}"
                      + ("" if token.kind == "end" or hint else f", got {token.text!r}"))

    def values(self, op_token: _Token) -> tuple[Value, ...]:
        if self.tok.kind != "(":
            raise self.fail(f"'(' and a list of values after {op_token.text!r}")
        self.take()
        items = [self.value(op_token)]
        while self.tok.kind == ",":
            comma = self.take()
            items.append(self.value(comma))
        if self.tok.kind != ")":
            raise self.fail("',' or ')' in the list of values")
        self.take()
        return tuple(items)


def parse_filter(text: str) -> Filter:
    """Parse a ``--filter`` expression; a UsageError points a caret at what is wrong."""
    try:
        parser = _Parser(text)
        if parser.tok.kind == "end":
            raise _Syntax(0, f"empty filter: expected {_EXPECT_FIELD}")
        result = parser.expr()
        if parser.tok.kind != "end":
            raise parser.fail("'and', 'or' or the end of the filter")
        return result
    except _Syntax as exc:
        raise _with_caret("filter", text, exc) from None


def _with_caret(what: str, text: str, exc: _Syntax) -> UsageError:
    shown = re.sub(r"\s", " ", text)  # one line, same columns
    return UsageError(f"invalid {what} at column {exc.pos + 1}: {exc.message}\n"
                      f"  {shown}\n  {' ' * exc.pos}^")


def _unknown_attribute(name: str) -> str:
    close = difflib.get_close_matches(name.lower(), RUN_ATTRIBUTES, n=1)
    guess = f" — did you mean {close[0]!r}?" if close else ""
    return (f"unknown run attribute {name!r}{guess} (known: {', '.join(RUN_ATTRIBUTES)}; "
            "or metrics.NAME, params.NAME)")


# --------------------------------------------------------------------- types of values


def comparison_problem(c: Comparison) -> tuple[str, bool] | None:
    """What is wrong with comparing this field with this value, and whether the value
    (True) or the field (False) is to blame; None when the comparison makes sense."""
    values = c.value if isinstance(c.value, tuple) else (c.value,)
    if c.field.scope == "attribute" and c.field.name not in RUN_ATTRIBUTES:
        return _unknown_attribute(c.field.name), False
    if c.op not in OPERATORS:
        return f"unknown operator {c.op!r} (known: {', '.join(OPERATORS)})", False
    if c.op.endswith("like") and not isinstance(c.value, str):
        return f"expected a quoted pattern after {c.op!r}, like 'lgbm%'", True
    if isinstance(c.value, bool) and c.op not in ("=", "!="):
        return f"expected a number or text after {c.op!r} (true/false take = and !=)", True
    if c.field.scope == "metrics":
        if c.op.endswith("like"):
            return f"{c.field} is a number: 'like' applies to text", False
        if any(isinstance(v, bool | str) for v in values):
            return f"expected a number: {c.field} is a number", True
    elif c.field.scope == "attribute" and c.field.name == "started_at":
        if c.op.endswith(("like", "in")):
            return f"started_at takes =, !=, <, <=, >, >= (not {c.op!r})", False
        if not isinstance(c.value, str) or parse_time(c.value) is None:
            return ("expected an ISO date or date-time in quotes after started_at, "
                    "like '2026-01-31' or '2026-01-31T12:00:00Z'"), True
    elif c.field.scope == "attribute" and any(not isinstance(v, str) for v in values):
        return f"expected quoted text: {c.field} is text", True
    return None


def parse_time(text: str) -> datetime | date | None:
    """A date stays a date (it stands for the whole day); a naive date-time is UTC."""
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return date.fromisoformat(text)
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return as_utc(moment)


# ---------------------------------------------------------------------------- sorting


def parse_sort(text: str) -> list[SortKey]:
    """Parse ``--sort "metrics.auc desc, started_at"`` (ascending by default)."""
    try:
        parser = _Parser(text)
        keys: list[SortKey] = []
        while parser.tok.kind != "end":
            if keys:
                parser.take()  # the comma
            target = parser.field("a field to sort by (metrics.NAME, params.NAME or a run "
                                  "attribute)")
            descending = parser.at_word("asc", "desc") and parser.take().value == "desc"
            keys.append(SortKey(target, descending))
            if parser.tok.kind not in (",", "end"):
                raise parser.fail("'asc', 'desc', ',' or the end of the sort")
        return keys
    except _Syntax as exc:
        raise _with_caret("sort", text, exc) from None


__all__ = [
    "OPERATORS", "RUN_ATTRIBUTES", "And", "Comparison", "Field", "Filter", "Not", "Or",
    "SortKey", "comparison_problem", "parse_filter", "parse_sort", "parse_time",
]
