"""indexes that lead with the partner or the couple, for the digest's queries

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_deliveries_partner_sent", "deliveries", ["partner_id", "status", "sent_at"]),
    ("ix_deliveries_couple_kind", "deliveries", ["couple_id", "kind", "status", "sent_at"]),
    ("ix_responses_couple_kind", "responses", ["couple_id", "kind", "created_at"]),
    ("ix_alerts_couple_created", "alerts", ["couple_id", "created_at"]),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns, unique=False)


def downgrade() -> None:
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
