"""What the listener does with one queued hook: download (on `completed`), run `--exec`,
notify, and say so in one log line. Each finished step is saved with the job, so a retry after
a failure or a crash picks up where it stopped."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.progress import Progress as Bars
from rich.text import Text

from mediahooks.receiver import command
from mediahooks.receiver.download import Downloader, DownloadError, Gone, Plan, safe_name
from mediahooks.receiver.models import (
    FeedsHook,
    Hook,
    MalformedHook,
    MediaHook,
    ThumbnailHook,
    parse,
)
from mediahooks.receiver.notify import Notifier, NotifyFailed, message
from mediahooks.receiver.queue import Job, Queue

# Seconds before each further attempt of a failed job; after the last one it is given up.
RETRY_DELAYS = (5.0, 30.0, 120.0, 600.0, 1800.0, 3600.0)
# The last lines a successful --exec printed are shown under its event's line.
OUTPUT_LINES = 20
RETRYABLE = (DownloadError, command.CommandFailed, NotifyFailed, aiohttp.ClientError, OSError)


@dataclass(frozen=True)
class Actions:
    """What to do beyond logging, as the command line configured it."""

    download_dir: Path
    downloader: Downloader | None = None
    exec_command: str | None = None
    notifier: Notifier | None = None
    notify_on: Sequence[str] = ("completed", "errored", "deleted")
    retry_delays: Sequence[float] = RETRY_DELAYS


class Log:
    """One readable line per happening, on the console the progress bars share."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def line(self, text: str, style: str = "") -> None:
        # Text, not markup: stream names and error messages may contain brackets.
        stamp = time.strftime("%H:%M:%S")
        self.console.print(Text.assemble((stamp, "dim"), " ", (text, style)), highlight=False)


def describe(hook: Hook) -> str:
    """``media completed clip <asset id> (cam)``: the event, then what it is about."""
    if isinstance(hook, MediaHook):
        data = hook.data
        return (
            f"media {hook.event} {data.type or 'asset'} {data.media_asset_id} "
            f"({data.source or '?'})"
        )
    if isinstance(hook, FeedsHook):
        return f"feeds {hook.event} {hook.data.name or hook.data.stream_id or '?'}"
    if isinstance(hook, ThumbnailHook):
        return f"thumbnail {hook.stream_name} ({len(hook.image)} bytes)"
    return f"{hook.type} {hook.event}"


def save_thumbnail(download_dir: Path, hook: ThumbnailHook) -> tuple[Path, bool]:
    """Write a thumbnail hook's picture as ``<stream>/thumbnails/<timestamp>.jpg`` (whole or not
    at all); the bool says whether it is new (a retried delivery finds it already there)."""
    path = download_dir / safe_name(hook.stream_name) / "thumbnails" / f"{hook.timestamp}.jpg"
    if path.exists():
        return path, False
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".jpg.part")
    partial.write_bytes(hook.image)
    partial.replace(path)
    return path, True


def ordering_key(hook: Hook) -> str:
    """Jobs with one key run one at a time, in arrival order."""
    if isinstance(hook, MediaHook):
        return f"media:{hook.data.media_asset_id}"
    if isinstance(hook, FeedsHook):
        return f"feed:{hook.data.feed_id}"
    if isinstance(hook, ThumbnailHook):
        return f"thumbnail:{hook.stream_id}"
    return f"{hook.type}:"


class BarProgress:
    """Reports one download: a line when it starts (or resumes) and a bar while it runs."""

    def __init__(self, log: Log, bars: Bars | None, label: str) -> None:
        self.log, self.bars, self.label = log, bars, label
        self.task: TaskID | None = None

    def start(self, name: str, total: int | None, done: int) -> None:
        size = f" ({total / 1e6:.1f} MB)" if total else ""
        resume = f", resuming at byte {done}" if done else ""
        self.log.line(f"downloading {self.label}{size}{resume}", "dim")
        if self.bars is not None:
            self.task = self.bars.add_task(name, total=total, completed=done)

    def advance(self, size: int) -> None:
        if self.bars is not None and self.task is not None:
            self.bars.advance(self.task, size)

    def stop(self) -> None:
        if self.bars is not None and self.task is not None:
            self.bars.remove_task(self.task)
            self.task = None


