"""retention: when a consultation's texts were purged, and the index the purge job reads

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("consultations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(
            "ix_consultations_unpurged",
            ["closed_at"],
            unique=False,
            sqlite_where=sa.text("purged_at IS NULL"),
            postgresql_where=sa.text("purged_at IS NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("consultations", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_consultations_unpurged",
            sqlite_where=sa.text("purged_at IS NULL"),
            postgresql_where=sa.text("purged_at IS NULL"),
        )
        batch_op.drop_column("purged_at")
