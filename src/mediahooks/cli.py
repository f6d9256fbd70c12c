"""The `mediahooks` command: serve | worker | migrate | publish | listen.

Server modules are imported inside the commands that need them, so `mediahooks listen` runs
where only the receiving side is installed.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from mediahooks import __version__

if TYPE_CHECKING:
    from mediahooks.config import Settings
    from mediahooks.service import Service

app = typer.Typer(help="mediahooks: media webhooks for live streams.", no_args_is_help=True)
console = Console(stderr=True, soft_wrap=True)

Host = Annotated[str | None, typer.Option(help="Address to listen on (default 127.0.0.1).")]
Port = Annotated[int | None, typer.Option(help="Port to listen on (0: any free) (default 8080).")]
DataDir = Annotated[
    Path | None, typer.Option(help="Where the SQLite database and media live (default ./data).")
]


def _settings(**flags: Any) -> Settings:
    from pydantic import ValidationError

    from mediahooks.config import Settings

    # Flags win over MEDIAHOOKS_* variables; unset flags leave the variables in charge.
    try:
        return Settings(**{k: v for k, v in flags.items() if v is not None})
    except ValidationError as exc:
        for error in exc.errors():
            name = "MEDIAHOOKS_" + "_".join(str(p) for p in error["loc"]).upper()
            console.print(f"[red]invalid setting {name}:[/] {error['msg']}")
        raise typer.Exit(2) from None


def _logging(level: str) -> None:
    logging.basicConfig(level=level, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)


@app.command()
def serve(
    host: Host = None,
    port: Port = None,
    data_dir: DataDir = None,
    dispatcher: Annotated[
        bool, typer.Option(help="Deliver hooks in this process too (off: API only).")
    ] = True,
    demo: Annotated[
        bool, typer.Option(help="Subscribe a built-in receiver and send it a test event.")
    ] = False,
) -> None:
    """Run the API with the dispatcher inside (one process is all you need)."""
    settings = _settings(host=host, port=port, data_dir=data_dir)
    _logging(settings.log_level)
    if demo:
        # The demo receiver lives on this server, so loopback must be reachable.
        allowed = settings.allow_private_targets
        if not settings.private_networks:
            allowed = "127.0.0.0/8,::1/128"
        settings = settings.model_copy(update={"allow_private_targets": allowed})
    asyncio.run(_serve(settings, dispatcher, demo))


async def _serve(settings: Settings, dispatch: bool, demo: bool = False) -> None:
    from mediahooks import demo as demo_mode
    from mediahooks import server
    from mediahooks.service import Service

    service = Service(settings)
    secret = await service.open(dispatch=dispatch)
    try:
        extra = (lambda app: demo_mode.mount(app, service, console)) if demo else None
        running = await server.start(service, settings.host, settings.port, extra)
        _banner(service, secret, running.url)
        if demo:
            await demo_mode.subscribe_and_send(service, running.url, console)
        broken = asyncio.create_task(service.broken.wait())
        await asyncio.wait([running.task, broken], return_when=asyncio.FIRST_COMPLETED)
        if service.broken.is_set():
            await running.stop()
        broken.cancel()
    finally:
        await service.close()
    if service.broken.is_set():
        raise SystemExit(1)


def _banner(service: Service, secret: str | None, url: str) -> None:
    console.print(f"[bold]mediahooks {__version__}[/] listening on [cyan]{url}[/]")
    console.print(f"  database   {service.db.engine.url.render_as_string(hide_password=True)}")
    console.print(f"  account    {service.account_id}")
    if secret:
        console.print(f"  API secret [bold yellow]{secret}[/]  (shown once: keep it)")
    console.print(f"  dashboard  {url}/  (sign in with the API secret)")
    console.print(f"  API docs   {url}/docs")
    console.print(f"  metrics    {url}/metrics")
    console.print(
        f"  try        curl -H 'Authorization: Bearer <API secret>' {url}/api/webhooks/list"
    )
    # The one line machines read: tests and scripts wait for it.
    print(f"READY {url}", flush=True)


@app.command()
def worker(data_dir: DataDir = None) -> None:
    """Run a dispatcher alone (scale out: many workers on one PostgreSQL)."""
    settings = _settings(data_dir=data_dir)
    _logging(settings.log_level)
    asyncio.run(_worker(settings))


async def _worker(settings: Settings) -> None:
    from mediahooks.service import Service

    service = Service(settings)
    await service.open(dispatch=True)
    console.print(f"mediahooks worker {service.dispatcher and service.dispatcher.owner} running")
    print("READY worker", flush=True)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, service.stopping.set)
    try:
        await service.stopping.wait()  # a signal, or a loop broken on a bug
    finally:
        # Attempts in flight finish and are recorded before the process ends.
        await service.close()
    if service.broken.is_set():
        raise SystemExit(1)


@app.command()
def migrate(data_dir: DataDir = None) -> None:
    """Apply the database migrations (serve and worker also do it at start)."""
    settings = _settings(data_dir=data_dir)

    async def run() -> None:
        from mediahooks.service import Service

        service = Service(settings)
        await service.db.migrate()
        await service.db.close()

    asyncio.run(run())
    console.print("database is up to date")


class SegmentType(StrEnum):
    mpegts = "mpegts"
    fmp4 = "fmp4"


@app.command()
def publish(
    stream_name: Annotated[str, typer.Argument(help="The stream to publish.")],
    token: Annotated[
        str, typer.Option(envvar="MEDIAHOOKS_PUBLISH_TOKEN", help="The publish token.")
    ],
    server: Annotated[str, typer.Option(help="The mediahooks server.")] = "http://127.0.0.1:8080",
    seconds: Annotated[
        float | None,
        typer.Option(help="Stream length (default: 40 s synthetic, all of --file).", min=0.1),
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="Re-encode this media file instead."),
    ] = None,
    segment_type: Annotated[SegmentType, typer.Option(help="Segment format.")] = (
        SegmentType.mpegts
    ),
    fast: Annotated[
        bool, typer.Option(help="Back-date the stream and push it all at once.")
    ] = False,
    loop: Annotated[bool, typer.Option(help="Start over at the end, until stopped.")] = False,
) -> None:
    """Publish a live stream over HLS: a synthetic test picture and tone, or a media file."""
    from mediahooks.media.publisher import PublishError

    if fast and loop:
        console.print("[red]--fast needs an end: it cannot go with --loop[/]")
        raise typer.Exit(2)
    url = f"{server.rstrip('/')}/ingest/{stream_name}"
    try:
        asyncio.run(_publish(url, token, seconds, file, segment_type, fast, loop))
    except PublishError as exc:
        console.print(f"[red]publishing stopped:[/] {exc}")
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        console.print("stopped; the stream was ended")
        raise typer.Exit(130) from None


async def _publish(
    url: str,
    token: str,
    seconds: float | None,
    file: Path | None,
    segment_type: SegmentType,
    fast: bool,
    loop: bool,
) -> None:
    from mediahooks.clock import iso, now_ms
    from mediahooks.media import publisher, synthetic

    kind: synthetic.SegmentKind = "ts" if segment_type is SegmentType.mpegts else "fmp4"
    length = seconds if seconds is not None else float("inf") if loop else None
    if file is None:
        segments = synthetic.iter_segments(40 if length is None else length, kind)
    else:
        segments = synthetic.iter_file_segments(file, kind, loop=loop, seconds=length)
    start_ms = None
    if fast:
        # Encoded first, so the stream can end a second before it is sent: all of it is past.
        encoded = await asyncio.to_thread(list, segments)
        start_ms = now_ms() - round(sum(s.duration for s in encoded) * 1000) - 1000
        segments = iter(encoded)
    console.print(f"publishing to [cyan]{url}[/] ({'at once' if fast else 'in real time'})")

    def progress(report: publisher.PublishReport) -> None:
        if report.segments % 5 == 0:
            console.print(f"  {report.segments} segments sent, up to {iso(report.last_ms)}")

    report = await publisher.publish(url, token, segments, not fast, start_ms, progress)
    console.print(
        f"published {report.segments} segments ({report.bytes / 1e6:.1f} MB), "
        f"{iso(report.first_ms)} to {iso(report.last_ms)}"
    )


@app.command()
def version() -> None:
    """Print the version."""
    print(__version__)


def main() -> None:
    app()


# `listen` lives with the receiver, which needs none of the server's dependencies.
from mediahooks.receiver.cli import listen_command  # noqa: E402

app.command("listen")(listen_command)
