"""A seat that changes hands gets a new partner row: retired holders, one current per seat.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import db.models

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_CURRENT = sa.text("retired_at IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("partners") as batch:
        batch.add_column(
            sa.Column("retired_at", db.models.UtcDateTime(timezone=True), nullable=True)
        )
        batch.drop_constraint("uq_partners_couple_id_slot", type_="unique")
    op.create_index(
        "uq_partners_current_seat",
        "partners",
        ["couple_id", "slot"],
        unique=True,
        sqlite_where=_CURRENT,
        postgresql_where=_CURRENT,
    )


def downgrade() -> None:
    op.drop_index("uq_partners_current_seat", table_name="partners")
    op.execute("DELETE FROM partners WHERE retired_at IS NOT NULL")
    with op.batch_alter_table("partners") as batch:
        batch.create_unique_constraint("uq_partners_couple_id_slot", ["couple_id", "slot"])
        batch.drop_column("retired_at")
