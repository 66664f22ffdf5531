"""Directory versions keep their stored manifest (with pack locations) as its own object.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Before 0002 the stored manifest of a directory version was the object named by its
    # digest; NULL keeps meaning exactly that.
    with op.batch_alter_table("dataset_versions") as batch:
        batch.add_column(sa.Column("manifest", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("dataset_versions") as batch:
        batch.drop_column("manifest")
