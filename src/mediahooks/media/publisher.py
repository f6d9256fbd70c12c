"""Publish a stream to an HLS ingest the way ffmpeg's hls muxer does over HTTP: each segment
`PUT` once complete, then the playlist again; the last playlist carries `EXT-X-ENDLIST`.

The playlist dates each segment (`EXT-X-PROGRAM-DATE-TIME`) from the stream's wall-clock start
plus the durations before it, so a stream can be published in real time or, back-dated, all at
once.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    Callable,
    Iterable,
    Iterator,
)
from contextlib import aclosing
from dataclasses import dataclass, replace
from types import GeneratorType
from typing import Any

import aiohttp

from mediahooks.clock import now_ms
from mediahooks.errors import MediahooksError
from mediahooks.media.hls import Entry, Playlist, render_playlist
from mediahooks.media.segmenter import SegmentFile

PLAYLIST_NAME = "index.m3u8"
# Entries in the sliding playlist: about what ffmpeg keeps (5), so an ingest that missed an
# update still finds every segment in the next one.
WINDOW = 6
TOKEN_PATH = "/ingest/t/"

_CONTENT_TYPES = {
    ".ts": "video/mp2t",
    ".mp4": "video/mp4",
    ".m4s": "video/iso.segment",
    ".m3u8": "application/vnd.apple.mpegurl",
}


class PublishError(MediahooksError):
    """The ingest refused a file (`status` is the HTTP status) or could not be reached
    (`status` is None)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message if status is None else f"HTTP {status}: {message}")
        self.message = message
        self.status = status


@dataclass(frozen=True)
class PublishReport:
    segments: int = 0  # media segments sent (not counting the init segment or playlists)
    bytes: int = 0  # bytes of all files sent, playlists included
    first_ms: int | None = None  # wall-clock start of the first segment
    last_ms: int | None = None  # wall-clock end of the last segment


Progress = Callable[[PublishReport], None]


# --- pure parts ------------------------------------------------------------------------------


def ingest_headers(url: str, token: str | None) -> dict[str, str]:
    """The token goes in the path for a `/ingest/t/{token}/...` URL, else in the header."""
    if token is None or TOKEN_PATH in url:
        return {}
    return {"Authorization": f"Bearer {token}"}


def content_type(name: str) -> str:
    return _CONTENT_TYPES.get(name[name.rfind(".") :], "application/octet-stream")


class PlaylistWindow:
    """The last `WINDOW` segments of the stream, each dated from the stream's start."""

    def __init__(self, start_ms: int, map_uri: str | None = None) -> None:
        self.start_ms = start_ms
        self.map_uri = map_uri
        self.elapsed = 0.0  # seconds of media so far
        self.count = 0
        self.longest = 0.0
        self._entries: deque[Entry] = deque(maxlen=WINDOW)

    def add(self, name: str, duration: float) -> None:
        self._entries.append(Entry(name, duration, self.end_ms()))
        self.elapsed += duration
        self.count += 1
        self.longest = max(self.longest, duration)

    def end_ms(self) -> int:
        return self.start_ms + round(self.elapsed * 1000)

    def render(self, ended: bool = False) -> str:
        playlist = Playlist(
            entries=list(self._entries),
            map_uri=self.map_uri,
            media_sequence=self.count - len(self._entries),
            target_duration=self.longest,
            ended=ended,
        )
        return render_playlist(playlist)


# --- I/O -------------------------------------------------------------------------------------


