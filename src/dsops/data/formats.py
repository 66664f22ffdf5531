"""Which files are tabular (standard library only: decided before pyarrow is imported)."""

from __future__ import annotations

from pathlib import Path

TABULAR_FORMATS: dict[str, str] = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}


def detect_format(path: Path) -> str | None:
    """The tabular format of `path` from its suffix, or None if it is not a known one."""
    return TABULAR_FORMATS.get(path.suffix.lower())
