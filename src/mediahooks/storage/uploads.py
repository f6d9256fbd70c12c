"""Timeline segments copied to the bucket as they arrive, so any node's worker can cut them.

Ingest writes each segment to the data directory as before (live playback and a cut on the same
node read it there) and hands it to `SegmentUploads`, which uploads it in the background,
retrying while the bucket is away. The segments not yet in the bucket are the node's spool: past
`limit` bytes of them, HLS ingest answers 503 so publishers retry later, and nothing is taken
in that the bucket could not get. With the local storage there is nothing to copy.

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


def segment_key(path: str) -> str:
    """``.../timelines/<account>/<stream>/<broadcast>/<file>`` → its key in the bucket."""
    return "/".join(("timelines", *Path(path).parts[-4:]))


class SegmentUploads:
    def __init__(self, storage: Storage, limit: int) -> None:
        self.storage = storage
        self.limit = limit
        self.pending = 0  # bytes taken in and not yet in the bucket
        self._queue: asyncio.Queue[tuple[Path, int]] = asyncio.Queue()

    @property
    def needed(self) -> bool:
        return self.storage.kind != "local"

    def full(self) -> bool:
        return self.needed and self.pending >= self.limit

    def add(self, path: Path, size: int) -> None:
        if not self.needed:
            return
        self.pending += size
        self._queue.put_nowait((path, size))

    async def run(self, beat: Beat) -> None:
        while True:
            beat()
            try:
                path, size = await asyncio.wait_for(self._queue.get(), 1.0)
            except TimeoutError:
                continue
            media_type = SEGMENT_TYPES.get(path.suffix, "application/octet-stream")
            try:
                await self.storage.upload(segment_key(str(path)), path, media_type)
            except FileNotFoundError:
                log.info("segment %s expired before its upload", path)
            finally:
                self.pending -= size
