"""Mini App drafts: half-filled private pages, kept on the server

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import db.models

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webapp_drafts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("partner_id", sa.Integer(), nullable=False),
        sa.Column("telegram_user_id", sa.BigInteger(), nullable=False),
        sa.Column("page", sa.String(length=16), nullable=False),
        sa.Column("ref_id", sa.Integer(), nullable=False),
        sa.Column("checkin_id", sa.Integer(), nullable=True),
        sa.Column("choices", sa.JSON(), nullable=False),
        sa.Column("text_ciphertext", sa.LargeBinary(), nullable=True),
        sa.Column("updated_at", db.models.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["checkin_id"],
            ["checkins.id"],
            name=op.f("fk_webapp_drafts_checkin_id_checkins"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["partners.id"],
            name=op.f("fk_webapp_drafts_partner_id_partners"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webapp_drafts")),
        sa.UniqueConstraint(
            "partner_id", "page", "ref_id", name=op.f("uq_webapp_drafts_partner_id_page_ref_id")
        ),
    )
    with op.batch_alter_table("webapp_drafts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_webapp_drafts_checkin_id"), ["checkin_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_webapp_drafts_updated_at"), ["updated_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("webapp_drafts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webapp_drafts_updated_at"))
        batch_op.drop_index(batch_op.f("ix_webapp_drafts_checkin_id"))
    op.drop_table("webapp_drafts")
