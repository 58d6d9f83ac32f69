"""outbox lease tokens and follow-up retries; the update inbox replaces updates_seen

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 17:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import db.models

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inbox_updates",
        sa.Column("update_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=True),
        sa.Column("received_at", db.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("handled_at", db.models.UtcDateTime(timezone=True), nullable=True),
        sa.Column("lease_until", db.models.UtcDateTime(timezone=True), nullable=True),
        sa.Column("lease_token", sa.String(length=32), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("update_id", name=op.f("pk_inbox_updates")),
    )
    with op.batch_alter_table("inbox_updates", schema=None) as batch_op:
        batch_op.create_index(
            "ix_inbox_updates_unhandled", ["handled_at", "received_at"], unique=False
        )
    # The ids already seen stay seen: a retried webhook of an old update is still a repeat.
    op.execute(
        "INSERT INTO inbox_updates (update_id, received_at, handled_at, attempts) "
        "SELECT update_id, seen_at, seen_at, 1 FROM updates_seen"
    )
    with op.batch_alter_table("updates_seen", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_updates_seen_seen_at"))
    op.drop_table("updates_seen")

    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lease_token", sa.String(length=32), nullable=True))
        batch_op.add_column(
            sa.Column("followup_due_at", db.models.UtcDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_column("followup_due_at")
        batch_op.drop_column("lease_token")
    op.create_table(
        "updates_seen",
        sa.Column("update_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("seen_at", db.models.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("update_id", name=op.f("pk_updates_seen")),
    )
    with op.batch_alter_table("updates_seen", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_updates_seen_seen_at"), ["seen_at"], unique=False)
    op.execute(
        "INSERT INTO updates_seen (update_id, seen_at) "
        "SELECT update_id, received_at FROM inbox_updates"
    )
    with op.batch_alter_table("inbox_updates", schema=None) as batch_op:
        batch_op.drop_index("ix_inbox_updates_unhandled")
    op.drop_table("inbox_updates")
