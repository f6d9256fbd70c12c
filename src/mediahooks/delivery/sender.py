"""One HTTP attempt: POST the stored bytes, never follow a redirect, classify what happened.

Transport failures and HTTP answers are told apart (the attempt log needs exactly that split);
every connection goes through the SSRF guard, so we connect only to checked addresses.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from types import TracebackType

from mediahooks.config import Network
from mediahooks.delivery import guard
from mediahooks.delivery.client import AnswerFailed, ConnectFailed, Pool

BODY_CAP = 16 * 1024


@dataclass(frozen=True)
class Response:
    """What one attempt saw. ``status`` is None when no HTTP answer came back."""

    duration_ms: int
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    error_kind: str | None = None  # timeout | connect | tls | dns | blocked | redirect | http
    error_message: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def header(self, name: str) -> str | None:
        """A response header, whatever case the endpoint wrote its name in."""
        return header_of(self.headers.items(), name)


def header_of(headers: Iterable[tuple[str, str]], name: str) -> str | None:
    name = name.lower()
    return next((v for k, v in headers if k.lower() == name), None)


class Sender:
    def __init__(self, allowed: Sequence[Network], timeout: float) -> None:
        self.timeout = timeout
        self._pool = Pool(allowed)

    async def __aenter__(self) -> Sender:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._pool.close()

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Response:
        started = time.perf_counter()

        def elapsed() -> int:
            return int((time.perf_counter() - started) * 1000)

        try:
            answer = await self._pool.post(url, body, headers, BODY_CAP, self.timeout)
        except guard.TargetRefused as exc:
            return Response(elapsed(), error_kind=exc.kind, error_message=str(exc))
        except Exception as exc:  # every transport failure is an outcome, not a crash
            failure, why = _classify_error(exc, self.timeout)
            return Response(elapsed(), error_kind=failure, error_message=storable(why))
        kind, message = _classify_status(answer.status, header_of(answer.headers, "Location"))
        return Response(
            duration_ms=elapsed(),
            status=answer.status,
            headers={name: storable(value) for name, value in answer.headers},
            body=storable(answer.body.decode("utf-8", errors="replace")),
            error_kind=kind,
            error_message=message,
        )


def storable(text: str) -> str:
    """Text any database keeps: PostgreSQL refuses NUL characters in text."""
    return text.replace("\x00", "\ufffd")


def _classify_status(status: int, location: str | None) -> tuple[str | None, str | None]:
    if 200 <= status < 300:
        return None, None
    if 300 <= status < 400:
        where = f"Location: {_shortened(storable(location))}" if location else "no Location"
        return "redirect", (
            f"answered {status} ({where}); redirects are not followed: point the webhook at "
            "the final URL"
        )
    return "http", f"answered {status}"


LOCATION_CAP = 2048  # the endpoint writes the header; the log keeps enough of it to act on


def _shortened(text: str) -> str:
    return text if len(text) <= LOCATION_CAP else text[:LOCATION_CAP] + "…"


def _classify_error(exc: BaseException, timeout: float) -> tuple[str, str]:
    if isinstance(exc, TimeoutError):
        return "timeout", f"no complete answer within {timeout:g} s"
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return "tls", f"TLS failed: {exc}"
    if isinstance(exc, ConnectFailed):
        return "connect", str(exc)
    if isinstance(exc, AnswerFailed | OSError):
        return "connect", f"connection failed: {exc}"
    if isinstance(exc, ValueError):
        return "blocked", str(exc)
    raise exc
