"""The audit chain: every event links to the previous one; any edit or deletion shows."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from dsops.core.clock import ManualClock
from dsops.security.audit import AuditService
from dsops.store import Store
from dsops.store.audit import GENESIS, verify_chain
from dsops.store.models import AuditEvent
from dsops.workspace import Workspace

MakeWorkspace = Callable[..., Workspace]


def execute(ws: Workspace, sql: str, **params: object) -> None:
    with ws.store.engine.begin() as conn:
        conn.execute(text(sql), params)


@pytest.fixture
def chained(store_url: str, make_workspace: MakeWorkspace,
            manual_clock: ManualClock) -> Workspace:
    """A project with 6 events: project.init, then dataset.add × 5 a minute apart."""
    ws = make_workspace(store_url=store_url, clock=manual_clock)
    for i in range(5):
        manual_clock.advance(timedelta(minutes=1))
        with ws.store.transaction() as session:
            ws.audit(session, "dataset.add", f"credit@{i + 1}", {"rows": 100 + i})
    return ws


def test_init_records_the_first_event(workspace: Workspace) -> None:
    events = AuditService(workspace).list()
    assert [(e.seq, e.action, e.target, e.actor) for e in events] == \
        [(1, "project.init", "demo", "alice@example.com")]
    assert events[0].details == {"root": str(workspace.root)}
    assert AuditService(workspace).verify().ok


def test_events_form_a_chain(chained: Workspace, manual_clock: ManualClock) -> None:
    events = AuditService(chained).list()
    assert [e.seq for e in events] == [6, 5, 4, 3, 2, 1]  # newest first
    assert events[-1].action == "project.init" and events[-1].actor == "alice@example.com"
    assert events[0].at == manual_clock.now() and events[0].details == {"rows": 104}
    with chained.store.read() as session:
        rows = session.execute(
            text("SELECT seq, prev_hash, hash FROM audit_events ORDER BY seq")
        ).all()
    assert rows[0].prev_hash == GENESIS
    for before, after in itertools.pairwise(rows):
        assert after.prev_hash == before.hash
    assert len({r.hash for r in rows}) == len(rows)


def test_list_filters(chained: Workspace) -> None:
    service = AuditService(chained)
    assert [e.target for e in service.list(action="dataset.add", limit=2)] == \
        ["credit@5", "credit@4"]
    assert [e.seq for e in service.list(target="credit@2")] == [3]


def test_intact_chain_verifies(chained: Workspace) -> None:
    report = AuditService(chained).verify()
    assert report.ok and report.events == 6 and report.problem is None


def test_edited_details_are_detected(chained: Workspace) -> None:
    execute(chained, "UPDATE audit_events SET details = :d WHERE seq = 3",
            d=json.dumps({"rows": 999}))
    report = AuditService(chained).verify()
    assert not report.ok
    assert (report.seq, report.events) == (3, 2)
    assert report.problem == "event 3 was altered after it was written"


@pytest.mark.parametrize(("column", "value"), [("actor", "mallory@example.com"),
                                               ("action", "dataset.revoke"),
                                               ("target", "census@1")])
def test_edited_fields_are_detected(chained: Workspace, column: str, value: str) -> None:
    execute(chained, f"UPDATE audit_events SET {column} = :v WHERE seq = 4", v=value)
    report = AuditService(chained).verify()
    assert not report.ok and report.seq == 4 and "altered" in (report.problem or "")


def test_edited_time_is_detected(chained: Workspace) -> None:
    with chained.store.transaction() as session:
        event = session.get(AuditEvent, 2)
        assert event is not None
        event.at -= timedelta(days=1)
    report = AuditService(chained).verify()
    assert not report.ok and report.seq == 2


def test_deleted_middle_event_is_reported_missing(chained: Workspace) -> None:
    execute(chained, "DELETE FROM audit_events WHERE seq = 4")
    report = AuditService(chained).verify()
    assert not report.ok
    assert (report.seq, report.problem) == (4, "event 4 is missing")


def test_deleted_last_event_is_detected(chained: Workspace) -> None:
    execute(chained, "DELETE FROM audit_events WHERE seq = 6")
    report = AuditService(chained).verify()
    assert not report.ok and report.events == 5 and report.seq == 6
    assert "deleted" in (report.problem or "")


def test_deleted_first_event_is_detected(chained: Workspace) -> None:
    execute(chained, "DELETE FROM audit_events WHERE seq = 1")
    report = AuditService(chained).verify()
    assert not report.ok and report.problem == "event 1 is missing"


def test_renumbered_chain_is_detected(chained: Workspace) -> None:
    # Hide event 6 by deleting it and rewinding the head: the head hash no longer matches
    # anything, or the rewound chain is caught by the head's hash.
    execute(chained, "DELETE FROM audit_events WHERE seq = 6")
    execute(chained, "UPDATE audit_head SET seq = 5")
    report = AuditService(chained).verify()
    assert not report.ok and "deleted" in (report.problem or "")


APPEND_SCRIPT = """
import sys, time
from datetime import UTC, datetime
from pathlib import Path
from dsops.store import Store
from dsops.store.audit import append_event

url, name, go = sys.argv[1], sys.argv[2], Path(sys.argv[3])
store = Store(url)  # both processes open (and migrate) the fresh store at the same time
print("ready", flush=True)
while not go.exists():
    time.sleep(0.005)
started = time.time()
for i in range(50):
    with store.transaction() as session:
        append_event(session, at=datetime.now(UTC), actor=name, action="test.append",
                     target=f"{name}-{i}", details={"i": i})
    time.sleep(0.001)  # a mutation does some work between its transactions
print(started, time.time())
store.close()
"""


def test_concurrent_appends_from_two_processes_form_one_chain(
    store_url: str, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    writers = [
        subprocess.Popen([sys.executable, "-c", APPEND_SCRIPT, store_url, name, str(go)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name in ("writer-a", "writer-b")
    ]
    for writer in writers:  # both have opened the store: start appending together
        assert writer.stdout is not None
        line = writer.stdout.readline()
        assert line == "ready\n", line + writer.communicate(timeout=60)[1]
    go.touch()
    spans = []
    for writer in writers:
        out, err = writer.communicate(timeout=120)
        assert writer.returncode == 0, err
        spans.append([float(t) for t in out.split()])
    (a_start, a_end), (b_start, b_end) = spans
    assert a_start < b_end and b_start < a_end, "the writers did not overlap"

    store = Store(store_url)
    try:
        with store.read() as session:
            rows = session.execute(
                text("SELECT seq, actor, target FROM audit_events ORDER BY seq")
            ).all()
            result = verify_chain(session)
    finally:
        store.close()
    assert [r.seq for r in rows] == list(range(1, 101))
    for name in ("writer-a", "writer-b"):
        assert [r.target for r in rows if r.actor == name] == [f"{name}-{i}" for i in range(50)]
    assert result.ok and result.events == 100, result
