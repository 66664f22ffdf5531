"""Human references: ``credit`` (latest), ``credit@3`` (version), ``credit-risk@champion``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from dsops.core.errors import UsageError

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def check_name(name: str, kind: str = "name") -> str:
    """Return ``name`` if it is a valid dsops name, else raise a UsageError saying why."""
    if not NAME_RE.match(name):
        raise UsageError(
            f"invalid {kind} {name!r}: use letters, digits, '.', '_' or '-', "
            "starting with a letter or digit, at most 128 characters"
        )
    return name


@dataclass(frozen=True)
class Ref:
    """``name``, ``name@N`` or ``name@alias``; ``version`` and ``alias`` are never both set."""

    name: str
    version: int | None = None
    alias: str | None = None

    @classmethod
    def parse(cls, text: str, kind: str = "reference") -> Ref:
        """Parse a reference; a malformed one is a UsageError naming the expected shape."""
        text = text.strip()
        if text.startswith("data:"):
            text = text[5:]
        name, sep, tag = text.partition("@")
        if not name or (sep and not tag):
            raise UsageError(f"invalid {kind} {text!r}: expected NAME or NAME@VERSION")
        check_name(name, kind)
        if not sep:
            return cls(name)
        if tag.isdigit():
            version = int(tag)
            if version < 1:
                raise UsageError(f"invalid {kind} {text!r}: versions start at 1")
            return cls(name, version=version)
        check_name(tag, "alias")
        return cls(name, alias=tag)

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}@{self.version}"
        if self.alias is not None:
            return f"{self.name}@{self.alias}"
        return self.name
