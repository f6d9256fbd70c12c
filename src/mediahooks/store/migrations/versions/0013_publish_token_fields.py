"""Publish tokens as the platform has them: active or not, an expiry, the addresses and origins
they may publish from, multisource, thumbnails, and the platform's other settings (kept as JSON,
echoed, not acted on).

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("publish_tokens") as batch:
        batch.add_column(
            sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true())
        )
        batch.add_column(sa.Column("expires_at", sa.BigInteger))
        batch.add_column(
            sa.Column("allowed_ip_addresses", sa.Text, nullable=False, server_default="[]")
        )
        batch.add_column(sa.Column("allowed_origins", sa.Text, nullable=False, server_default="[]"))
        batch.add_column(
            sa.Column("multisource", sa.Boolean, nullable=False, server_default=sa.true())
        )
        batch.add_column(
            sa.Column("enable_thumbnails", sa.Boolean, nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("settings", sa.Text, nullable=False, server_default="{}"))


def downgrade() -> None:
    with op.batch_alter_table("publish_tokens") as batch:
        for column in (
            "settings",
            "enable_thumbnails",
            "multisource",
            "allowed_origins",
            "allowed_ip_addresses",
            "expires_at",
            "is_active",
        ):
            batch.drop_column(column)
