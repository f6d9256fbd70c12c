"""Playback: subscribe tokens, `subscribeRequiresAuth` on publish tokens, an account's public
playback switch, and each segment's place in its broadcast (the HLS media sequence number).

Revision ID: 0011
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0004"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Ms = sa.BigInteger


def upgrade() -> None:
    op.create_table(
        "subscribe_tokens",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.String(6), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("label", sa.Text, nullable=False),
        sa.Column("token", sa.String(64), nullable=False, unique=True),
        sa.Column("streams", sa.Text, nullable=False),
        sa.Column("allowed_origins", sa.Text, nullable=False, server_default="[]"),
        sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("expires_at", Ms),
        sa.Column("created_at", Ms, nullable=False),
        sa.Column("updated_at", Ms, nullable=False),
        sa.Column("deleted_at", Ms),
    )
    op.create_index("ix_subscribe_tokens_account", "subscribe_tokens", ["account_id", "id"])
    with op.batch_alter_table("publish_tokens") as batch:
        batch.add_column(
            sa.Column(
                "subscribe_requires_auth", sa.Boolean, nullable=False, server_default=sa.false()
            )
        )
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(
            sa.Column("public_playback", sa.Boolean, nullable=False, server_default=sa.false())
        )
    # Segments of a broadcast numbered from 0 in arrival order: a live playlist's
    # EXT-X-MEDIA-SEQUENCE must stay put while old segments are swept from the front.
    with op.batch_alter_table("segments") as batch:
        batch.add_column(sa.Column("seq", sa.Integer))
    op.create_index("ix_segments_seq", "segments", ["broadcast_id", "seq"])


def downgrade() -> None:
    op.drop_index("ix_segments_seq", "segments")
    with op.batch_alter_table("segments") as batch:
        batch.drop_column("seq")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("public_playback")
    with op.batch_alter_table("publish_tokens") as batch:
        batch.drop_column("subscribe_requires_auth")
    op.drop_table("subscribe_tokens")
