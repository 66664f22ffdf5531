"""References users type: ``credit``, ``credit@3``, ``credit-risk@champion``."""

from __future__ import annotations

import pytest

from dsops.core.errors import UsageError
from dsops.core.refs import Ref, check_name


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("credit", Ref("credit")),
        ("credit@3", Ref("credit", version=3)),
        ("credit-risk@champion", Ref("credit-risk", alias="champion")),
        ("data:credit@2", Ref("credit", version=2)),
        ("  credit@12  ", Ref("credit", version=12)),
        ("a.b_c-9@v2", Ref("a.b_c-9", alias="v2")),
        ("x" * 128, Ref("x" * 128)),
    ],
)
def test_valid_references_parse(text: str, expected: Ref) -> None:
    assert Ref.parse(text) == expected


@pytest.mark.parametrize("text", ["credit", "credit@3", "credit-risk@champion"])
def test_str_round_trips(text: str) -> None:
    assert str(Ref.parse(text)) == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "invalid reference '': expected NAME or NAME@VERSION"),
        ("credit@", "invalid reference 'credit@': expected NAME or NAME@VERSION"),
        ("@3", "invalid reference '@3': expected NAME or NAME@VERSION"),
        ("credit@0", "invalid reference 'credit@0': versions start at 1"),
        ("bad name@1", "invalid reference 'bad name': use letters, digits"),
        ("-credit", "invalid reference '-credit': use letters, digits"),
        ("x" * 129, "at most 128 characters"),
        ("credit@bad alias", "invalid alias 'bad alias'"),
        ("credit@1@2", "invalid alias '1@2'"),
    ],
)
def test_invalid_references_say_what_is_expected(text: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        Ref.parse(text)
    assert message in str(info.value)
    assert info.value.exit_code == 2


def test_kind_appears_in_the_message() -> None:
    with pytest.raises(UsageError, match=r"invalid dataset reference 'a b'"):
        Ref.parse("a b", kind="dataset reference")
    with pytest.raises(UsageError, match=r"invalid project name 'my project'"):
        check_name("my project", "project name")
    assert check_name("ok-name") == "ok-name"
