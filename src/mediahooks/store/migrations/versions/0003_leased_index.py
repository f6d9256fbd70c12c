"""An index of the deliveries in flight (leased), which every claim counts per webhook.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

LEASED = sa.text("lease_until IS NOT NULL")


def upgrade() -> None:
    op.create_index(
        "ix_deliveries_leased",
        "deliveries",
        ["webhook_id", "lease_until"],
        sqlite_where=LEASED,
        postgresql_where=LEASED,
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_leased", "deliveries")
