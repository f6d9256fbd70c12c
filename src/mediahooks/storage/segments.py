"""Timeline segments read wherever they are, for live playback and thumbnails on any node of a
cluster: this node's disk first (it ingested the stream: the segment is in its data
directory, uploaded or still spooled), else the bucket its ingesting node uploads it to.

A segment's row names it by the ingesting node's path; another node with a data directory of
its own has no file there, and finds the segment in the bucket by its key (`segment_key`).
"""

from __future__ import annotations

import os

from mediahooks.storage import Body, Storage
from mediahooks.storage.local import read_file
from mediahooks.storage.uploads import segment_key


def here(path: str) -> bool:
    """Whether this node has the segment on its disk."""
    return os.path.isfile(path)


async def read(storage: Storage, path: str) -> Body:
    """The whole segment; FileNotFoundError when neither this node nor the bucket has it (swept,
    or its ingesting node has not uploaded it yet)."""
    if here(path):
        return read_file(path, 0, None)
    if storage.kind == "local":
        raise FileNotFoundError(path)
    return await storage.read(storage.location(segment_key(path)), 0, None)


async def read_all(storage: Storage, path: str) -> bytes:
    """The segment's bytes (a few seconds of media: it fits in memory)."""
    body = await read(storage, path)
    return b"".join([chunk async for chunk in body.chunks])
