"""The framework-neutral helper: raw body and headers in, a verified and parsed delivery out, or
one exception that already knows the HTTP status to answer (standard library only).

    hooks = Receiver(os.environ["WEBHOOK_SECRET"])

    try:
        delivery = hooks.receive(raw_body, request_headers)
    except Rejected as exc:
        return exc.status, exc.reason      # 401 forged or replayed, 400 not a hook
    handle(delivery.hook)                  # then answer 2xx, quickly
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from mediahooks.receiver.models import Hook, MalformedHook, is_image, parse, parse_thumbnail
from mediahooks.receiver.verify import (
    DEFAULT_TOLERANCE,
    Scheme,
    Secrets,
    VerificationError,
    keys_of,
    verify,
)

__all__ = ["Delivery", "Receiver", "Rejected"]


@dataclass(frozen=True)
class Delivery:
    """One verified request: the hook, the exact bytes, and what the signature proved."""

    hook: Hook
    body: bytes
    scheme: Scheme
    webhook_id: str | None
    timestamp: int | None  # webhook-timestamp, epoch seconds

    @property
    def key(self) -> str:
        """What identifies the event across retries: the ``webhook-id``. A platform hook has
        none, so its body stands in (the body carries the event's own millisecond timestamp)."""
        if self.webhook_id:
            return self.webhook_id
        return "sha256:" + hashlib.sha256(self.body).hexdigest()


class Rejected(Exception):
    """A request to refuse. ``status`` is the answer to give: 401 when it is not a genuine,
    fresh hook, 400 when it is genuine but not a hook; ``__cause__`` is the precise error."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class Receiver:
    """Verify and parse hooks signed with ``secrets`` (several during a rotation)."""

    def __init__(
        self,
        secrets: Secrets,
        *,
        tolerance: float = DEFAULT_TOLERANCE,
        platform: bool = False,
    ) -> None:
        self.secrets = [secrets] if isinstance(secrets, str) else list(secrets)
        keys_of(self.secrets)  # a bad secret fails here, at start, not on every request
        self.tolerance = tolerance
        self.platform = platform

    def receive(
        self, body: bytes | str, headers: Mapping[str, str], *, now: float | None = None
    ) -> Delivery:
        raw = body.encode() if isinstance(body, str) else bytes(body)
        try:
            verified = verify(
                raw,
                headers,
                self.secrets,
                tolerance=self.tolerance,
                platform=self.platform,
                now=now,
            )
        except VerificationError as exc:
            raise Rejected(401, f"{type(exc).__name__}: {exc}") from exc
        try:
            # A `thumbnail` hook is a JPEG whose facts travel in headers; every other is JSON.
            hook = parse_thumbnail(raw, headers) if is_image(headers) else parse(raw)
        except MalformedHook as exc:
            raise Rejected(400, f"MalformedHook: {exc}") from exc
        return Delivery(hook, raw, verified.scheme, verified.webhook_id, verified.timestamp)
