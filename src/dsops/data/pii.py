"""Detect personal data (e-mail, phone, payment card, IBAN, IP, US SSN) in tables and text.

Findings carry counts only — never the matched values, which must not reach logs or
reports. Matching is vectorised: per kind, a cheap gate regex over the whole column, the
full pattern over the rows that pass it (polars, Rust regex engine), then a check digit
(Luhn for cards, mod-97 for IBANs) or a digit count (phones) confirms the candidates,
also vectorised. Measured on 1M rows (2-core machine, shared): an id column 0.22 s,
unique e-mails 0.37 s, city names 0.17 s, a free-text column with PII of every kind in
every row 0.76 s.

The patterns, and how they keep false positives low:

- email: ``local@domain.tld`` with a 2+ letter TLD.
- phone: needs a leading ``+`` country code (8–15 digits in all, E.164), or a national
  layout with separators: North American ``(555) 123-4567`` / ``555-123-4567`` /
  ``555.123.4567``, French-style ``06 12 34 56 78``, UK-style ``020 7946 0958``. A bare
  run of digits (ids, amounts) or an ISO date (``2024-01-15``) never matches; numeric
  columns are not scanned at all.
- card: 13–19 digits, contiguous or in 4-4-4-4 / Amex 4-6-5 groups separated by spaces
  or dashes, starting with 2–6 (the major networks' ranges), and Luhn-valid.
- iban: country code, 2 check digits, 11–30 alphanumerics (optionally in groups of 4),
  with a valid ISO 13616 mod-97 checksum.
- ipv4: four dotted octets 0–255, not part of a longer dotted run.
- ipv6: full or ``::``-compressed hex groups (``2001:db8::1``, ``fe80::1``, ``::1``);
  times (``10:30:00``) and MAC addresses have no ``::`` and fewer than 8 groups.
- us_ssn: ``AAA-GG-SSSS`` with dashes, excluding area 000, 666 and 900–999, group 00
  and serial 0000.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

if TYPE_CHECKING:
    import pyarrow as pa


_HEX = "[0-9A-Fa-f]{1,4}"
_OCTET = "(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"


@dataclass(frozen=True)
class _Kind:
    pattern: str
    # A simpler regex every match contains: a cheap first pass (one literal or a few
    # classes) keeps the full pattern off the rows that cannot match.
    gate: str
    # Vectorised confirmation of extracted matches; None: the pattern is enough.
    confirm: Callable[[pl.Series], np.ndarray] | None = None
    # Pattern extracting the matches to confirm, when `pattern` also matches context.
    extract: str | None = None


def _char_matrix(strings: pl.Series, width: int) -> np.ndarray:
    """ASCII strings of at most `width` chars, left-padded with '0', as (n, width) codes."""
    import pyarrow as pa

    if strings.is_empty():
        return np.zeros((0, width), dtype=np.uint8)
    # Equal-width ASCII strings lie back to back in the Arrow data buffer: no Python loop.
    padded = strings.str.pad_start(width, "0").to_arrow().cast(pa.large_string())
    start = padded.offset
    offsets = np.frombuffer(padded.buffers()[1], dtype=np.int64)[start : start + len(padded) + 1]
    data = np.frombuffer(padded.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    return data.reshape(len(padded), width)


def _without(strings: pl.Series, characters: str) -> pl.Series:
    # Literal replaces: 4x faster than one regex replace in polars.
    for character in characters:
        strings = strings.str.replace_all(character, "", literal=True)
    return strings


def _luhn_valid(matches: pl.Series) -> np.ndarray:
    digits = _without(matches, " -")
    lengths = digits.str.len_chars().to_numpy()
    usable = (lengths >= 13) & (lengths <= 19)
    digits = digits.set(pl.Series(~usable), "0")
    codes = _char_matrix(digits, 19).astype(np.int64) - ord("0")
    # Zero padding on the left does not change the sum; double every second digit from
    # the right, subtracting 9 when the double exceeds 9.
    doubled = np.arange(19)[::-1] % 2 == 1
    codes[:, doubled] *= 2
    codes[codes > 9] -= 9
    return usable & (codes.sum(axis=1) % 10 == 0)


def _iban_valid(matches: pl.Series) -> np.ndarray:
    compact = _without(matches, " ")
    lengths = compact.str.len_chars().to_numpy()
    usable = (lengths >= 15) & (lengths <= 34)
    rearranged = compact.str.slice(4) + compact.str.slice(0, 4)
    rearranged = rearranged.set(pl.Series(~usable), "0")
    codes = _char_matrix(rearranged, 34).astype(np.int64)
    remainder = np.zeros(len(codes), dtype=np.int64)
    for position in range(codes.shape[1]):
        code = codes[:, position]
        letter = code >= ord("A")
        # A letter counts as two digits (A=10 … Z=35), a digit as itself.
        value = np.where(letter, code - ord("A") + 10, code - ord("0"))
        remainder = (remainder * np.where(letter, 100, 10) + value) % 97
    return usable & (remainder == 1)


def _phone_digits_valid(matches: pl.Series) -> np.ndarray:
    count = _without(matches, " .-()+").str.len_chars().to_numpy()
    return (count >= 8) & (count <= 15)


_CARD = (
    r"(?:[2-6][0-9]{3}(?:[ -][0-9]{4}){3}|3[47][0-9]{2}[ -][0-9]{6}[ -][0-9]{5}"
    r"|[2-6][0-9]{12,18})\b"
)

_KINDS: dict[str, _Kind] = {
    "email": _Kind(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}", "@"),
    "phone": _Kind(
        r"\+[1-9][0-9]{0,2}(?:[ .-]?\(?[0-9]{1,4}\)?){2,6}\b"
        r"|(?:\([2-9][0-9]{2}\) ?|\b[2-9][0-9]{2}[ .-])[0-9]{3}[ .-][0-9]{4}\b"
        r"|\b0[1-9](?:[ .-][0-9]{2}){4}\b"
        r"|\b0[1-9][0-9]{1,3} [0-9]{3,4} ?[0-9]{3,4}\b",
        r"\+[0-9]|[0-9][ .)-]{1,2}[0-9]",
        _phone_digits_valid,
    ),
    # Not after a '+' (an international phone number without separators); the prefix
    # character is consumed, so extraction uses a word boundary instead.
    "card": _Kind(rf"(?:^|[^0-9A-Za-z+]){_CARD}", "[0-9]{4}", _luhn_valid, rf"\b{_CARD}"),
    "iban": _Kind(
        r"\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b", "[A-Z]{2}[0-9]{2}",
        _iban_valid,
    ),
    "ipv4": _Kind(
        rf"(?:^|[^0-9.]){_OCTET}(?:\.{_OCTET}){{3}}(?:$|[^0-9.]|\.(?:$|[^0-9]))",
        r"[0-9]\.[0-9]",
    ),
    "ipv6": _Kind(
        r"(?:^|[^0-9A-Za-z:])(?:"
        + "|".join([
            rf"(?:{_HEX}:){{7}}{_HEX}",
            rf"(?:{_HEX}:){{1,7}}:",
            rf"(?:{_HEX}:){{1,6}}:{_HEX}",
            rf"(?:{_HEX}:){{1,5}}(?::{_HEX}){{1,2}}",
            rf"(?:{_HEX}:){{1,4}}(?::{_HEX}){{1,3}}",
            rf"(?:{_HEX}:){{1,3}}(?::{_HEX}){{1,4}}",
            rf"(?:{_HEX}:){{1,2}}(?::{_HEX}){{1,5}}",
            rf"{_HEX}:(?::{_HEX}){{1,6}}",
            rf":(?::{_HEX}){{1,7}}",
        ])
        + r")(?:$|[^0-9A-Za-z:])",
        ":",
    ),
    "us_ssn": _Kind(
        r"\b(?:00[1-9]|0[1-9][0-9]|[1-578][0-9]{2}|6[0-57-9][0-9]|66[0-57-9])"
        r"-(?:0[1-9]|[1-9][0-9])-(?:000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})\b",
        "[0-9]-[0-9]{2}-[0-9]",
    ),
}

PII_KINDS: tuple[str, ...] = tuple(_KINDS)

_BINARY_SNIFF = 8 << 10


def scan_table(table: pa.Table) -> list[dict[str, Any]]:
    """Count, per string column and PII kind, the rows containing a match (never values)."""
    from dsops.data.tabular import logical_type

    findings = []
    for name in table.column_names:
        column = table.column(name)
        if logical_type(column.type) != "str":
            continue
        series = pl.Series(column).cast(pl.String)
        for kind, rows in _matching_rows(series).items():
            findings.append({"column": name, "kind": kind, "count": len(rows)})
    return findings


def scan_text_file(path: Path, max_bytes: int = 50 << 20) -> list[dict[str, Any]]:
    """Count, per PII kind, the lines of a text file containing a match; binary files: []."""
    return scan_text_files([(str(path), path, None)], max_bytes=max_bytes)


def scan_text_files(files: list[tuple[str, str | Path, bytes | None]],
                    max_bytes: int = 50 << 20, batch_bytes: int = 64 << 20
                    ) -> list[dict[str, Any]]:
    """``scan_text_file`` for many files at once, given as (name, path, content already
    read or None): their lines are matched as one column, so thousands of small files
    cost one vectorised pass, not thousands (in batches of about ``batch_bytes`` of text,
    so memory stays bounded)."""
    counts = np.zeros((len(files), len(PII_KINDS)), dtype=np.int64)
    lines: list[str] = []
    owners: list[int] = []
    pending = 0

    def flush() -> None:
        owner = np.asarray(owners)
        for kind, rows in _matching_rows(pl.Series(lines, dtype=pl.String)).items():
            counts[:, PII_KINDS.index(kind)] += np.bincount(owner[rows], minlength=len(files))
        lines.clear()
        owners.clear()

    for index, (_, path, content) in enumerate(files):
        if content is None:
            with open(path, "rb") as handle:
                content = handle.read(max_bytes)
        else:
            content = content[:max_bytes]
        if b"\0" in content[:_BINARY_SNIFF]:
            continue
        split = content.decode("utf-8", errors="replace").splitlines()
        lines.extend(split)
        owners.extend([index] * len(split))
        pending += len(content)
        if pending >= batch_bytes:
            flush()
            pending = 0
    if lines:
        flush()
    return [{"file": files[i][0], "kind": PII_KINDS[k], "count": int(counts[i, k])}
            for i, k in zip(*np.nonzero(counts), strict=True)]


def _matching_rows(values: pl.Series) -> dict[str, np.ndarray]:
    """Per kind, the indices of rows of `values` with at least one (confirmed) match."""
    frame = pl.LazyFrame({"v": values}).with_row_index("i").drop_nulls("v")
    # Two rounds of independent queries, each run in parallel by polars: the gates, then
    # the full patterns on the rows that passed their gate.
    gated = pl.collect_all(
        [frame.filter(pl.col("v").str.contains(kind.gate)) for kind in _KINDS.values()]
    )
    found = pl.collect_all(
        [rows.lazy().filter(pl.col("v").str.contains(kind.pattern))
         for rows, kind in zip(gated, _KINDS.values(), strict=True)]
    )
    out = {}
    for (name, kind), rows in zip(_KINDS.items(), found, strict=True):
        if kind.confirm is not None and rows.height:
            indices = _confirmed_rows(rows, kind)
        else:
            indices = rows["i"].to_numpy()
        if len(indices):
            out[name] = indices
    return out


def _confirmed_rows(candidates: pl.DataFrame, kind: _Kind) -> np.ndarray:
    """Indices of candidate rows where an extracted match passes the kind's confirmation."""
    assert kind.confirm is not None
    matches = (
        candidates.select(pl.col("i").alias("row"),
                          pl.col("v").str.extract_all(kind.extract or kind.pattern).alias("match"))
        .explode("match")
        .drop_nulls("match")
    )
    valid = kind.confirm(matches["match"])
    return matches["row"].filter(pl.Series(valid)).unique().to_numpy()
