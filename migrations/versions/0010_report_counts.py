"""report rollup: precomputed daily and monthly counts, and which consultations they include

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-22 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "report_counts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("span", sa.String(length=1), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("region_id", sa.Integer(), nullable=True),
        sa.Column("measure", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=64), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["region_id"], ["regions.id"], name=op.f("fk_report_counts_region_id_regions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_counts")),
    )
    with op.batch_alter_table("report_counts", schema=None) as batch_op:
        batch_op.create_index("ix_report_counts_span_day", ["span", "day"], unique=False)

    # Every existing consultation starts uncounted: the rollup job counts them on its first run.
    with op.batch_alter_table("consultations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("counted", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.create_index(
            "ix_consultations_uncounted",
            ["opened_on"],
            unique=False,
            sqlite_where=sa.text("NOT counted"),
            postgresql_where=sa.text("NOT counted"),
        )


def downgrade() -> None:
    with op.batch_alter_table("consultations", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_consultations_uncounted",
            sqlite_where=sa.text("NOT counted"),
            postgresql_where=sa.text("NOT counted"),
        )
        batch_op.drop_column("counted")

    with op.batch_alter_table("report_counts", schema=None) as batch_op:
        batch_op.drop_index("ix_report_counts_span_day")
    op.drop_table("report_counts")
