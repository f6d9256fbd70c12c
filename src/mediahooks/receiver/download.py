"""Fetch a finished asset's file: read the asset through the API, download its short-lived
signed link, resume with HTTP Range after an interruption, and put the file in place
atomically once its size is right.

A download link is a credential that expires. The link in use is saved with the job (``Plan``),
so a restarted listener resumes without asking the API; when the link has expired the server
answers 403, and the asset is read again for a fresh one.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

import aiohttp

CHUNK = 64 * 1024
# Fresh links in a row that may all be refused before the download counts as failed.
LINK_REFRESHES = 3
_EXTENSION = re.compile(r"[a-z0-9]{1,8}")
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


class DownloadError(Exception):
    """The download failed this time; trying again later may work."""


class Gone(Exception):
    """The asset or its file no longer exists: nothing to download, ever."""


class Progress(Protocol):
    """Where a download reports how far it got (a progress bar, or nothing)."""

    def start(self, name: str, total: int | None, done: int) -> None: ...

    def advance(self, size: int) -> None: ...

    def stop(self) -> None: ...


@dataclass(frozen=True)
class Plan:
    """One download, as saved with its job: the link, the expected size, the final path."""

    url: str
    size: int | None
    target: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Plan:
        return cls(str(data["url"]), data.get("size"), str(data["target"]))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def part(self) -> Path:
        """Bytes so far sit beside the target, hidden, until they are complete."""
        target = Path(self.target)
        return target.with_name(f".{target.name}.part")


@dataclass(frozen=True)
class Downloaded:
    path: Path
    size: int
    resumed_from: int  # 0 for a download from the start
    seconds: float


class AssetApi:
    """The part of the media assets API a receiver needs, under a Bearer API secret."""

    def __init__(self, session: aiohttp.ClientSession, api_url: str, api_secret: str) -> None:
        self.session = session
        self.base = api_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {api_secret}"}

    async def read(self, asset_id: str) -> dict[str, Any]:
        url = f"{self.base}/api/v3/media/assets/{quote(asset_id, safe='')}"
        try:
            async with self.session.get(url, headers=self.headers) as resp:
                text = await resp.text()
                if resp.status == 404:
                    raise Gone(f"asset {asset_id} no longer exists")
                if resp.status != 200:
                    raise DownloadError(
                        f"reading asset {asset_id}: HTTP {resp.status} {text[:200]}"
                    )
                body = await resp.json(content_type=None)
        except aiohttp.ClientError as exc:
            raise DownloadError(f"reading asset {asset_id}: {exc}") from exc
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            raise DownloadError(f"reading asset {asset_id}: not an asset: {text[:200]}")
        return data


def plan_for(asset: dict[str, Any], folder: Path) -> Plan:
    """Where a complete asset goes, and the link to fetch it from."""
    if asset.get("status") != "complete":
        raise DownloadError(f"asset {asset.get('id')} is {asset.get('status')}, not complete")
    download = asset.get("download") or {}
    url = download.get("downloadUrl")
    if not isinstance(url, str) or not url:
        raise DownloadError(f"asset {asset.get('id')} has no download link")
    metadata = asset.get("metadata") or {}
    # `sizes` maps each file to its bytes, the media under its format's name (older servers
    # said `size`).
    sizes = metadata.get("sizes")
    size = sizes.get(metadata.get("format")) if isinstance(sizes, dict) else metadata.get("size")
    name = f"{safe_name(str(asset.get('id')))}.{extension(metadata.get('format'), url)}"
    return Plan(url, size if isinstance(size, int) and size >= 0 else None, str(folder / name))


def extension(media_format: object, url: str) -> str:
    """The file extension: the asset's format (mp4, webm), else the link's, else mp4."""
    for candidate in (media_format, Path(urlsplit(url).path).suffix.lstrip(".")):
        if isinstance(candidate, str) and _EXTENSION.fullmatch(candidate.lower()):
            return candidate.lower()
    return "mp4"


def safe_name(name: str) -> str:
    """A stream name as one folder name: no separators, no dot names, nothing invisible."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "_"
    return cleaned[:128]


Renewed = Callable[[Plan], Awaitable[None]]


