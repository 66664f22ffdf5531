"""Monitoring: monitor evaluations (values per window) and incidents with their actions.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def _at(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "monitor_evaluations",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("monitor", sa.String(128), nullable=False),
        _at("at"),
        _at("window_start"),
        _at("window_end"),
        sa.Column("env", sa.String(128), nullable=True),
        sa.Column("model", sa.String(128), nullable=True),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("deployment_id", sa.String(36), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("values", sa.JSON(), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
    )
    op.create_index("ix_monitor_evaluations_monitor_at", "monitor_evaluations", ["monitor", "at"])
    op.create_table(
        "incidents",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("monitor", sa.String(128), nullable=False),
        sa.Column("rule", sa.String(512), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("env", sa.String(128), nullable=True),
        sa.Column("model", sa.String(128), nullable=True),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("deployment_id", sa.String(36), nullable=True),
        _at("opened_at"),
        _at("last_fired_at"),
        _at("healthy_since", nullable=True),
        _at("acknowledged_at", nullable=True),
        sa.Column("acknowledged_by", sa.String(320), nullable=True),
        _at("resolved_at", nullable=True),
        sa.Column("resolved_by", sa.String(320), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("actions", sa.JSON(), nullable=False),
    )
    op.create_index("ix_incidents_monitor_rule_status", "incidents", ["monitor", "rule", "status"])
    op.create_index("ix_incidents_status", "incidents", ["status"])
    op.create_index("ix_incidents_deployment_id", "incidents", ["deployment_id"])
    op.create_index("ix_incidents_opened_at", "incidents", ["opened_at"])


def downgrade() -> None:
    op.drop_table("incidents")
    op.drop_table("monitor_evaluations")
