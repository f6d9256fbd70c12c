"""Where an asset's files live, in one place for the worker that writes them, the route that
serves them and the removal that deletes them: `<data dir>/media/<account>/<asset id>.mp4`,
its poster beside it as `.jpg` and its further stills as `.<n>.jpg` (`stills.still_path`)."""

from __future__ import annotations

from pathlib import Path

from mediahooks.media import stills
from mediahooks.store.schema import DbRow


def media_path(data_dir: Path, account_id: str, asset_id: str) -> Path:
    return data_dir / "media" / account_id / f"{asset_id}.mp4"


def poster_path(media: Path) -> Path:
    return media.with_suffix(".jpg")


def files_of(asset: DbRow) -> list[Path]:
    """The asset's media file, then its stills (the poster first), once it has them."""
    if not asset.file_path:
        return []
    media = Path(asset.file_path)
    poster = str(poster_path(media))
    return [media, *(Path(stills.still_path(poster, i)) for i in range(stills.ASSET_STILLS))]
