"""PostgreSQL: each webhook's pending deliveries in due order, which the claim walks.

SQLite's claim walks the one due index for all webhooks (see `deliveries._due_query`) and
needs no such index: it would only slow every write there.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

NAME = "ix_deliveries_webhook_due"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.create_index(
            NAME,
            "deliveries",
            ["webhook_id", "next_attempt_at", "id"],
            postgresql_where=sa.text("status = 'pending'"),
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index(NAME, "deliveries")
