"""Where an asset's files live, in one place for the worker that writes them, the route that
serves them and the removal that deletes them: `media/<account>/<asset id>.mp4` (`.webm`: its
format, `containers`) in the storage
(`mediahooks.storage`), its poster beside it as `.jpg` and its further stills as `.<n>.jpg`
(`stills.still_path`). The asset keeps the storage's location of its file (`file_path`): a path
in the data directory, or an ``s3://`` object."""

from __future__ import annotations

from mediahooks.media import stills
from mediahooks.storage import poster_of
from mediahooks.store.schema import DbRow


def stills_of(media: str) -> list[str]:
    """A media file's stills, the poster first (locations or keys alike)."""
    poster = poster_of(media)
    return [stills.still_path(poster, i) for i in range(stills.ASSET_STILLS)]


def files_of(asset: DbRow) -> list[str]:
    """The locations of the asset's media file, then its stills (the poster first), once it
    has them."""
    if not asset.file_path:
        return []
    return [asset.file_path, *stills_of(asset.file_path)]