async def publish(
    url: str,
    token: str | None,
    segments: AsyncIterable[SegmentFile] | Iterable[SegmentFile],
    realtime: bool,
    start_ms: int | None = None,
    on_progress: Progress | None = None,
) -> PublishReport:
    """Send `segments` to the stream at `url` (`{server}/ingest/{stream}` or
    `{server}/ingest/t/{token}/{stream}`), each followed by the playlist.

    `realtime` sends a segment once its end has passed on the wall clock; otherwise all go at
    once. `start_ms` is the wall-clock start of the stream (default: now). A refusal raises
    PublishError; when the publishing is cancelled, a last playlist still ends the stream.
    """
    window = PlaylistWindow(now_ms() if start_ms is None else start_ms)
    report = PublishReport()
    timeout = aiohttp.ClientTimeout(total=60)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        aclosing(_each(segments)) as stream,
    ):
        sender = _Sender(session, url.rstrip("/"), ingest_headers(url, token))
        try:
            async for segment in stream:
                if segment.is_init:
                    window.map_uri = segment.name
                    size = await sender.put(segment.name, segment.data)
                    report = replace(report, bytes=report.bytes + size)
                    continue
                if realtime:
                    await _wait_until(window.end_ms() + round(segment.duration * 1000))
                # Listed once it is being sent: a stop while waiting ends the stream with a
                # final playlist of what was sent, as ffmpeg's is.
                window.add(segment.name, segment.duration)
                size = await sender.put(segment.name, segment.data)
                size += await sender.put(PLAYLIST_NAME, window.render().encode())
                report = _with_segment(report, size, window)
                if on_progress is not None:
                    on_progress(report)
        except asyncio.CancelledError:
            if window.count:
                await asyncio.shield(_end_quietly(sender, window))
            raise
        if window.count:
            size = await sender.put(PLAYLIST_NAME, window.render(ended=True).encode())
            report = replace(report, bytes=report.bytes + size)
    return report


def _with_segment(report: PublishReport, size: int, window: PlaylistWindow) -> PublishReport:
    return replace(
        report,
        segments=report.segments + 1,
        bytes=report.bytes + size,
        first_ms=window.start_ms,
        last_ms=window.end_ms(),
    )


async def _wait_until(epoch_ms: int) -> None:
    delay = (epoch_ms - now_ms()) / 1000
    if delay > 0:
        await asyncio.sleep(delay)


async def _end_quietly(sender: _Sender, window: PlaylistWindow) -> None:
    # The stream is going away anyway: a failure here must not hide the cancellation.
    try:
        async with asyncio.timeout(5):
            await sender.put(PLAYLIST_NAME, window.render(ended=True).encode())
    except (PublishError, TimeoutError):
        pass


class _Sender:
    def __init__(self, session: aiohttp.ClientSession, base: str, headers: dict[str, str]) -> None:
        self._session = session
        self._base = base
        self._headers = headers

    async def put(self, name: str, data: bytes) -> int:
        """PUT one file; its size once accepted."""
        headers = {**self._headers, "Content-Type": content_type(name)}
        try:
            async with self._session.put(f"{self._base}/{name}", data=data, headers=headers) as r:
                if r.status >= 400:
                    raise PublishError(_message(await r.text(), r.reason), r.status)
        except aiohttp.ClientError as exc:
            raise PublishError(f"cannot send {name} to {self._base}: {exc}") from exc
        return len(data)


def _message(body: str, reason: str | None) -> str:
    """The server's own words: `data.message` of the JSON envelope, else the body itself."""
    try:
        parsed: Any = json.loads(body)
        message = parsed["data"]["message"]
        if isinstance(message, str):
            return message
    except (ValueError, KeyError, TypeError):
        pass
    return body.strip()[:500] or reason or "no reason given"


async def _each(
    segments: AsyncIterable[SegmentFile] | Iterable[SegmentFile],
) -> AsyncGenerator[SegmentFile, None]:
    if isinstance(segments, AsyncIterable):
        async for segment in segments:
            yield segment
        return
    # Producing a segment means encoding it: off the event loop, so requests keep flowing.
    iterator = iter(segments)
    try:
        while True:
            produced = await asyncio.to_thread(_next, iterator)
            if produced is None:
                return
            yield produced
    finally:
        # A generator left half-way holds encoders: let it release them now, unless a thread
        # is still inside it (cancelled mid-segment): it then goes when that thread is done.
        if isinstance(iterator, GeneratorType) and not iterator.gi_running:
            iterator.close()


def _next(iterator: Iterator[SegmentFile]) -> SegmentFile | None:
    return next(iterator, None)