class Downloader:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        api: AssetApi,
        *,
        rate_limit: int | None = None,
    ) -> None:
        self.session = session
        self.api = api
        self.rate_limit = rate_limit

    async def plan(self, asset_id: str, folder: Path) -> Plan:
        return plan_for(await self.api.read(asset_id), folder)

    async def fetch(
        self, asset_id: str, plan: Plan, progress: Progress, renewed: Renewed | None = None
    ) -> Downloaded:
        """Download ``plan`` to its target. ``renewed(plan)`` is awaited with each fresh link,
        so the caller can save it before it is used."""
        target = Path(plan.target)
        have = _size(target)
        if have and (plan.size is None or have == plan.size):
            return Downloaded(target, have, 0, 0.0)  # done before a crash lost the record
        _folder(target.parent)
        started = time.monotonic()
        try:
            for _ in range(LINK_REFRESHES + 1):
                resumed_from = await self._get(plan, progress)
                if resumed_from is not None:
                    size = await asyncio.to_thread(_finish, plan)
                    return Downloaded(target, size, resumed_from, time.monotonic() - started)
                # The link was refused: it expired. Ask the API for a fresh one and go on.
                fresh = await self.plan(asset_id, target.parent)
                plan = Plan(fresh.url, fresh.size, plan.target)
                if renewed is not None:
                    await renewed(plan)
        except Gone:
            plan.part.unlink(missing_ok=True)  # nothing left to resume
            raise
        raise DownloadError(f"{LINK_REFRESHES} fresh download links in a row were refused")

    async def _get(self, plan: Plan, progress: Progress) -> int | None:
        """One request that completes the part file; returns the byte it started from, or
        None when the link was refused (403)."""
        part = plan.part
        offset = _size(part)
        if plan.size is not None and offset > plan.size:
            part.unlink()  # longer than the asset: not a prefix of it
            offset = 0
        if plan.size is not None and offset == plan.size and offset > 0:
            return offset
        headers = {"Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        try:
            async with self.session.get(plan.url, headers=headers) as resp:
                if resp.status == 403:
                    return None
                if resp.status in (404, 410):
                    raise Gone(f"the file is gone (HTTP {resp.status})")
                if resp.status == 416:
                    part.unlink(missing_ok=True)  # our bytes do not fit the file: start over
                    raise DownloadError("the server refused the resume range; starting over")
                if resp.status not in (200, 206):
                    raise DownloadError(f"download answered HTTP {resp.status}")
                start, total = _span(resp)
                if start != offset:  # the server sent the whole file after all
                    offset = 0
                if plan.size is not None and total is not None and total != plan.size:
                    raise DownloadError(f"the link serves {total} bytes, the asset has {plan.size}")
                progress.start(Path(plan.target).name, total or plan.size, offset)
                try:
                    await self._write(resp, part, offset, progress)
                finally:
                    progress.stop()
        except aiohttp.ClientError as exc:
            # The bytes so far stay in the part file; the next attempt resumes from there.
            raise DownloadError(f"download interrupted: {exc}") from exc
        got = _size(part)
        expected = plan.size if plan.size is not None else total
        if expected is not None and got != expected:
            raise DownloadError(f"download ended at {got} of {expected} bytes")
        return offset

    async def _write(
        self, resp: aiohttp.ClientResponse, part: Path, offset: int, progress: Progress
    ) -> None:
        rate = self.rate_limit
        # Small chunks under a rate limit keep the pace (and the progress bar) smooth.
        chunk = CHUNK if rate is None else max(1024, min(CHUNK, rate // 10))
        began, written = time.monotonic(), 0
        out = _PartFile(part, offset)
        try:
            async for data in resp.content.iter_chunked(chunk):
                out.append(data)
                written += len(data)
                progress.advance(len(data))
                if rate:
                    ahead = written / rate - (time.monotonic() - began)
                    if ahead > 0:
                        await asyncio.sleep(ahead)
            await asyncio.to_thread(out.sync)
        finally:
            out.close()


class _PartFile:
    """The bytes so far. Each chunk is handed to the OS as it arrives: after the process dies
    the file holds every byte that was counted, and the resume starts right after them."""

    def __init__(self, path: Path, offset: int) -> None:
        self._file = open(path, "r+b" if offset else "wb")  # noqa: SIM115 - closed by close()
        self._file.seek(offset)
        self._file.truncate()

    def append(self, data: bytes) -> None:
        self._file.write(data)
        self._file.flush()

    def sync(self) -> None:
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


def _span(resp: aiohttp.ClientResponse) -> tuple[int, int | None]:
    """Where the body starts in the file, and the file's whole size when the server says."""
    if resp.status == 206:
        match = _CONTENT_RANGE.fullmatch(resp.headers.get("Content-Range", ""))
        if match is None:
            raise DownloadError("a partial answer without a usable Content-Range")
        total = None if match.group(3) == "*" else int(match.group(3))
        return int(match.group(1)), total
    length = resp.headers.get("Content-Length")
    return 0, int(length) if length and length.isdigit() else None


def _folder(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _finish(plan: Plan) -> int:
    """Move the complete part file into place: readers see the whole file or none of it."""
    part, target = plan.part, Path(plan.target)
    size = _size(part)
    if plan.size is not None and size != plan.size:
        raise DownloadError(f"size check failed: {size} bytes, the asset has {plan.size}")
    os.replace(part, target)
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return size
