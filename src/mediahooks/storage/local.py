"""Media files in the data directory: the one-machine default, where they always were."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

from mediahooks.storage import Body

CHUNK = 256 * 1024


def read_file(path: str, start: int, end: int | None) -> Body:
    """Bytes ``start`` to ``end`` (exclusive; None: to the end) of a local file;
    FileNotFoundError when it is not there."""
    size = os.stat(path).st_size
    stop = size if end is None else min(end, size)

    async def chunks() -> AsyncIterator[bytes]:
        with open(path, "rb") as file:  # noqa: ASYNC230 (reads go to a thread)
            file.seek(start)
            left = stop - start
            while left > 0:
                data = await asyncio.to_thread(file.read, min(CHUNK, left))
                if not data:
                    return
                left -= len(data)
                yield data

    return Body(chunks(), start, stop, size)


class LocalStorage:
    kind = "local"

    def __init__(self, root: Path) -> None:
        self.root = root

    def staging(self, key: str) -> Path:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    async def commit(self, key: str, media_type: str) -> str:
        return self.location(key)

    async def upload(self, key: str, source: Path, media_type: str) -> str:
        return str(source)

    def location(self, key: str) -> str:
        return str(self.root / key)

    async def delete(self, locations: list[str]) -> None:
        def unlink() -> None:
            for location in locations:
                Path(location).unlink(missing_ok=True)

        await asyncio.to_thread(unlink)

    async def size(self, location: str) -> int | None:
        # A stat is cheaper than a thread hop.
        try:
            return os.stat(location).st_size
        except FileNotFoundError:
            return None

    async def signed_url(self, location: str, ttl: float) -> str | None:
        return None

    async def read(self, location: str, start: int, end: int | None) -> Body:
        return read_file(location, start, end)

    async def fetch(self, location: str, dest: Path) -> None:
        await asyncio.to_thread(shutil.copyfile, location, dest)

    async def close(self) -> None:
        return None
