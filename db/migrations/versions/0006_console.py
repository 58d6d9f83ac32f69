"""the therapist console: one-time login links and browser sessions, kept as hashes

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import db.models

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _table(name: str, *columns: sa.Column[object]) -> None:
    op.create_table(
        name,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("therapist_id", sa.Integer(), nullable=False),
        sa.Column("created_at", db.models.UtcDateTime(timezone=True), nullable=False),
        *columns,
        sa.ForeignKeyConstraint(
            ["therapist_id"],
            ["therapists.id"],
            name=op.f(f"fk_{name}_therapist_id_therapists"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{name}")),
        sa.UniqueConstraint("token_hash", name=op.f(f"uq_{name}_token_hash")),
    )
    with op.batch_alter_table(name, schema=None) as batch_op:
        batch_op.create_index(batch_op.f(f"ix_{name}_therapist_id"), ["therapist_id"], unique=False)


def upgrade() -> None:
    _table(
        "console_login_links",
        sa.Column("expires_at", db.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("used_at", db.models.UtcDateTime(timezone=True), nullable=True),
    )
    _table(
        "console_sessions",
        sa.Column("last_seen_at", db.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", db.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", db.models.UtcDateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    for name in ("console_sessions", "console_login_links"):
        with op.batch_alter_table(name, schema=None) as batch_op:
            batch_op.drop_index(batch_op.f(f"ix_{name}_therapist_id"))
        op.drop_table(name)
