"""workers: whether a ticket was ever opened for them (most messages then skip the ticket lookups)

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-22 14:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("workers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("has_tickets", sa.Boolean(), server_default="0", nullable=False))
    op.execute(
        sa.text(
            "UPDATE workers SET has_tickets = :yes"
            " WHERE EXISTS (SELECT 1 FROM tickets WHERE tickets.worker_id = workers.id)"
        ).bindparams(yes=True)
    )


def downgrade() -> None:
    with op.batch_alter_table("workers", schema=None) as batch_op:
        batch_op.drop_column("has_tickets")
