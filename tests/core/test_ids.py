"""Identifiers are UUIDv7: unique, and sorted by creation time."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid

from dsops.core.ids import new_id


def test_ids_are_uuid7_and_unique() -> None:
    ids = [new_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    parsed = uuid.UUID(ids[0])
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122


def test_ids_sort_in_creation_order() -> None:
    ids = []
    for _ in range(5):
        ids += [new_id() for _ in range(2000)]
        time.sleep(0.002)
    assert ids == sorted(ids)


def test_id_carries_the_creation_time() -> None:
    before = time.time_ns() // 1_000_000
    value = uuid.UUID(new_id()).int >> 80
    after = time.time_ns() // 1_000_000
    assert before <= value <= after + 1


def test_ids_from_other_processes_do_not_collide() -> None:
    code = "from dsops.core.ids import new_id\nfor _ in range(5000): print(new_id())"
    others = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.split()
    mine = [new_id() for _ in range(5000)]
    assert len(set(others) | set(mine)) == 10_000
