"""report rollup: precomputed counts, the consultations they include, tickets carry their day and region

Each ticket gets its consultation's day and region (fixed at opening), so the lawyers' figures read tickets alone.

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

TICKET_REPORT_COLUMNS = [
    "opened_on",
    "report_region_id",
    "outcome",
    "lawyer_id",
    "created_at",
    "first_response_at",
    "closed_at",
    "backup_notified_at",
    "admin_notified_at",
    "urgent",
]


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
        batch_op.add_column(sa.Column("counted", sa.Boolean(), server_default="0", nullable=False))
        batch_op.create_index(
            "ix_consultations_uncounted",
            ["opened_on"],
            unique=False,
            sqlite_where=sa.text("NOT counted"),
            postgresql_where=sa.text("NOT counted"),
        )

    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("opened_on", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("report_region_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_tickets_report_region_id_regions"), "regions", ["report_region_id"], ["id"]
        )
    op.execute(
        "UPDATE tickets SET"
        " opened_on = (SELECT opened_on FROM consultations WHERE consultations.id = tickets.consultation_id),"
        " report_region_id = (SELECT region_id FROM consultations WHERE consultations.id = tickets.consultation_id)"
    )
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.create_index("ix_tickets_report", TICKET_REPORT_COLUMNS, unique=False)


def downgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index("ix_tickets_report")
        batch_op.drop_constraint(batch_op.f("fk_tickets_report_region_id_regions"), type_="foreignkey")
        batch_op.drop_column("report_region_id")
        batch_op.drop_column("opened_on")

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
