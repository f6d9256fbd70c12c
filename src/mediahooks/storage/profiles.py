"""Storage profiles, as the platform has them: an account's own buckets, named by id in a clip
request (or the account's default profile), so that a clip's file is written there instead of
the service's own storage.

The platform's profile is a type (`awsS3`; its `gcs` is not offered here), a bucket name, an
object prefix and a region. A self-hosted service also needs to know where a bucket that is not
on AWS is and the keys to it, so a profile may carry an endpoint URL and an access key (NULL:
the service's own AWS variables). A clip in a profile is `<prefix>/<asset id>.mp4` (`.webm` for
a WebM clip), its stills beside it, as the platform names objects
(`bucketName/objectPrefix/objectName.ext`).

`validate` is the platform's validation call: it writes a test object with the profile's
settings and deletes it, so a wrong bucket, key or endpoint is found before a clip needs it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import obstore
from sqlalchemy.ext.asyncio import AsyncConnection

from mediahooks.errors import Invalid
from mediahooks.storage import Storage, media_key
from mediahooks.storage.s3 import Access, S3Storage
from mediahooks.store import storage_profiles
from mediahooks.store.db import Database
from mediahooks.store.schema import DbRow

TYPE = "awsS3"  # the platform's name for S3; any S3-compatible bucket here
OWN = "dolbyStorage"  # the platform's name for its own storage: the service's here
VALIDATION_BODY = b"mediahooks storage profile validation\n"


class ProfileError(Invalid, ValueError):
    """A profile that cannot be used: `field` is the request field to fix."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message, {field: [message]})
        self.field = field


@dataclass(frozen=True)
class Settings:
    """What reaches a profile's bucket (a stored profile's, or a one-off validation's)."""

    bucket_name: str
    object_prefix: str = ""
    bucket_region: str | None = None
    endpoint_url: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None

    @classmethod
    def of(cls, row: DbRow) -> Settings:
        return cls(
            row.bucket_name,
            row.object_prefix,
            row.bucket_region,
            row.endpoint_url,
            row.access_key_id,
            row.secret_access_key,
        )

    @property
    def url(self) -> str:
        prefix = self.object_prefix.strip("/")
        return f"s3://{self.bucket_name}" + (f"/{prefix}" if prefix else "")


def open_bucket(settings: Settings, spool: Path) -> S3Storage:
    access = Access(
        settings.endpoint_url,
        settings.bucket_region,
        settings.access_key_id,
        settings.secret_access_key,
    )
    return S3Storage(settings.url, spool, access=access)


async def validate(settings: Settings, spool: Path) -> tuple[str, str]:
    """Write a test object with ``settings`` and delete it: its id and location. ProfileError
    says what failed (the bucket answered no, or could not be reached)."""
    test_id = str(uuid.uuid4())
    key = f"mediahooks-validation-{test_id}.txt"
    step = "open"
    try:
        bucket = open_bucket(settings, spool)
        step = "write a test object to"
        await obstore.put_async(bucket.store, key, VALIDATION_BODY)
        step = "read the test object back from"
        meta = await obstore.head_async(bucket.store, key)
        if meta["size"] != len(VALIDATION_BODY):
            raise ProfileError(f"the bucket kept {meta['size']} bytes of a test object", "options")
        step = "delete the test object from"
        await obstore.delete_async(bucket.store, key)
    except ProfileError:
        raise
    except Exception as exc:
        said = str(exc).strip()
        reason = type(exc).__name__ + (": " + said.splitlines()[0][:300].strip() if said else "")
        raise ProfileError(f"could not {step} {settings.url}: {reason}", "options") from exc
    return test_id, bucket.location(key)


class Stores:
    """Where each asset's files are: the service's own storage, or its profile's bucket (opened
    once per profile version and kept)."""

    def __init__(self, db: Database, own: Storage, data_dir: Path) -> None:
        self.db = db
        self.own = own
        self.spool = data_dir / "spool" / "profiles"
        self._open: dict[tuple[str, int], S3Storage] = {}

    def key(self, asset: DbRow, extension: str = "mp4") -> str:
        """The key of an asset's media file in its storage; ``extension`` is its format."""
        if asset.storage_profile_id is None:
            return media_key(asset.account_id, asset.id, extension)
        return f"{asset.id}.{extension}"

    async def of(self, asset: DbRow) -> Storage:
        """The storage an asset's files are written to and read from. LookupError when its
        profile is gone (it cannot be deleted while an asset uses it)."""
        profile_id = asset.storage_profile_id
        if profile_id is None:
            return self.own
        async with self.db.engine.connect() as conn:
            row = await storage_profiles.by_id(conn, profile_id)
        if row is None:
            raise LookupError(f"storage profile {profile_id} is gone")
        version = (row.id, row.updated_at)
        if version not in self._open:
            self._open[version] = open_bucket(Settings.of(row), self.spool / row.id)
        return self._open[version]


async def choose(
    conn: AsyncConnection,
    account_id: str,
    profile_id: str | None,
    kind: str | None,
    overrides: bool = False,
) -> str | None:
    """The profile a clip request's `storage` names: ``profile_id``; the service's own storage
    for `dolbyStorage`; else the account's default profile, if it has one (None: the service's
    own storage). ProfileError for a profile that is not the account's, a one-off bucket
    (`type` without a profile: make a profile of it) or ``overrides`` of a profile's options
    (change the profile instead)."""
    if overrides:
        raise ProfileError(
            "storage.options are not taken with a clip request: change the storage profile "
            "(PUT /api/v3/account/media/storage/{id}) or make another one",
            "storage",
        )
    if profile_id is not None:
        if kind not in (None, TYPE):
            raise ProfileError("give either storage.profileId or storage.type", "storage")
        if await storage_profiles.get(conn, account_id, profile_id) is None:
            raise ProfileError(f"storage profile {profile_id} does not exist", "storage")
        return profile_id
    if kind == OWN:
        return None
    if kind is not None:
        raise ProfileError(
            f"a one-off {kind} storage is not offered: create a storage profile of the bucket "
            "(POST /api/v3/account/media/storage) and give its id as storage.profileId",
            "storage",
        )
    row = await storage_profiles.default(conn, account_id)
    return row.id if row is not None else None
