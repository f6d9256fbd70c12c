"""Wall-clock time in the unit the hooks speak: epoch milliseconds."""

import time
from datetime import UTC, datetime


def now_ms() -> int:
    return int(time.time() * 1000)


def iso(ms: int | None) -> str | None:
    """Epoch ms as ISO 8601 UTC with milliseconds, e.g. 2026-11-23T15:17:28.123Z."""
    if ms is None:
        return None
    return (
        datetime.fromtimestamp(ms / 1000, tz=UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def from_iso(value: datetime) -> int:
    """A parsed date-time as epoch ms; a time without a zone is taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1000)
