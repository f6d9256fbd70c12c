"""Publish tokens, broadcasts and their segments (the timeline), media asset files and leases,
idempotency keys, per-account retention rules, the key that signs download links.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Ms = sa.BigInteger


def upgrade() -> None:
    op.create_table(
        "publish_tokens",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.String(6), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("label", sa.Text, nullable=False),
        sa.Column("token", sa.String(64), nullable=False, unique=True),
        sa.Column("streams", sa.Text, nullable=False),
        sa.Column("record", sa.Boolean, nullable=False),
        sa.Column("clip", sa.Boolean, nullable=False),
        sa.Column("created_at", Ms, nullable=False),
        sa.Column("updated_at", Ms, nullable=False),
        sa.Column("deleted_at", Ms),
    )
    op.create_index("ix_publish_tokens_account", "publish_tokens", ["account_id", "id"])
    op.create_table(
        "broadcasts",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.String(6), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("stream_name", sa.Text, nullable=False),
        sa.Column("token_id", sa.BigInteger, nullable=False),
        sa.Column("feed_id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("init_path", sa.Text),
        sa.Column("started_at", Ms, nullable=False),
        sa.Column("last_arrival_at", Ms, nullable=False),
        sa.Column("ended_at", Ms),
    )
    op.create_index(
        "ix_broadcasts_stream", "broadcasts", ["account_id", "stream_name", "started_at"]
    )
    op.create_table(
        "segments",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("broadcast_id", Id, sa.ForeignKey("broadcasts.id"), nullable=False),
        sa.Column("filename", sa.Text, nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("arrived_at", Ms, nullable=False),
        # Unknown until the playlist that lists the segment arrives.
        sa.Column("start_ms", Ms),
        sa.Column("duration_ms", sa.Integer),
    )
    op.create_index("ix_segments_broadcast", "segments", ["broadcast_id", "start_ms"])
    op.create_index("ix_segments_name", "segments", ["broadcast_id", "filename"], unique=True)
    op.create_index("ix_segments_arrived", "segments", ["arrived_at"])
    with op.batch_alter_table("media_assets") as batch:
        batch.add_column(sa.Column("broadcast_id", Id))
        batch.add_column(sa.Column("file_path", sa.Text))
        batch.add_column(sa.Column("file_size", sa.BigInteger))
        batch.add_column(sa.Column("lease_owner", sa.String(64)))
        batch.add_column(sa.Column("lease_until", Ms))
    op.create_index("ix_media_assets_status", "media_assets", ["status", "lease_until"])
    op.create_table(
        "idempotency_keys",
        sa.Column("account_id", sa.String(6), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("response", sa.Text, nullable=False),
        sa.Column("created_at", Ms, nullable=False),
    )
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(
            sa.Column("media_expiration", sa.Text, nullable=False, server_default="{}")
        )
    op.create_table(
        "server_keys",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("server_keys")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("media_expiration")
    op.drop_table("idempotency_keys")
    op.drop_index("ix_media_assets_status", "media_assets")
    with op.batch_alter_table("media_assets") as batch:
        for column in ("lease_until", "lease_owner", "file_size", "file_path", "broadcast_id"):
            batch.drop_column(column)
    op.drop_table("segments")
    op.drop_table("broadcasts")
    op.drop_table("publish_tokens")
