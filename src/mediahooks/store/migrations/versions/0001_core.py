"""Accounts, webhooks, the event outbox, deliveries and their attempts, media assets.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Ms = sa.BigInteger
PENDING = sa.text("status = 'pending'")


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.String(6), primary_key=True),
        sa.Column("secret_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", Ms, nullable=False),
    )
    flags = [
        sa.Column(f"is_{name}_hooks", sa.Boolean, nullable=False)
        for name in ("feed", "media", "recording", "thumbnail", "transcoder", "viewer_connection")
    ]
    op.create_table(
        "webhooks",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.String(6), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("secret", sa.Text, nullable=False),
        sa.Column("previous_secret", sa.Text),
        sa.Column("previous_secret_until", Ms),
        *flags,
        sa.Column("filter", sa.Text),
        sa.Column("disabled_until", Ms),
        sa.Column("disabled_reason", sa.Text),
        sa.Column("failing_since", Ms),
        sa.Column("created_at", Ms, nullable=False),
        sa.Column("updated_at", Ms, nullable=False),
        sa.Column("deleted_at", Ms),
    )
    op.create_index("ix_webhooks_account", "webhooks", ["account_id", "id"])
    op.create_table(
        "events",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("msg_id", sa.String(40), nullable=False, unique=True),
        sa.Column("account_id", sa.String(6), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("hook_type", sa.String(32), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("ordering_key", sa.String(64), nullable=False),
        sa.Column("stream_name", sa.Text),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("created_at", Ms, nullable=False),
    )
    op.create_table(
        "deliveries",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("event_id", Id, sa.ForeignKey("events.id"), nullable=False),
        sa.Column("webhook_id", Id, sa.ForeignKey("webhooks.id"), nullable=False),
        sa.Column("ordering_key", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("tries", sa.Integer, nullable=False),
        sa.Column("attempt_count", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", Ms, nullable=False),
        sa.Column("lease_owner", sa.String(64)),
        sa.Column("lease_until", Ms),
        sa.Column("last_status", sa.Integer),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", Ms, nullable=False),
        sa.Column("updated_at", Ms, nullable=False),
        sa.Column("completed_at", Ms),
    )
    # The claim query reads only pending rows: partial indexes keep it fast as history grows.
    for name, columns in (
        ("ix_deliveries_due", ["next_attempt_at", "id"]),
        ("ix_deliveries_chain", ["webhook_id", "ordering_key", "id"]),
    ):
        op.create_index(name, "deliveries", columns, sqlite_where=PENDING, postgresql_where=PENDING)
    op.create_index("ix_deliveries_webhook", "deliveries", ["webhook_id", "id"])
    op.create_index("ix_deliveries_event", "deliveries", ["event_id"])
    op.create_table(
        "attempts",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("delivery_id", Id, sa.ForeignKey("deliveries.id"), nullable=False),
        sa.Column("webhook_id", Id, nullable=False),
        sa.Column("started_at", Ms, nullable=False),
        sa.Column("duration_ms", sa.Integer, nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("status_code", sa.Integer),
        sa.Column("error_kind", sa.String(16)),
        sa.Column("error_message", sa.Text),
        sa.Column("request_headers", sa.Text, nullable=False),
        sa.Column("response_headers", sa.Text),
        sa.Column("response_body", sa.Text),
        sa.Column("worker", sa.String(64), nullable=False),
    )
    op.create_index("ix_attempts_delivery", "attempts", ["delivery_id", "id"])
    op.create_table(
        "media_assets",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("account_id", sa.String(6), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("token_id", sa.BigInteger, nullable=False),
        sa.Column("stream_name", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("start_time", Ms, nullable=False),
        sa.Column("stop_time", Ms),
        sa.Column("name", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("metadata", sa.Text, nullable=False),
        sa.Column("expiration", Ms),
        sa.Column("created_at", Ms, nullable=False),
        sa.Column("updated_at", Ms, nullable=False),
        sa.Column("removed_at", Ms),
    )
    op.create_index("ix_media_assets_account", "media_assets", ["account_id", "status"])


def downgrade() -> None:
    for table in ("media_assets", "attempts", "deliveries", "events", "webhooks", "accounts"):
        op.drop_table(table)
