"""Where an asset's files live, in one place for the worker that writes them, the route that
serves them and the removal that deletes them: `media/<account>/<asset id>.mp4` in the storage
(`mediahooks.storage`), its poster beside it as `.jpg`. The asset keeps the storage's location
of its file (`file_path`): a path in the data directory, or an ``s3://`` object."""

from __future__ import annotations

from mediahooks.storage import poster_of
from mediahooks.store.schema import DbRow


def files_of(asset: DbRow) -> list[str]:
    """The locations of the asset's media file and its poster, once it has them."""
    if not asset.file_path:
        return []
    return [asset.file_path, poster_of(asset.file_path)]
