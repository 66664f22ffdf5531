"""Run search: the metric and param filter indexes also hold ``run_id`` (covering).

A filter condition is ``runs.id IN (SELECT run_id … WHERE key = ? AND value > ?)``: with
``run_id`` in the index the subquery reads the index alone instead of looking up each
matching row in the table. Measured on SQLite, 10,000 runs, one metric and one param
condition: `TrackingService.list` 9.9–10.3 → 6.3–7.3 ms. PostgreSQL gets the same
indexes (index-only scans).

Revision ID: 0008
Revises: 0007
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# (index, table, columns before, columns after)
_INDEXES = (
    ("ix_run_params_key_value", "run_params", ["key", "value"], ["key", "value", "run_id"]),
    ("ix_run_params_key_number", "run_params", ["key", "number"], ["key", "number", "run_id"]),
    ("ix_run_latest_metrics_key_value", "run_latest_metrics", ["key", "value"],
     ["key", "value", "run_id"]),
)


def upgrade() -> None:
    for name, table, _, columns in _INDEXES:
        op.drop_index(name, table_name=table)
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, columns, _ in _INDEXES:
        op.drop_index(name, table_name=table)
        op.create_index(name, table, columns)
