"""The delivery policy: what an attempt's outcome means and when to try again (pure).

Waiting is a number this module returns, never a sleep, so tests shorten the schedule instead of
waiting it out.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from enum import StrEnum

# Svix's schedule: the first attempt at once, then these gaps (seconds).
DEFAULT_SCHEDULE: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000)


class Verdict(StrEnum):
    SUCCEEDED = "succeeded"
    RETRY = "retry"
    FAILED = "failed"  # no attempts left
    GONE = "gone"  # 410: the endpoint asked us to stop; the webhook is disabled


@dataclass(frozen=True)
class Policy:
    schedule: tuple[float, ...] = DEFAULT_SCHEDULE
    jitter: float = 0.2
    retry_after_cap: float = 3600.0
    # A webhook failing without a single success for this long is disabled for `disable_for`
    # (decided where verdicts are written, in one statement: `store.verdicts.record`).
    disable_after: float = 5 * 86400.0
    disable_for: float = 86400.0

    @property
    def max_attempts(self) -> int:
        return len(self.schedule) + 1


def parse_schedule(text: str) -> tuple[float, ...]:
    """``"5,300,1800"`` -> gaps in seconds between attempts."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    try:
        gaps = tuple(float(p) for p in parts)
    except ValueError as exc:
        raise ValueError(f"retry schedule must be comma-separated seconds, got {text!r}") from exc
    if any(g < 0 for g in gaps):
        raise ValueError("retry schedule gaps must not be negative")
    return gaps


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def verdict(status: int | None, tries: int, policy: Policy) -> Verdict:
    """The meaning of an attempt; ``tries`` counts attempts made so far, this one included.

    ``status`` is None when no response came back (timeout, refused, blocked...). Redirects are
    never followed and count as failures.
    """
    if status is not None and 200 <= status < 300:
        return Verdict.SUCCEEDED
    if status == 410:
        return Verdict.GONE
    return Verdict.RETRY if tries < policy.max_attempts else Verdict.FAILED


def next_delay(
    tries: int,
    policy: Policy,
    status: int | None = None,
    retry_after: float | None = None,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds until the next attempt after ``tries`` attempts (``tries`` >= 1).

    The scheduled gap gets +/- ``jitter``; a ``Retry-After`` on 429/503 is a floor, capped.
    """
    gap = policy.schedule[min(tries, len(policy.schedule)) - 1]
    delay = gap * (1 + policy.jitter * (2 * rand() - 1))
    if status in (429, 503) and retry_after is not None:
        delay = max(delay, min(retry_after, policy.retry_after_cap))
    return delay
