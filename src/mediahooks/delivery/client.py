"""A lean HTTP/1.1 client for the one thing the dispatcher does: POST a small body, read the
status, the headers and the first bytes of the answer, and keep the connection for the next POST
to the same origin.

A general client (aiohttp) spends about three times the CPU on each request, and every delivery
pays it: sending is the dispatcher's largest cost (see bench/delivery.py). The parsing is
httptools' (llhttp, Node.js's parser); connections go only to addresses the SSRF guard checked.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast
from urllib.parse import quote, urlsplit

import httptools

from mediahooks.config import Network
from mediahooks.delivery import guard

IDLE_SECONDS = 15.0  # an unused connection is closed after this long (aiohttp's default too)


class ConnectFailed(OSError):
    """No connection could be opened to any checked address of the host."""


class AnswerFailed(Exception):
    """The connection broke or the answer is not HTTP. ``answered``: some of it had arrived."""

    def __init__(self, message: str, answered: bool) -> None:
        super().__init__(message)
        self.answered = answered


@dataclass(frozen=True)
class Target:
    """A URL taken apart once: where to connect, and the request line's parts."""

    https: bool
    host: str
    port: int
    path: str  # the request target: path and query, percent-encoded
    host_header: str

    @property
    def origin(self) -> tuple[bool, str, int]:
        return self.https, self.host, self.port


@functools.lru_cache(maxsize=4096)
def target(url: str) -> Target:
    """The URL's parts; ValueError (from the guard) for a URL no webhook may have."""
    host, port = guard.check_url(url)
    parts = urlsplit(url)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    https = parts.scheme == "https"
    name = host.encode("idna").decode("ascii") if not host.isascii() else host
    name = f"[{name}]" if ":" in name else name
    default = 443 if https else 80
    return Target(
        https=https,
        host=host,
        port=port,
        # Keep escapes already there; encode what may not appear raw in a request line.
        path=quote(path, safe="/%:@!$&'()*+,;=-._~?"),
        host_header=name if port == default else f"{name}:{port}",
    )


@dataclass(frozen=True)
class Answer:
    status: int
    headers: list[tuple[str, str]]  # as sent, in order
    body: bytes  # at most the cap given to `Pool.post`


