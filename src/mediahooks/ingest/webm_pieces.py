"""The live path's thread side for WebM (VP8/VP9/AV1 with Opus): the stream split, not remuxed.

A WebM door (WHIP with VP8) already writes the stream as live WebM, one Matroska cluster per
keyframe. Here it is split (`ebml.Splitter`): its header becomes the broadcast's init segment
(`init.webm`) and its clusters are grouped into segments cut where `timing.Cuts` says, each
starting on a cluster that opens with a video keyframe. A segment is its clusters' bytes as
they came, so the cutter and the thumbnails read the header and any run of segments as one
WebM stream (as they read fMP4's init segment and fragments).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

from mediahooks.clock import now_ms
from mediahooks.ingest import ebml
from mediahooks.ingest.remux import Piece, Pipe
from mediahooks.ingest.timing import TARGET_SECONDS, Cuts, WallClock

log = logging.getLogger("mediahooks.ingest")

INIT_NAME = "init.webm"
_READ = 64 * 1024
_MS = Fraction(1, 1000)


class WebmSplitter:
    """`run` is the thread's body; `deliver` gets the init segment, each segment, then None.
    `failed` says why the stream could not be read."""

    def __init__(
        self,
        pipe: Pipe,
        directory: Path,
        deliver: Callable[[Piece | None], None],
        target: Fraction = TARGET_SECONDS,
    ) -> None:
        self.pipe = pipe
        self.directory = directory
        self.deliver = deliver
        self.failed: str | None = None
        self._splitter = ebml.Splitter()
        self._cuts = Cuts(target)
        self._clock: WallClock | None = None
        self._open: list[ebml.Cluster] = []  # the clusters of the segment being gathered
        self._count = 0

    def run(self) -> None:
        try:
            while data := self.pipe.read(_READ):
                for cluster in self._splitter.feed(data):
                    self._take(cluster)
        except ebml.EbmlError as exc:
            self.failed = f"the WebM stream cannot be read: {exc}"
        except Exception as exc:
            log.exception("live WebM split failed")
            self.failed = f"the stream could not be segmented: {exc}"
        finally:
            self.pipe.close()
            try:
                if self._open:
                    self._write(self._open[-1].end_ms)
            except Exception:
                log.exception("the last segment could not be written")
            self.deliver(None)

    def _take(self, cluster: ebml.Cluster) -> None:
        time = cluster.time_ms * _MS
        if self._cuts.starts(time, cluster.keyframe):
            if self._clock is None:
                date = self._splitter.date_ms  # the writer's own clock: exact
                wall = (
                    date + cluster.time_ms
                    if date is not None
                    else self.pipe.arrivals.at(cluster.offset, now_ms())
                )
                self._clock = WallClock(time, wall)
                self.pipe.arrivals.forget()
                self._write_init()
            if self._open:
                self._write(cluster.time_ms)
        if self._clock is not None:  # clusters before the first keyframe are dropped
            self._open.append(cluster)

    def _write_init(self) -> None:
        header = self._splitter.header
        assert header is not None and self._clock is not None
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / INIT_NAME
        path.write_bytes(header)
        start = self._clock.first_wall_ms
        self.deliver(Piece(INIT_NAME, path, len(header), start, 0, init=True))

    def _write(self, end_ms: int) -> None:
        assert self._clock is not None
        clusters, self._open = self._open, []
        data = b"".join(c.data for c in clusters)
        name = f"index{self._count}.webm"
        self._count += 1
        path = self.directory / name
        path.write_bytes(data)
        start_ms = self._clock.at(clusters[0].time_ms * _MS)
        duration_ms = max(self._clock.at(max(end_ms, clusters[0].time_ms) * _MS) - start_ms, 1)
        self.deliver(Piece(name, path, len(data), start_ms, duration_ms))
