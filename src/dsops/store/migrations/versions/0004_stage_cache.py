"""Pipeline stage cache: per cache key, the key's components and the outs' digests.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stage_cache",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("project", sa.String(128), nullable=False),
        sa.Column("stage", sa.String(256), nullable=False),
        sa.Column("components", sa.JSON(), nullable=False),
        sa.Column("outs", sa.JSON(), nullable=False),
        sa.Column("run_id", sa.String(36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_stage_cache_project_stage", "stage_cache", ["project", "stage"])


def downgrade() -> None:
    op.drop_table("stage_cache")
