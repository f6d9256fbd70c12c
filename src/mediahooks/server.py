"""Serving the API: uvicorn on our event loop, beside the service's background workers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from mediahooks import dashboard
from mediahooks.api.app import create_app
from mediahooks.ingest import libsrt, rtmp, srt
from mediahooks.service import Service

log = logging.getLogger("mediahooks")


class HalfCloseProtocol(HttpToolsProtocol):
    """HTTP that answers a client which half-closed its connection after a complete request.

    ffmpeg's HLS `-method PUT` shuts down its sending side once a body is sent, then reads the
    answer. asyncio's default treats that end-of-file as a lost connection and the body already
    received is dropped; keep the connection while a complete request waits for its response.
    """

    def eof_received(self) -> bool | None:  # type: ignore[override]
        cycle = self.cycle
        if cycle is not None and not cycle.more_body and not cycle.response_complete:
            return True
        return None


class Server(uvicorn.Server):
    """uvicorn's server, telling the service when a signal asks it to stop: the dashboard's
    live streams end then, instead of holding the shutdown until its grace period is over."""

    def __init__(self, config: uvicorn.Config, service: Service) -> None:
        super().__init__(config)
        self.service = service

    def handle_exit(self, sig: int, frame: Any) -> None:
        self.service.stopping.set()
        super().handle_exit(sig, frame)


@dataclass
class Running:
    server: uvicorn.Server
    task: asyncio.Task[None]
    url: str
    service: Service

    async def stop(self) -> None:
        self.service.stopping.set()
        self.server.should_exit = True
        await self.task


async def start(
    service: Service, host: str, port: int, extra: Callable[[FastAPI], None] | None = None
) -> Running:
    """Start listening (port 0: any free port) and return once connections are accepted."""
    config = uvicorn.Config(
        create_app(service, [dashboard.mount, *([extra] if extra else [])]),
        host=host,
        port=port,
        lifespan="off",
        log_level="warning",
        server_header=False,
        http=HalfCloseProtocol,
        timeout_graceful_shutdown=5,
    )
    server = Server(config, service)
    task = asyncio.create_task(server.serve(), name="http")
    while not server.started:
        if task.done():
            await task
            raise SystemExit(f"cannot listen on {host}:{port}")
        await asyncio.sleep(0.01)
    bound_port = server.servers[0].sockets[0].getsockname()[1]
    await _start_rtmp(service, host)
    await _start_srt(service, host)
    service.loops.start("viewers", service.viewers.run)
    return Running(server, task, f"http://{host}:{bound_port}", service)


async def _start_rtmp(service: Service, host: str) -> None:
    """The RTMP door beside the API, unless MEDIAHOOKS_RTMP_PORT is off; `service.rtmp.port`
    is the bound port."""
    settings = service.settings
    if settings.rtmp_port is None:
        return
    tls = None
    if settings.rtmp_cert is not None or settings.rtmp_key is not None:
        if settings.rtmp_cert is None or settings.rtmp_key is None:
            raise SystemExit("RTMPS needs both MEDIAHOOKS_RTMP_CERT and MEDIAHOOKS_RTMP_KEY")
        tls = rtmp.tls_context(settings.rtmp_cert, settings.rtmp_key)
    door = rtmp.RtmpServer(service.live)
    rtmp_host = settings.rtmp_host or host
    try:
        await door.start(rtmp_host, settings.rtmp_port, tls)
    except OSError as exc:
        raise SystemExit(
            f"cannot listen for RTMP on {rtmp_host}:{settings.rtmp_port}: {exc}"
        ) from None
    service.rtmp = door


async def _start_srt(service: Service, host: str) -> None:
    """The SRT door beside the API, unless MEDIAHOOKS_SRT_PORT is off; `service.srt.port` is
    the bound port. Without libsrt it stays off, and says so."""
    settings = service.settings
    if settings.srt_port is None:
        return
    door = srt.SrtServer(service.live, service.known_tokens)
    srt_host = settings.srt_host or host
    try:
        await door.start(srt_host, settings.srt_port)
    except libsrt.Unavailable as exc:
        log.warning("SRT ingest is off: %s", exc)
        return
    except OSError as exc:
        raise SystemExit(
            f"cannot listen for SRT on {srt_host}:{settings.srt_port}: {exc}"
        ) from None
    service.srt = door
    service.loops.start("srt", door.run)
    service.loops.start(
        "srt_tokens",
        lambda beat: service.known_tokens.run(service.db, beat, settings.srt_token_refresh),
    )