class Connection(asyncio.Protocol):
    """One keep-alive connection; one exchange at a time."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reusable = False
        self.idle_since = 0.0
        self._waiter: asyncio.Future[Answer] | None = None
        self._cap = 0
        self._reset()

    def _reset(self) -> None:
        self._headers: list[tuple[str, str]] = []
        self._body: list[bytes] = []
        self._size = 0
        self._headers_done = False
        self._framed = False  # the length is known (Content-Length or chunked)
        self._received = False

    async def exchange(self, request: bytes, cap: int, deadline: float) -> Answer:
        """Send ``request`` and wait for the answer until ``deadline`` (the loop's clock)."""
        assert self.transport is not None and self._waiter is None
        self._reset()
        self.reusable = False
        self._cap = cap
        loop = asyncio.get_running_loop()
        self._waiter = loop.create_future()
        # A bare timer: asyncio.timeout() costs several times more, on every attempt.
        timer = loop.call_at(deadline, self._expire)
        try:
            self.transport.write(request)
            return await self._waiter
        finally:
            timer.cancel()
            self._waiter = None

    def _expire(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(TimeoutError())
        self.close()

    def usable(self, now: float) -> bool:
        """Open, and idle for less than IDLE_SECONDS (``now`` on the monotonic clock)."""
        return not self.closed and now - self.idle_since < IDLE_SECONDS

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.abort()
        self.closed = True  # from now on: never pooled again

    # --- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's does not subclass asyncio's, hence no isinstance check).
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._waiter is None or self._waiter.done():
            self.close()  # bytes nobody asked for: the connection's state is unknown
            return
        self._received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail("the endpoint switched protocols")
        except httptools.HttpParserError as exc:
            self._fail(f"the answer is not valid HTTP/1.1: {exc}")

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._headers_done and not self._framed:
            self._finish()  # an answer delimited by the end of the connection
        else:
            self._fail("the endpoint closed the connection before a complete answer")

    # --- httptools callbacks --------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._reset()
        self._received = True

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        self._headers_done = True
        self._framed = any(
            name.lower() in ("content-length", "transfer-encoding") for name, _ in self._headers
        )

    def on_body(self, body: bytes) -> None:
        room = self._cap - self._size
        if room > 0:
            self._body.append(body[:room])
            self._size += min(room, len(body))
        if self._size >= self._cap and len(body) > room:
            # Enough of it: the rest is not read, so this connection cannot carry another.
            self._finish()
            self.close()

    def on_message_complete(self) -> None:
        if self.parser.get_status_code() < 200:
            self._reset()  # an interim answer (100 Continue): the real one follows
            return
        self.reusable = self.parser.should_keep_alive()
        self._finish()

    def _finish(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            answer = Answer(self.parser.get_status_code(), self._headers, b"".join(self._body))
            self._waiter.set_result(answer)

    def _fail(self, message: str) -> None:
        self.close()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(AnswerFailed(message, self._received))


class Pool:
    """Keep-alive connections per origin, opened only to addresses the guard allowed."""

    def __init__(self, allowed: Sequence[Network]) -> None:
        self.allowed = allowed
        self._idle: dict[tuple[bool, str, int], list[Connection]] = {}
        self._tls: ssl.SSLContext | None = None
        self._swept = time.monotonic()

    async def post(
        self, url: str, body: bytes, headers: dict[str, str], cap: int, time_limit: float
    ) -> Answer:
        """POST ``body`` to ``url``, all within ``time_limit`` seconds; raises ValueError for a URL
        no webhook may have, TargetRefused, ConnectFailed, ssl.SSLError, TimeoutError or
        AnswerFailed when no answer came."""
        deadline = asyncio.get_running_loop().time() + time_limit
        to = target(url)
        lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        request = (
            f"POST {to.path} HTTP/1.1\r\nHost: {to.host_header}\r\n"
            f"Content-Length: {len(body)}\r\n{lines}\r\n"
        ).encode("latin-1") + body
        conn = self._take(to.origin)
        if conn is not None:
            try:
                return await self._exchange(to, conn, request, cap, deadline)
            except AnswerFailed as exc:
                # The endpoint closed the kept connection as we reused it: not an answer, so
                # try once on a new connection (at worst it is sent twice, which hooks allow).
                if exc.answered:
                    raise
        async with asyncio.timeout_at(deadline):
            conn = await self._connect(to)
        return await self._exchange(to, conn, request, cap, deadline)

    async def _exchange(
        self, to: Target, conn: Connection, request: bytes, cap: int, deadline: float
    ) -> Answer:
        try:
            answer = await conn.exchange(request, cap, deadline)
        except BaseException:
            conn.close()  # cancelled (timed out) or broken: its state is unknown
            raise
        if conn.reusable and not conn.closed:
            conn.idle_since = time.monotonic()
            self._idle.setdefault(to.origin, []).append(conn)
        else:
            conn.close()
        return answer

    def _take(self, origin: tuple[bool, str, int]) -> Connection | None:
        now = time.monotonic()
        if now - self._swept > IDLE_SECONDS:
            self._sweep(now)
        idle = self._idle.get(origin)
        while idle:
            conn = idle.pop()
            if conn.usable(now):
                return conn
            conn.close()
        return None

    def _sweep(self, now: float) -> None:
        """Close the connections idle for too long, whatever their origin."""
        self._swept = now
        for origin, idle in list(self._idle.items()):
            for conn in idle:
                if not conn.usable(now):
                    conn.close()
            fresh = [conn for conn in idle if not conn.closed]
            if fresh:
                self._idle[origin] = fresh
            else:
                del self._idle[origin]

    async def _connect(self, to: Target) -> Connection:
        addresses = await guard.resolve(to.host, to.port, self.allowed)
        loop = asyncio.get_running_loop()
        tls = self._context() if to.https else None
        failures = []
        for address in addresses:
            try:
                _, conn = await loop.create_connection(
                    Connection,
                    str(address),
                    to.port,
                    ssl=tls,
                    server_hostname=to.host if tls else None,
                )
                return conn
            except ssl.SSLError:
                raise
            except OSError as exc:
                failures.append(f"{address}: {exc.strerror or exc}")
        raise ConnectFailed(f"cannot connect to {to.host}:{to.port} ({'; '.join(failures)})")

    def _context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return self._tls

    def close(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()
