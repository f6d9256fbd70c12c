"""The `listen` command's options. It needs only the receiver's dependencies (Typer, Rich,
aiohttp, Apprise), so `python -m mediahooks.receiver` runs it without the server installed."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from mediahooks.receiver.listen import CannotListen, ListenConfig, Listener, main_console, serve
from mediahooks.receiver.queue import StateInUse

_RATE = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([kKmMgG]?)(?:i?B)?(?:/s)?")


def parse_rate(text: str) -> int:
    """``500k``, ``2M``, ``1.5MB/s`` or ``64000`` as bytes per second (k, M, G are powers of
    1000, as the progress bar shows them)."""
    match = _RATE.fullmatch(text.strip())
    if match is None or float(match.group(1)) <= 0:
        raise typer.BadParameter(f"not a rate in bytes per second: {text!r} (try 500k or 2M)")
    scale = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9}[match.group(2).lower()]
    return max(1, int(float(match.group(1)) * scale))


def listen_command(
    secret: Annotated[
        list[str],
        typer.Option(
            envvar="MEDIAHOOKS_WEBHOOK_SECRET",
            help="The webhook's secret (base64, or whsec_...). Repeat it during a rotation.",
        ),
    ],
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free).")] = 8090,
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0: all).")] = ("127.0.0.1"),
    download_dir: Annotated[
        Path, typer.Option(help="Files go to <download-dir>/<streamName>/<mediaAssetId>.<ext>.")
    ] = Path("downloads"),
    state_dir: Annotated[
        Path | None,
        typer.Option(help="Where the queue and the handled ids live (default: in download-dir)."),
    ] = None,
    api_url: Annotated[
        str | None,
        typer.Option(envvar="MEDIAHOOKS_API_URL", help="The media API, to read finished assets."),
    ] = None,
    api_secret: Annotated[
        str | None, typer.Option(envvar="MEDIAHOOKS_API_SECRET", help="The API secret.")
    ] = None,
    exec_command: Annotated[
        str | None,
        typer.Option(
            "--exec",
            help="A shell command run per hook: the hook JSON on stdin, MEDIAHOOKS_* variables.",
        ),
    ] = None,
    notify: Annotated[
        list[str] | None,
        typer.Option(help="An Apprise URL to notify (mailto://, slack://, ntfys://...). Repeat."),
    ] = None,
    notify_on: Annotated[
        list[str] | None,
        typer.Option(help="Events that notify (default: completed, errored, deleted). Repeat."),
    ] = None,
    platform: Annotated[
        bool,
        typer.Option(
            help="Also accept X-Millicast-Signature alone (hooks straight from the platform; "
            "they carry no timestamp, so their replays cannot be refused)."
        ),
    ] = False,
    tolerance: Annotated[
        float, typer.Option(help="Seconds a signed request stays valid.", min=1)
    ] = 300.0,
    rate_limit: Annotated[
        str | None, typer.Option(help="Download at most this fast, e.g. 500k or 2M (bytes/s).")
    ] = None,
    concurrency: Annotated[int, typer.Option(help="Hooks worked on at once.", min=1)] = 2,
) -> None:
    """Receive hooks: verify, queue, download finished media, run a command, notify."""
    console = main_console()
    if bool(api_url) != bool(api_secret):
        console.print("[red]--api-url and --api-secret go together[/]")
        raise typer.Exit(2)
    if api_url and not re.match(r"https?://", api_url):
        console.print("[red]--api-url must start with http:// or https://[/]")
        raise typer.Exit(2)
    config = ListenConfig(
        secrets=secret,
        host=host,
        port=port,
        download_dir=download_dir,
        state_dir=state_dir,
        api_url=api_url,
        api_secret=api_secret,
        exec_command=exec_command,
        notify=notify or (),
        notify_on=tuple(notify_on) if notify_on else ("completed", "errored", "deleted"),
        platform=platform,
        tolerance=tolerance,
        rate_limit=parse_rate(rate_limit) if rate_limit else None,
        concurrency=concurrency,
    )
    try:
        listener = Listener(config, console)
    except ValueError as exc:  # a bad secret, notification URL or --exec command
        console.print(Text(str(exc), style="red"))
        raise typer.Exit(2) from None
    try:
        asyncio.run(serve(listener))
    except (StateInUse, CannotListen) as exc:
        console.print(Text(str(exc), style="red"))
        raise typer.Exit(1) from None