def progress_bars(console: Console) -> Bars | None:
    """Live bars on a terminal; none when the output is a log file or a pipe."""
    if not console.is_terminal:
        return None
    return Bars(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )


class Worker:
    def __init__(self, queue: Queue, actions: Actions, log: Log, bars: Bars | None) -> None:
        self.queue, self.actions, self.log, self.bars = queue, actions, log, bars

    async def run(self, job: Job) -> None:
        """Do ``job`` and record how it ended: done, to be retried, or given up."""
        try:
            hook = parse(job.body)
        except MalformedHook as exc:  # it parsed when it came in; only a damaged file gets here
            await self.queue.give_up(job.id, time.time(), str(exc))
            self.log.line(f"job {job.id} is not a hook any more: {exc}", "red")
            return
        said: list[str] = []
        try:
            notes = await self._steps(job, hook, said)
        except RETRYABLE as exc:
            await self._failed(job, hook, f"{type(exc).__name__}: {exc}")
            return
        await self.queue.finish(job.id, time.time(), "; ".join(notes))
        self.log.line(f"{describe(hook)}" + (f": {', '.join(notes)}" if notes else ""))
        for line in said[-OUTPUT_LINES:]:
            self.log.line(f"  | {line}", "dim")

    async def _failed(self, job: Job, hook: Hook, error: str) -> None:
        delays = self.actions.retry_delays
        if job.attempts > len(delays):
            await self.queue.give_up(job.id, time.time(), error)
            self.log.line(
                f"{describe(hook)}: gave up after {job.attempts} attempts: {error}", "red"
            )
            return
        delay = delays[job.attempts - 1]
        await self.queue.retry_at(job.id, time.time() + delay, error)
        self.log.line(
            f"{describe(hook)}: attempt {job.attempts} failed, again in {delay:g} s: {error}",
            "yellow",
        )

    async def _steps(self, job: Job, hook: Hook, said: list[str]) -> list[str]:
        """Do what is left of ``job``; the command's output goes to ``said``."""
        notes: list[str] = []
        file, size = job.file, None
        if isinstance(hook, MediaHook) and hook.event == "completed" and file is None:
            file, size, note = await self._download(job, hook)
            notes.append(note)
        if self.actions.exec_command and not job.ran:
            ran = await command.run(self.actions.exec_command, hook, job.body, job.key, file)
            said.extend(ran.output.splitlines())
            await self.queue.record(job.id, ran=True)
            notes.append("--exec ok")
        notifier = self.actions.notifier
        if notifier and hook.event in self.actions.notify_on and not job.notified:
            title, body = message(hook, file, size)
            await notifier.send(title, body, failure=hook.event == "errored")
            await self.queue.record(job.id, notified=True)
            notes.append(f"notified {notifier.count}")
        return notes

    async def _download(self, job: Job, hook: MediaHook) -> tuple[str | None, int | None, str]:
        downloader = self.actions.downloader
        if downloader is None:
            return None, None, "not downloaded (no --api-url)"
        asset_id = hook.data.media_asset_id
        folder = self.actions.download_dir / safe_name(hook.data.source or "_")
        try:
            if job.plan is None:
                plan = await downloader.plan(asset_id, folder)
                await self.queue.record(job.id, plan=plan.to_json())
            else:
                plan = Plan.from_json(job.plan)

            async def renewed(fresh: Plan) -> None:
                await self.queue.record(job.id, plan=fresh.to_json())

            label = f"{folder.name}/{Path(plan.target).name}"
            progress = BarProgress(self.log, self.bars, label)
            got = await downloader.fetch(asset_id, plan, progress, renewed)
        except Gone as exc:
            return None, None, f"not downloaded: {exc}"
        await self.queue.record(job.id, file=str(got.path))
        resumed = f", resumed at byte {got.resumed_from}" if got.resumed_from else ""
        shown = got.path.relative_to(self.actions.download_dir)
        return (
            str(got.path),
            got.size,
            f"downloaded {shown} ({got.size / 1e6:.1f} MB in {got.seconds:.1f} s{resumed})",
        )
