"""Deployments and their rollout state, deployment events, approvals.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _at(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "deployments",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("env", sa.String(128), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("model_version_id", sa.String(36), sa.ForeignKey("model_versions.id"),
                  nullable=False),
        sa.Column("previous_version", sa.Integer(), nullable=True),
        sa.Column("strategy", sa.String(16), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("step_index", sa.Integer(), nullable=False),
        sa.Column("weight", sa.Integer(), nullable=False),
        sa.Column("analysis", sa.JSON(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("approvals_required", sa.Integer(), nullable=False),
        _at("step_started_at", nullable=True),
        _at("next_analysis_at", nullable=True),
        _at("created_at"),
        sa.Column("created_by", sa.String(320), nullable=False),
        _at("updated_at"),
        _at("promoted_at", nullable=True),
        _at("ended_at", nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
    )
    op.create_index("ix_deployments_env_model", "deployments", ["env", "model"])
    op.create_index("ix_deployments_status", "deployments", ["status"])
    op.create_table(
        "deployment_events",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("deployment_id", sa.String(36), sa.ForeignKey("deployments.id"), nullable=False),
        _at("at"),
        sa.Column("actor", sa.String(320), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("from_status", sa.String(24), nullable=True),
        sa.Column("to_status", sa.String(24), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
    )
    op.create_index("ix_deployment_events_deployment_id", "deployment_events", ["deployment_id"])
    op.create_index("ix_deployment_events_at", "deployment_events", ["at"])
    op.create_table(
        "approvals",
        sa.Column("deployment_id", sa.String(36), sa.ForeignKey("deployments.id"), primary_key=True),
        sa.Column("approver", sa.String(320), primary_key=True),
        _at("at"),
        sa.Column("comment", sa.Text(), nullable=True),
    )


def downgrade() -> None:
    for table in ("approvals", "deployment_events", "deployments"):
        op.drop_table(table)
