"""The tables, as SQLAlchemy Core objects for the named queries.

The migrations in ``migrations/versions`` create them; this file must describe what they create.
Times are epoch milliseconds everywhere: the hooks speak epoch ms, and integers compare the same
on SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any, TypeAlias

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    Row,
    String,
    Table,
    Text,
)

# BIGINT ids on PostgreSQL; SQLite only auto-increments a column spelled INTEGER.
Id = BigInteger().with_variant(Integer(), "sqlite")

# A result row of any shape (SQLAlchemy 2.1 types rows by their columns).
DbRow: TypeAlias = Row[*tuple[Any, ...]]

metadata = MetaData()

accounts = Table(
    "accounts",
    metadata,
    Column("id", String(6), primary_key=True),
    Column("secret_hash", String(64), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
    # {"timelines": {"days": n}, "recordings": {"days": n}, "clips": {"days": n}}, each optional.
    Column("media_expiration", Text, nullable=False, server_default="{}"),
    # Anyone may watch the account's streams that need no subscribe token.
    Column("public_playback", Boolean, nullable=False, server_default="0"),
)

webhooks = Table(
    "webhooks",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", String(6), ForeignKey("accounts.id"), nullable=False),
    Column("url", Text, nullable=False),
    Column("secret", Text, nullable=False),
    Column("previous_secret", Text),
    Column("previous_secret_until", BigInteger),
    Column("is_feed_hooks", Boolean, nullable=False),
    Column("is_media_hooks", Boolean, nullable=False),
    Column("is_recording_hooks", Boolean, nullable=False),
    Column("is_thumbnail_hooks", Boolean, nullable=False),
    Column("is_transcoder_hooks", Boolean, nullable=False),
    Column("is_viewer_connection_hooks", Boolean, nullable=False),
    Column("filter", Text),
    Column("disabled_until", BigInteger),
    Column("disabled_reason", Text),
    Column("failing_since", BigInteger),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("deleted_at", BigInteger),
)

events = Table(
    "events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("msg_id", String(40), nullable=False, unique=True),
    Column("account_id", String(6), ForeignKey("accounts.id"), nullable=False),
    Column("hook_type", String(32), nullable=False),
    Column("event", String(32), nullable=False),
    Column("ordering_key", String(64), nullable=False),
    Column("stream_name", Text),
    Column("body", LargeBinary, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    # JSON {name: value}: the headers sent beside the signatures, `Content-Type` among them;
    # NULL for a JSON hook. A `thumbnail` hook's body is a JPEG.
    Column("headers", Text),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("event_id", Id, ForeignKey("events.id"), nullable=False),
    Column("webhook_id", Id, ForeignKey("webhooks.id"), nullable=False),
    Column("ordering_key", String(64), nullable=False),
    # pending | succeeded | failed | cancelled
    Column("status", String(16), nullable=False),
    # Attempts in the current round (a manual retry starts a new round); the schedule uses it.
    Column("tries", Integer, nullable=False),
    Column("attempt_count", Integer, nullable=False),
    Column("next_attempt_at", BigInteger, nullable=False),
    Column("lease_owner", String(64)),
    Column("lease_until", BigInteger),
    Column("last_status", Integer),
    Column("last_error", Text),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("completed_at", BigInteger),
)

attempts = Table(
    "attempts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("delivery_id", Id, ForeignKey("deliveries.id"), nullable=False),
    Column("webhook_id", Id, nullable=False),
    Column("started_at", BigInteger, nullable=False),
    Column("duration_ms", Integer, nullable=False),
    Column("url", Text, nullable=False),
    Column("status_code", Integer),
    # timeout | connect | tls | dns | blocked | redirect | http (a non-2xx answer)
    Column("error_kind", String(16)),
    Column("error_message", Text),
    Column("request_headers", Text, nullable=False),
    Column("response_headers", Text),
    Column("response_body", Text),
    Column("worker", String(64), nullable=False),
)

media_assets = Table(
    "media_assets",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("account_id", String(6), ForeignKey("accounts.id"), nullable=False),
    Column("type", String(16), nullable=False),
    Column("token_id", BigInteger, nullable=False),
    Column("stream_name", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("start_time", BigInteger, nullable=False),
    Column("stop_time", BigInteger),
    Column("name", Text),
    Column("error", Text),
    Column("metadata", Text, nullable=False),
    Column("expiration", BigInteger),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("removed_at", BigInteger),
    Column("broadcast_id", Id),
    Column("file_path", Text),
    Column("file_size", BigInteger),
    Column("lease_owner", String(64)),
    Column("lease_until", BigInteger),
    # The storage profile its files are kept in; NULL: the service's own storage.
    Column("storage_profile_id", String(36)),
)

publish_tokens = Table(
    "publish_tokens",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", String(6), ForeignKey("accounts.id"), nullable=False),
    Column("label", Text, nullable=False),
    Column("token", String(64), nullable=False, unique=True),
    # JSON: [{"streamName": "...", "isRegex": false}, ...]
    Column("streams", Text, nullable=False),
    Column("record", Boolean, nullable=False),
    Column("clip", Boolean, nullable=False),
    # Viewers need a subscribe token (or a signed playback link) to watch its streams.
    Column("subscribe_requires_auth", Boolean, nullable=False, server_default="0"),
    # SRT callers publishing with this token must encrypt with this passphrase (NULL: none).
    Column("srt_passphrase", Text),
    # Who may publish with it (`admission`): an inactive or expired token publishes nothing;
    # JSON lists of addresses/CIDR ranges and of origins, empty: any.
    Column("is_active", Boolean, nullable=False, server_default="1"),
    Column("expires_at", BigInteger),
    Column("allowed_ip_addresses", Text, nullable=False, server_default="[]"),
    Column("allowed_origins", Text, nullable=False, server_default="[]"),
    Column("multisource", Boolean, nullable=False, server_default="1"),
    # Live thumbnails go to `thumbnail` webhooks while its streams are live.
    Column("enable_thumbnails", Boolean, nullable=False, server_default="0"),
    # JSON: the platform's settings we accept, keep and echo but do not act on (geoCascade,
    # restream, originCluster, countries, ...), by their API names (`actions/token_fields.py`).
    Column("settings", Text, nullable=False, server_default="{}"),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("deleted_at", BigInteger),
)

# One broadcast: a stream published without a pause longer than the idle timeout. Its segments
# are its timeline.
broadcasts = Table(
    "broadcasts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", String(6), ForeignKey("accounts.id"), nullable=False),
    Column("stream_name", Text, nullable=False),
    Column("token_id", BigInteger, nullable=False),
    Column("feed_id", String(32), nullable=False),
    Column("kind", String(8), nullable=False),  # ts | fmp4 | webm (`media.containers`)
    Column("init_path", Text),
    Column("started_at", BigInteger, nullable=False),
    Column("last_arrival_at", BigInteger, nullable=False),
    Column("ended_at", BigInteger),
    # When its last thumbnail was taken: moving it forward is the claim on the next one.
    Column("thumbnail_at", BigInteger),
    # Published over WHIP: its session resource, which a DELETE on any process finds
    # (uniquely indexed), and when such a DELETE asked the receiving process to end it.
    Column("whip_resource", String(32)),
    Column("stop_requested_at", BigInteger),
)

segments = Table(
    "segments",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("broadcast_id", Id, ForeignKey("broadcasts.id"), nullable=False),
    Column("filename", Text, nullable=False),
    Column("path", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("arrived_at", BigInteger, nullable=False),
    Column("start_ms", BigInteger),
    Column("duration_ms", Integer),
    # The segment's place in its broadcast from 0: its HLS media sequence number.
    Column("seq", Integer),
)

# What a viewer presents to watch streams whose publish token has `subscribe_requires_auth`.
subscribe_tokens = Table(
    "subscribe_tokens",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", String(6), ForeignKey("accounts.id"), nullable=False),
    Column("label", Text, nullable=False),
    Column("token", String(64), nullable=False, unique=True),
    # JSON: [{"streamName": "...", "isRegex": false}, ...]
    Column("streams", Text, nullable=False),
    # JSON list of origins a browser may watch from; empty: any.
    Column("allowed_origins", Text, nullable=False, server_default="[]"),
    Column("is_active", Boolean, nullable=False, server_default="1"),
    Column("expires_at", BigInteger),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("deleted_at", BigInteger),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("account_id", String(6), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("response", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

server_keys = Table(
    "server_keys",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("value", Text, nullable=False),
)

# An account's own buckets, which a clip request names by id (the platform's storage profiles).
storage_profiles = Table(
    "storage_profiles",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("account_id", String(6), ForeignKey("accounts.id"), nullable=False),
    Column("name", Text, nullable=False),
    Column("is_default", Boolean, nullable=False, server_default="0"),
    Column("type", String(16), nullable=False),  # awsS3: any S3-compatible bucket
    Column("bucket_name", Text, nullable=False),
    Column("object_prefix", Text, nullable=False, server_default=""),
    Column("bucket_region", Text),
    # Self-hosting's additions: where the bucket is (not AWS) and the keys to reach it (NULL:
    # the service's own AWS variables).
    Column("endpoint_url", Text),
    Column("access_key_id", Text),
    Column("secret_access_key", Text),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)
