"""The dispatcher's HTTP/1.1 client against real sockets: servers that answer exactly the bytes
each test writes, so framing, keep-alive and broken answers are what the wire carries."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trustme
from aiohttp import web

from mediahooks.config import allowed_networks
from mediahooks.delivery.sender import BODY_CAP, Sender
from support.targets import EMBEDDING_URLS, PUBLIC_EMBEDDING_URLS

LOOPBACK = allowed_networks("127.0.0.0/8")
Answerer = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Wire:
    """A TCP server running ``answer`` on each connection; counts connections and requests."""

    def __init__(self, answer: Answerer) -> None:
        self.answer = answer
        self.connections = 0
        self.requests: list[bytes] = []

    async def read_request(self, reader: asyncio.StreamReader) -> bytes | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        request = head + await reader.readexactly(length)
        self.requests.append(request)
        return request

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.answer(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


@asynccontextmanager
async def wire(
    answer: Callable[[Wire, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
    tls: ssl.SSLContext | None = None,
) -> AsyncIterator[tuple[Wire, str]]:
    w = Wire(lambda r, wr: answer(w, r, wr))
    server = await asyncio.start_server(w.serve, "127.0.0.1", 0, ssl=tls)
    port = server.sockets[0].getsockname()[1]
    try:
        yield w, f"{'https' if tls else 'http'}://127.0.0.1:{port}/hook?x=1"
    finally:
        server.close()


def keep_alive(
    status: int = 200, body: bytes = b"ok", extra: bytes = b""
) -> Callable[..., Awaitable[None]]:
    async def answer(w: Wire, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await w.read_request(reader) is not None:
            writer.write(
                b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n%s\r\n%s"
                % (status, len(body), extra, body)
            )
            await writer.drain()

    return answer


async def post(sender: Sender, url: str, body: bytes = b'{"a":1}') -> object:
    return await sender.post(url, body, {"Content-Type": "application/json", "webhook-id": "m1"})


def sender(timeout: float = 2.0) -> Sender:
    return Sender(LOOPBACK, timeout)


async def test_a_kept_connection_carries_the_next_posts() -> None:
    async with wire(keep_alive()) as (w, url), sender() as s:
        for _ in range(5):
            response = await s.post(url, b"{}", {"webhook-id": "m"})
            assert (response.status, response.body) == (200, "ok")
    assert w.connections == 1 and len(w.requests) == 5
    first = w.requests[0].decode()
    assert first.startswith("POST /hook?x=1 HTTP/1.1\r\n")
    assert f"Host: {url.split('/')[2]}\r\n" in first and "Content-Length: 2\r\n" in first


async def test_a_connection_the_endpoint_closed_meanwhile_is_replaced() -> None:
    async def once(w: Wire, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Answers as if keeping the connection, then closes it: the next POST finds it dead.
        await w.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()

    async with wire(once) as (w, url), sender() as s:
        for _ in range(3):
            # No pause: the close may or may not have reached us when the next POST goes out.
            assert (await s.post(url, b"{}", {})).status == 200
    assert w.connections == 3


async def test_connection_close_and_an_answer_ending_with_the_connection() -> None:
    async def until_close(
        w: Wire, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await w.read_request(reader)
        writer.write(b"HTTP/1.1 202 Accepted\r\nConnection: close\r\n\r\nall of it")
        await writer.drain()

    async with wire(until_close) as (w, url), sender() as s:
        first, second = await s.post(url, b"{}", {}), await s.post(url, b"{}", {})
    assert (first.status, first.body) == (202, "all of it") == (second.status, second.body)
    assert w.connections == 2


async def test_chunked_answers_and_interim_answers_are_read() -> None:
    async def chunked(w: Wire, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await w.read_request(reader) is not None:
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            writer.write(
                b"HTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\nretry-after: 7\r\n\r\n"
            )
            writer.write(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
            await writer.drain()

    async with wire(chunked) as (w, url), sender() as s:
        for _ in range(2):
            response = await s.post(url, b"{}", {})
            assert (response.status, response.body) == (503, "hello world")
            assert response.header("Retry-After") == "7"  # whatever the case on the wire
            assert response.error_kind == "http"
    assert w.connections == 1


async def test_a_huge_answer_is_capped_and_its_connection_dropped() -> None:
    async with wire(keep_alive(body=b"x" * (10 * BODY_CAP))) as (w, url), sender() as s:
        for _ in range(2):
            response = await s.post(url, b"{}", {})
            assert response.status == 200 and len(response.body) == BODY_CAP
    assert w.connections == 2


async def test_an_answer_that_is_not_http_is_a_connection_failure() -> None:
    async def garbage(w: Wire, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await w.read_request(reader)
        writer.write(b"SSH-2.0-OpenSSH_9.2\r\n")
        await writer.drain()
        await asyncio.sleep(1)

    async with wire(garbage) as (_, url), sender() as s:
        response = await s.post(url, b"{}", {})
    assert response.status is None and response.error_kind == "connect"
    assert "not valid HTTP" in (response.error_message or "")


async def test_silence_is_a_timeout_and_the_connection_is_not_reused() -> None:
    calls = 0

    async def slow_first(
        w: Wire, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        nonlocal calls
        while await w.read_request(reader) is not None:
            calls += 1
            if calls == 1:
                await asyncio.sleep(2)  # the answer comes after the timeout: it must be ignored
            writer.write(b"HTTP/1.1 %d X\r\nContent-Length: 0\r\n\r\n" % (500 + calls))
            await writer.drain()

    async with wire(slow_first) as (w, url), sender(timeout=0.3) as s:
        first = await s.post(url, b"{}", {})
        second = await s.post(url, b"{}", {})
    assert first.error_kind == "timeout" and "0.3 s" in (first.error_message or "")
    assert second.status == 502 and w.connections == 2


async def test_refused_and_blocked_targets() -> None:
    async with wire(keep_alive()) as (_, url):
        pass  # the port is free again: nobody listens
    async with sender() as s:
        refused = await s.post(url, b"{}", {})
    assert refused.error_kind == "connect" and "cannot connect" in (refused.error_message or "")
    async with Sender([], 2.0) as strict:
        blocked = await strict.post(url, b"{}", {})
    assert blocked.error_kind == "blocked" and "loopback" in (blocked.error_message or "")


@pytest.mark.parametrize(("url", "reason"), EMBEDDING_URLS)
async def test_ipv6_forms_embedding_private_ipv4_are_blocked_at_connect(
    url: str, reason: str
) -> None:
    async with Sender([], 2.0) as strict:
        blocked = await strict.post(url, b"{}", {})
    assert blocked.error_kind == "blocked", blocked
    assert reason in (blocked.error_message or "")


@pytest.mark.parametrize("url", PUBLIC_EMBEDDING_URLS)
async def test_a_public_ipv4_behind_nat64_or_6to4_is_judged_by_it(url: str) -> None:
    # No route to these here: the attempt goes as far as connecting, which is the point.
    async with Sender([], 1.0) as strict:
        tried = await strict.post(url, b"{}", {})
    assert tried.error_kind in ("connect", "timeout"), tried


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


def server_tls(authority: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    return context


async def test_https_with_an_untrusted_certificate_is_a_tls_failure(authority: trustme.CA) -> None:
    async with wire(keep_alive(), tls=server_tls(authority)) as (_, url), sender() as s:
        response = await s.post(url, b"{}", {})
    assert response.error_kind == "tls" and "certificate" in (response.error_message or "")


async def test_https_to_a_trusted_endpoint(
    authority: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SSL_CERT_FILE is how an operator trusts an internal authority; OpenSSL reads it.
    bundle = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    async with wire(keep_alive(), tls=server_tls(authority)) as (w, url), sender() as s:
        for _ in range(3):
            assert (await s.post(url, b"{}", {})).status == 200
    assert w.connections == 1


async def test_an_aiohttp_endpoint_gets_well_formed_posts() -> None:
    seen: list[tuple[str, str, bytes]] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append((request.path_qs, request.headers["webhook-id"], await request.read()))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with sender() as s:
            for i in range(3):
                body = b'{"n":%d}' % i
                url = f"http://127.0.0.1:{port}/a%20b/caf\u00e9?q=1"
                response = await s.post(url, body, {"webhook-id": f"m{i}"})
                assert response.status == 204 and response.error_kind is None
    finally:
        await runner.cleanup()
    assert seen == [("/a%20b/caf%C3%A9?q=1", f"m{i}", b'{"n":%d}' % i) for i in range(3)]


def test_it_runs_on_uvloop_too() -> None:
    """An application embedding the dispatcher may run on uvloop, whose transports do not
    subclass asyncio's."""
    import uvloop  # installed with the server (uvicorn[standard])

    async def posts() -> tuple[int, list[int]]:
        async with wire(keep_alive()) as (w, url), sender() as s:
            statuses = [(await post(s, url)).status for _ in range(3)]  # type: ignore[attr-defined]
        return w.connections, statuses

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        assert runner.run(posts()) == (1, [200, 200, 200])
