"""Sample data for dataset tests."""

from __future__ import annotations

import csv
from pathlib import Path


def write_csv(path: Path, rows: list[dict[str, object]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def people(n: int, *, age_shift: int = 0, bad_ages: int = 0) -> list[dict[str, object]]:
    rows = []
    for i in range(n):
        age = 20 + (i * 7) % 60 + age_shift
        if i < bad_ages:
            age = 150
        rows.append({"id": i, "age": age, "city": ["paris", "oslo", "rome"][i % 3],
                     "income": 1000.0 + i * 3.5})
    return rows
