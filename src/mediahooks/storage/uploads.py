"""Timeline segments copied to the bucket as they arrive, so any node's worker can cut them.

Ingest writes each segment to the data directory as before (live playback and a cut on the same
node read it there) and hands it to `SegmentUploads`, which uploads it in the background,
retrying while the bucket is away. With the local storage there is nothing to copy.

The queue is on disk, so a crash or a restart while the bucket is away loses no segment: each
segment waiting for the bucket has an empty marker file at its key under the spool directory
(`<data dir>/spool/timelines/...`), written before the segment's row is committed and removed
once the bucket has it. At start the spool is scanned and every marked segment queued again.

The segments not yet in the bucket are the node's spool: past `limit` bytes of them, every
ingest door refuses new media (`refusal`: HLS answers 503, RTMP, SRT and WHIP turn the
publisher away, a live publisher is disconnected), so publishers retry later and nothing is
taken in that the bucket could not get.

A segment's key is its place under the data directory (`timelines/<account>/<stream>/
<broadcast>/<file>`): any node finds it from the segment's row, whatever its own data
directory is.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from mediahooks.loops import Beat
from mediahooks.storage import Storage

log = logging.getLogger("mediahooks.storage")

SEGMENT_TYPES = {
    ".ts": "video/mp2t",
    ".mp4": "video/mp4",
    ".m4s": "video/iso.segment",
    ".webm": "video/webm",
}
SPOOL_FULL = "the media store cannot be reached and this node's spool is full; retry later"


def segment_key(path: str) -> str:
    """``.../timelines/<account>/<stream>/<broadcast>/<file>`` → its key in the bucket."""
    return "/".join(("timelines", *Path(path).parts[-4:]))


class SegmentUploads:
    def __init__(self, storage: Storage, limit: int, data_dir: Path) -> None:
        self.storage = storage
        self.limit = limit
        self.data_dir = data_dir
        self.spool = data_dir / "spool"
        self.pending = 0  # bytes taken in and not yet in the bucket
        self._queue: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
        self._queued: set[str] = set()  # keys in the queue, so a rescan adds none twice

    @property
    def needed(self) -> bool:
        return self.storage.kind != "local"

    def full(self) -> bool:
        return self.needed and self.pending >= self.limit

    def refusal(self) -> str | None:
        """Why a door must refuse new media now (the spool is past its bound), or None. The one
        check every ingest door makes."""
        return SPOOL_FULL if self.full() else None

    def add(self, path: Path, size: int) -> None:
        """Queue a segment for the bucket; its marker is on disk when this returns."""
        if not self.needed:
            return
        key = segment_key(str(path))
        marker = self.spool / key
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
        self._enqueue(key, size)

    def recover(self) -> int:
        """Queue again the segments a previous run left in the spool; how many."""
        if not self.needed:
            return 0
        found = 0
        for marker in sorted((self.spool / "timelines").rglob("*")):
            if not marker.is_file():
                continue
            key = marker.relative_to(self.spool).as_posix()
            try:
                size = (self.data_dir / key).stat().st_size
            except FileNotFoundError:  # expired meanwhile: nothing to upload
                marker.unlink(missing_ok=True)
                continue
            self._enqueue(key, size)
            found += 1
        if found:
            log.info("%d segments left from before are queued for the bucket again", found)
        return found

    def _enqueue(self, key: str, size: int) -> None:
        if key in self._queued:
            return
        self._queued.add(key)
        self.pending += size
        self._queue.put_nowait((key, size))

    async def run(self, beat: Beat) -> None:
        while True:
            beat()
            # Not wait_for: see `mediahooks.wakeups`.
            try:
                async with asyncio.timeout(1.0):
                    key, size = await self._queue.get()
            except TimeoutError:
                continue
            path = self.data_dir / key
            media_type = SEGMENT_TYPES.get(path.suffix, "application/octet-stream")
            try:
                await self.storage.upload(key, path, media_type)
            except FileNotFoundError:
                log.info("segment %s expired before its upload", path)
            except BaseException:
                # Stopped mid-upload: back in the queue (and its marker on disk, for the next
                # start).
                self._queue.put_nowait((key, size))
                raise
            (self.spool / key).unlink(missing_ok=True)
            self._queued.discard(key)
            self.pending -= size
