"""The `mediahooks` command: serve | worker | migrate."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console

from mediahooks import __version__
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
    # Flags win over MEDIAHOOKS_* variables; unset flags leave the variables in charge.
    try:
        return Settings(**{k: v for k, v in flags.items() if v is not None})
    except ValidationError as exc:
        for error in exc.errors():
            name = "MEDIAHOOKS_" + "_".join(str(p) for p in error["loc"]).upper()
            console.print(f"[red]invalid setting {name}:[/] {error['msg']}")
        raise typer.Exit(2) from None


def _logging() -> None:
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s"
    )
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
    _logging()
    settings = _settings(host=host, port=port, data_dir=data_dir)
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

    service = Service(settings)
    secret = await service.open(dispatch=dispatch)
    try:
        extra = (lambda app: demo_mode.mount(app, service, console)) if demo else None
        running = await server.start(service, settings.host, settings.port, extra)
        _banner(service, secret, running.url)
        if demo:
            await demo_mode.subscribe_and_send(service, running.url, console)
        await running.task
    finally:
        await service.close()


def _banner(service: Service, secret: str | None, url: str) -> None:
    console.print(f"[bold]mediahooks {__version__}[/] listening on [cyan]{url}[/]")
    console.print(f"  database   {service.db.engine.url.render_as_string(hide_password=True)}")
    console.print(f"  account    {service.account_id}")
    if secret:
        console.print(f"  API secret [bold yellow]{secret}[/]  (shown once: keep it)")
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
    _logging()
    asyncio.run(_worker(_settings(data_dir=data_dir)))


async def _worker(settings: Settings) -> None:
    service = Service(settings)
    await service.open(dispatch=True)
    console.print(f"mediahooks worker {service.dispatcher and service.dispatcher.owner} running")
    print("READY worker", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        # Attempts in flight finish and are recorded before the process ends.
        await service.close()


@app.command()
def migrate(data_dir: DataDir = None) -> None:
    """Apply the database migrations (serve and worker also do it at start)."""
    settings = _settings(data_dir=data_dir)

    async def run() -> None:
        service = Service(settings)
        await service.db.migrate()
        await service.db.close()

    asyncio.run(run())
    console.print("database is up to date")


@app.command()
def version() -> None:
    """Print the version."""
    print(__version__)


def main() -> None:
    app()
