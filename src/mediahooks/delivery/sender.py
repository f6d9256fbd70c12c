"""One HTTP attempt: POST the stored bytes, never follow a redirect, classify what happened.

Transport failures and HTTP answers are told apart (the attempt log needs exactly that split);
every connection goes through the SSRF guard's resolver, so we connect only to checked addresses.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from mediahooks.config import Network
from mediahooks.delivery import guard

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


class GuardedResolver(AbstractResolver):
    """Resolves through the SSRF guard; aiohttp then connects to these addresses only."""

    def __init__(self, allowed: Sequence[Network]) -> None:
        self.allowed = allowed

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        addresses = await guard.resolve(host, port, self.allowed)
        return [
            ResolveResult(
                hostname=host,
                host=str(address),
                port=port,
                family=socket.AF_INET6 if address.version == 6 else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in addresses
        ]

    async def close(self) -> None:
        return None


class Sender:
    def __init__(self, allowed: Sequence[Network], timeout: float, concurrency: int) -> None:
        self.allowed = allowed
        self.timeout = timeout
        self.concurrency = concurrency
        self._session: aiohttp.ClientSession | None = None
        # IP literal targets already checked: None (allowed) or why they are refused.
        self._literals: dict[tuple[str, int], tuple[str, str] | None] = {}

    async def __aenter__(self) -> Sender:
        connector = aiohttp.TCPConnector(
            resolver=GuardedResolver(self.allowed), limit=self.concurrency, ttl_dns_cache=10
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self.timeout),
            auto_decompress=False,
            skip_auto_headers=("User-Agent",),
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Response:
        assert self._session is not None, "use `async with Sender(...)`"
        started = time.perf_counter()

        def elapsed() -> int:
            return int((time.perf_counter() - started) * 1000)

        try:
            await self._check_literal(url)
            async with self._session.post(
                url, data=body, headers=headers, allow_redirects=False
            ) as resp:
                payload = await _read_capped(resp)
                status = resp.status
                kind, message = _classify_status(status, resp.headers.get("Location"))
                return Response(
                    duration_ms=elapsed(),
                    status=status,
                    headers={k: storable(v) for k, v in resp.headers.items()},
                    body=storable(payload.decode("utf-8", errors="replace")),
                    error_kind=kind,
                    error_message=message,
                )
        except guard.TargetRefused as exc:
            return Response(elapsed(), error_kind=exc.kind, error_message=str(exc))
        except Exception as exc:  # every transport failure is an outcome, not a crash
            kind, message = _classify_error(exc, self.timeout)
            return Response(elapsed(), error_kind=kind, error_message=storable(message))

    async def _check_literal(self, url: str) -> None:
        # aiohttp skips the resolver for IP literals, so those are checked here; the verdict on
        # an address never changes for this sender's allowed networks, so it is kept.
        literal = _literal_target(url)
        if literal is None:
            return
        if literal not in self._literals:
            if len(self._literals) >= 4096:
                self._literals.clear()
            try:
                await guard.resolve(*literal, self.allowed)
                self._literals[literal] = None
            except guard.TargetRefused as exc:
                self._literals[literal] = (exc.kind, str(exc))
        refused = self._literals[literal]
        if refused is not None:
            raise guard.TargetRefused(*refused)


@functools.lru_cache(maxsize=4096)
def _literal_target(url: str) -> tuple[str, int] | None:
    """The host and port of a URL whose host is an IP address; None for a host name.

    Cached: every attempt asks, and parsing the URL each time is a measurable share of the
    dispatcher's work.
    """
    host, port = guard.check_url(url)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None
    return host, port


def storable(text: str) -> str:
    """Text any database keeps: PostgreSQL refuses NUL characters in text."""
    return text.replace("\x00", "\ufffd")


async def _read_capped(resp: aiohttp.ClientResponse) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < BODY_CAP:
        chunk = await resp.content.read(BODY_CAP - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _classify_status(status: int, location: str | None) -> tuple[str | None, str | None]:
    if 200 <= status < 300:
        return None, None
    if 300 <= status < 400:
        return "redirect", f"answered {status} to {location or '(no Location)'}; redirects are "
        "not followed: point the webhook at the final URL"
    return "http", f"answered {status}"


def _classify_error(exc: BaseException, timeout: float) -> tuple[str, str]:
    if isinstance(exc, TimeoutError):
        return "timeout", f"no complete answer within {timeout:g} s"
    if isinstance(
        exc, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError | ssl.SSLError
    ):
        return "tls", f"TLS failed: {exc}"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return "dns", f"DNS lookup failed: {exc}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "connect", f"cannot connect: {exc.os_error or exc}"
    if isinstance(exc, aiohttp.ClientError | OSError):
        return "connect", f"connection failed: {exc!r}"
    if isinstance(exc, ValueError):
        return "blocked", str(exc)
    raise exc
