"""Where media files live: one seam, two places.

Every media file the service keeps past a cut (a clip's or recording's MP4, its poster) is
written, read, linked and deleted through a `Storage`:

- `LocalStorage` (the default) keeps them under the data directory, exactly where they always
  were: `<data dir>/media/<account>/<asset id>.mp4` (`.webm` for a WebM clip).
- `S3Storage` (``MEDIAHOOKS_STORAGE_URL=s3://bucket/prefix``) keeps them in an S3-compatible
  bucket, so any node of a cluster can serve what any other node cut.

A file is made in two steps: the cutter writes it at `staging(key)` (a local path), then
`commit(key)` makes it durable in the storage. Locally the staging path is the final path and
commit does nothing; for a bucket, commit uploads (retrying through an outage) and removes the
local copy. Only once commit returns may the asset be called complete.

An asset records its file by *location* (`location(key)`), the string its `storage.path` shows:
an absolute file path locally, the object key in a bucket.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from mediahooks.config import Settings


@dataclass(frozen=True)
class Body:
    """Part of a stored file: its bytes as chunks, the range served and the file's size."""

    chunks: AsyncIterator[bytes]
    start: int
    end: int  # exclusive
    size: int


class Storage(Protocol):
    kind: str  # the asset's `storage.type`: "local" or "s3"

    def staging(self, key: str) -> Path:
        """Where to write a new file before `commit`."""
        ...

    async def commit(self, key: str, media_type: str) -> str:
        """Make the staged file durable; its location."""
        ...

    async def upload(self, key: str, source: Path, media_type: str) -> str:
        """Copy a local file into the storage (retrying while it is away); its location."""
        ...

    def location(self, key: str) -> str: ...

    async def delete(self, locations: list[str]) -> None:
        """Remove files; one already gone is no error."""
        ...

    async def size(self, location: str) -> int | None:
        """The file's size, or None when it is not there."""
        ...

    async def signed_url(self, location: str, ttl: float) -> str | None:
        """A link the public can download from directly, or None when only the service can
        serve the file."""
        ...

    async def read(self, location: str, start: int, end: int | None) -> Body:
        """Bytes ``start`` to ``end`` (exclusive; None: to the end) of a file."""
        ...

    async def fetch(self, location: str, dest: Path) -> None:
        """Copy a file to a local path."""
        ...

    async def close(self) -> None: ...


def media_key(account_id: str, asset_id: str, extension: str = "mp4") -> str:
    """Where an asset's media file goes; ``extension`` is its format (`media.containers`)."""
    return f"media/{account_id}/{asset_id}.{extension}"


def poster_of(location: str) -> str:
    """A media file's poster sits beside it, as `.jpg`."""
    stem, dot, extension = location.rpartition(".")
    return (stem if dot and "/" not in extension else location) + ".jpg"


def open_storage(settings: Settings) -> Storage:
    url = settings.storage_url
    if not url:
        from mediahooks.storage.local import LocalStorage

        return LocalStorage(settings.data_dir)
    from mediahooks.storage.s3 import S3Storage

    return S3Storage(url, settings.data_dir / "spool", proxy=settings.storage_proxy)
