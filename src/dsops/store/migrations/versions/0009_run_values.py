"""Run listings: each run's params and latest metrics as one row of two JSON objects.

A listing returns every param and metric of the runs it lists; read as one row per key
(``run_id IN (…)`` on ``run_params`` and ``run_latest_metrics``) they cost more than the
search itself (10,000 runs, 208 listed: two thirds of the instructions of
`TrackingService.list`). The tracking service rewrites a run's row whenever it writes the
per-key rows; filters and sorts keep reading those. Existing runs are filled in here.

Also an index of params by ``(run_id, key, value)``: a filter joining a param condition to
another condition looks each candidate run up in it (cheaper than in ``(key, value,
run_id)``, where every step compares the key and value before the run id).

Revision ID: 0009
Revises: 0008
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_BATCH = 5000


def upgrade() -> None:
    table = op.create_table(
        "run_values",
        sa.Column("run_id", sa.String(36), sa.ForeignKey("runs.id"), primary_key=True),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("metrics", sa.Text(), nullable=False),
    )
    op.create_index("ix_run_params_run_id_key_value", "run_params", ["run_id", "key", "value"])
    bind = op.get_bind()
    values: dict[str, dict[str, dict[str, object]]] = {}
    for column, source in (("params", "run_params"), ("metrics", "run_latest_metrics")):
        for run_id, key, value in bind.execute(sa.text(f'SELECT run_id, "key", value FROM {source}')):
            values.setdefault(run_id, {"params": {}, "metrics": {}})[column][key] = value
    # The stored form of dsops.tracking.run_values.as_json (a migration keeps its own copy:
    # it must do the same thing whatever the code does later).
    rows = [{"run_id": run_id, **{column: json.dumps(by_key, sort_keys=True, separators=(",", ":"))
                                  for column, by_key in kinds.items()}}
            for run_id, kinds in values.items()]
    for start in range(0, len(rows), _BATCH):
        op.bulk_insert(table, rows[start:start + _BATCH])


def downgrade() -> None:
    op.drop_index("ix_run_params_run_id_key_value", table_name="run_params")
    op.drop_table("run_values")
