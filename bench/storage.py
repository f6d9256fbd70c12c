"""Storage benchmark: a 60 s clip cut from segments in an S3 bucket beside the same clip cut
from the local disk, in the same run.

The input is 60 s of 1 s HLS segments of 720p30 H.264 (about 3 Mb/s) and AAC, synthesized once
per run with PyAV. Each measurement makes one faststart MP4 and its poster:

- local: `cut()` reads the segments from disk and writes into the data directory (the
  default storage: its commit is a no-op);
- bucket: the segments are already in the bucket (as a node that ingested them would have put
  them); they are fetched to a temporary folder in parallel, cut, and the clip and poster are
  uploaded (`S3Storage.commit`). This is the first version's way of cutting from a bucket:
  whole segments, not byte ranges.

The bucket is moto's S3 server on loopback, started here, unless ``--s3-url`` names one (with the
standard AWS variables set). Runs alternate, after one warm-up each; medians are compared.

With ``--backlog``, it then runs bench/backlog.py: a worker draining 1,000,000 pending
deliveries, its peak RSS beside its idle RSS and its deliveries/s beside bench/delivery.py's
ceiling.

Run: ``python bench/storage.py [--seconds 60] [--runs 5] [--s3-url s3://bucket/prefix]
[--backlog]``. Results are printed and written to bench/results/storage-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
sys.path.insert(0, str(BENCH_DIR.parent))

from tests.support import buckets  # noqa: E402
from tests.support.mediakit import Segments, make_segments  # noqa: E402

from mediahooks.media.cutter import Segment, cut  # noqa: E402
from mediahooks.storage import media_key, poster_of  # noqa: E402
from mediahooks.storage.local import LocalStorage  # noqa: E402
from mediahooks.storage.s3 import S3Storage  # noqa: E402

WIDTH, HEIGHT, FPS = 1280, 720, 30
VIDEO_BITRATE = 3_000_000
GRAIN = 0.25


def cut_into(segments: list[Segment], init_path: str | None, out: Path, poster: Path) -> None:
    cut(segments, segments[0].start_ms, segments[-1].start_ms + segments[-1].duration_ms,
        str(out), init_path, str(poster))  # fmt: skip


async def from_local(segments: Segments, storage: LocalStorage, run: int) -> float:
    key = media_key("bench", f"local-{run}")
    began = time.perf_counter()
    await asyncio.to_thread(
        cut_into, list(segments), None, storage.staging(key), storage.staging(poster_of(key))
    )
    await storage.commit(poster_of(key), "image/jpeg")
    await storage.commit(key, "video/mp4")
    return time.perf_counter() - began


async def from_bucket(
    locations: list[str], segments: Segments, storage: S3Storage, run: int
) -> float:
    key = media_key("bench", f"bucket-{run}")
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        local = [Path(scratch) / Path(location).name for location in locations]
        await asyncio.gather(
            *(storage.fetch(loc, dest) for loc, dest in zip(locations, local, strict=True))
        )
        fetched = [
            Segment(str(path), s.start_ms, s.duration_ms)
            for path, s in zip(local, segments, strict=True)
        ]
        await asyncio.to_thread(
            cut_into, fetched, None, storage.staging(key), storage.staging(poster_of(key))
        )
    await storage.commit(poster_of(key), "image/jpeg")
    await storage.commit(key, "video/mp4")
    return time.perf_counter() - began


async def upload_segments(segments: Segments, storage: S3Storage) -> list[str]:
    async def one(segment: Segment) -> str:
        key = f"timelines/bench/{Path(segment.path).name}"
        staged = storage.staging(key)
        staged.write_bytes(Path(segment.path).read_bytes())
        return await storage.commit(key, "video/mp2t")

    return list(await asyncio.gather(*(one(s) for s in segments)))


async def main(args: argparse.Namespace) -> dict[str, Any]:
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        url = args.s3_url
        if not url:
            endpoint = stack.enter_context(buckets.moto_endpoint())
            os.environ.update(endpoint.env())
            url = buckets.new_bucket(endpoint)
        print(f"making {args.seconds} s of 720p segments ...", flush=True)
        segments = make_segments(
            Path(tmp) / "in", args.seconds, "ts", width=WIDTH, height=HEIGHT, fps=FPS,
            bitrate=VIDEO_BITRATE, grain=GRAIN,
        )  # fmt: skip
        input_bytes = sum(Path(s.path).stat().st_size for s in segments)
        local = LocalStorage(Path(tmp) / "data")
        bucket = S3Storage(url, Path(tmp) / "spool")
        locations = await upload_segments(segments, bucket)
        await from_local(segments, local, -1)
        await from_bucket(locations, segments, bucket, -1)
        local_s: list[float] = []
        bucket_s: list[float] = []
        for run in range(args.runs):
            local_s.append(await from_local(segments, local, run))
            bucket_s.append(await from_bucket(locations, segments, bucket, run))
    figures = {
        "seconds": args.seconds,
        "input_bytes": input_bytes,
        "bucket": "moto on loopback" if not args.s3_url else args.s3_url,
        "local_s": local_s,
        "bucket_s": bucket_s,
        "local_median_s": statistics.median(local_s),
        "bucket_median_s": statistics.median(bucket_s),
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
    }
    ratio = figures["bucket_median_s"] / figures["local_median_s"]
    print(
        f"{args.seconds} s clip ({input_bytes / 1e6:.1f} MB of segments): "
        f"local disk {figures['local_median_s']:.3f} s, bucket {figures['bucket_median_s']:.3f} s "
        f"(x{ratio:.2f}), medians of {args.runs}"
    )
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--s3-url", default="")
    parser.add_argument("--backlog", action="store_true", help="also drain 1,000,000 deliveries")
    args = parser.parse_args()
    figures = asyncio.run(main(args))
    if args.backlog:
        import backlog

        figures["backlog"] = asyncio.run(backlog.main(backlog.parser().parse_args([])))
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (RESULTS_DIR / f"storage-{stamp}.json").write_text(json.dumps(figures, indent=2))
