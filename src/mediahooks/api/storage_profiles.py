"""Storage profiles, the platform's routes (`/api/v3/account/media/storage`): an account's own
S3-compatible buckets, which a clip request names (`storage.profileId`) or which hold every clip
(the default profile), and the validation call that writes and deletes a test object.

Secrets are taken, never given back: a profile's `secretAccessKey` is answered masked. The
logic is in `storage/profiles.py` and the queries in `store/storage_profiles.py`.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse
from pydantic import ConfigDict, Field, StrictBool, StrictStr

from mediahooks.actions.bodies import Body
from mediahooks.api.auth import Account, ServiceDep
from mediahooks.api.envelope import found, ok
from mediahooks.errors import Conflict, Invalid
from mediahooks.storage import profiles
from mediahooks.store import storage_profiles as store
from mediahooks.store.schema import DbRow

router = APIRouter(tags=["storage profiles"])

# A GUID in the path (`{id:uuid}`): `.../storage/validate` is no profile's path, so a method it
# does not take there is 405, not a profile id refused.
ProfileId = Annotated[uuid.UUID, Path(description="The profile's GUID.")]
Kind = Literal["awsS3", "gcs"]
Url = Annotated[
    StrictStr,
    Field(pattern=r"^https?://[A-Za-z0-9.:\[\]-]+(/[A-Za-z0-9._~/-]*)?$", max_length=1000),
]
Key = Annotated[StrictStr, Field(min_length=1, max_length=256, pattern=r"^[\x21-\x7e]+$")]
# S3's safe characters for object keys (what every S3-compatible server takes alike).
SAFE_KEY = r"^[A-Za-z0-9!_.*'()/-]*$"
REGION = r"^[a-z0-9-]+$"
# How much of a secret is shown: enough to tell two keys apart, not enough to use one.
SHOWN = 4


class OptionsUpdate(Body):
    """The platform's storage options, and this server's additions to reach any S3-compatible
    bucket: `endpointUrl` (MinIO, Garage, R2, ...; none: AWS) and the access key (none: the
    service's own AWS variables)."""

    model_config = ConfigDict(extra="ignore")
    bucketName: StrictStr | None = Field(None, pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    objectPrefix: StrictStr | None = Field(None, max_length=1000, pattern=SAFE_KEY)
    bucketRegion: StrictStr | None = Field(None, min_length=1, max_length=32, pattern=REGION)
    endpointUrl: Url | None = None
    accessKeyId: Key | None = None
    secretAccessKey: Key | None = None


class Options(OptionsUpdate):
    bucketName: StrictStr = Field(..., pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


class CreateProfile(Body):
    model_config = ConfigDict(extra="ignore")
    name: StrictStr | None = Field(None, min_length=1, max_length=256)
    default: StrictBool | None = False
    type: Kind
    options: Options


class UpdateProfile(Body):
    model_config = ConfigDict(extra="ignore")
    name: StrictStr | None = Field(None, min_length=1, max_length=256)
    default: StrictBool | None = None
    type: Kind | None = None
    options: OptionsUpdate | None = None


class StorageChoice(Body):
    """The platform's `storage` of a clip request and of the validation call: a profile by id,
    or `dolbyStorage` (the service's own storage); none: the account's default profile."""

    model_config = ConfigDict(extra="ignore")
    profileId: StrictStr | None = Field(None, min_length=1, max_length=64)
    type: Literal["awsS3", "gcs", "dolbyStorage"] | None = None
    options: OptionsUpdate | None = None


def masked(secret: str | None) -> str | None:
    if not secret:
        return None
    return "*" * 8 + (secret[-SHOWN:] if len(secret) > 2 * SHOWN else "")


def profile_json(row: DbRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "default": bool(row.is_default),
        "type": row.type,
        "options": {
            "bucketName": row.bucket_name,
            "objectPrefix": row.object_prefix,
            "bucketRegion": row.bucket_region,
            "endpointUrl": row.endpoint_url,
            "accessKeyId": row.access_key_id,
            "secretAccessKey": masked(row.secret_access_key),
        },
    }


_COLUMNS = {
    "bucketName": "bucket_name",
    "objectPrefix": "object_prefix",
    "bucketRegion": "bucket_region",
    "endpointUrl": "endpoint_url",
    "accessKeyId": "access_key_id",
    "secretAccessKey": "secret_access_key",
}


def _values(options: OptionsUpdate, given: set[str]) -> dict[str, Any]:
    values = {_COLUMNS[name]: getattr(options, name) for name in given if name in _COLUMNS}
    if "object_prefix" in values:
        values["object_prefix"] = (values["object_prefix"] or "").strip("/")
    return values


def _check_kind(kind: str | None) -> None:
    if kind == "gcs":
        raise Invalid(
            "Google Cloud Storage is not offered by this server: use type awsS3 with any "
            "S3-compatible bucket (its XML API too, with HMAC keys and endpointUrl).",
            {"type": ["gcs is not offered"]},
        )


@router.get("/api/v3/account/media/storage", summary="List storage profiles")
async def list_profiles(
    account: Account,
    service: ServiceDep,
    sort: Literal["name"] = "name",
    default: bool | None = None,
    page: Annotated[int, Query(ge=1, le=2_147_483_647)] = 1,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    desc: bool = False,
) -> JSONResponse:
    async with service.db.engine.connect() as conn:
        rows = await store.page(
            conn, account, only_default=default, offset=(page - 1) * limit, limit=limit, desc=desc
        )
    return ok([profile_json(r) for r in rows])


@router.post("/api/v3/account/media/storage", summary="Create a storage profile")
async def create_profile(
    body: CreateProfile, account: Account, service: ServiceDep
) -> JSONResponse:
    _check_kind(body.type)
    values = _values(body.options, body.options.model_fields_set | {"bucketName"})
    values.update(name=body.name or body.options.bucketName, is_default=bool(body.default))
    async with service.db.transaction() as conn:
        row = await store.create(conn, account, {"type": body.type, **values})
    return ok(profile_json(row))


@router.get("/api/v3/account/media/storage/{id:uuid}", summary="Read a storage profile")
async def read_profile(id: ProfileId, account: Account, service: ServiceDep) -> JSONResponse:
    profile_id = str(id)
    async with service.db.engine.connect() as conn:
        row = found(await store.get(conn, account, profile_id), "Storage profile")
    return ok(profile_json(row))


@router.put("/api/v3/account/media/storage/{id:uuid}", summary="Update a storage profile")
async def update_profile(
    id: ProfileId, body: UpdateProfile, account: Account, service: ServiceDep
) -> JSONResponse:
    profile_id = str(id)
    _check_kind(body.type)
    values: dict[str, Any] = {}
    if body.options is not None:
        if "bucketName" in body.options.model_fields_set and body.options.bucketName is None:
            raise Invalid("options.bucketName cannot be removed.", {"options": ["bucketName"]})
        values.update(_values(body.options, body.options.model_fields_set))
    if body.name is not None:
        values["name"] = body.name
    if body.default is not None:
        values["is_default"] = body.default
    if body.type is not None:
        values["type"] = body.type
    async with service.db.transaction() as conn:
        found(await store.get(conn, account, profile_id), "Storage profile")
        row = await store.change(conn, account, profile_id, values) if values else None
        row = row or await store.get(conn, account, profile_id)
    return ok(profile_json(found(row, "Storage profile")))


@router.delete("/api/v3/account/media/storage/{id:uuid}", summary="Delete a storage profile")
async def delete_profile(id: ProfileId, account: Account, service: ServiceDep) -> JSONResponse:
    profile_id = str(id)
    async with service.db.transaction() as conn:
        found(await store.get(conn, account, profile_id), "Storage profile")
        used = await store.in_use(conn, profile_id)
        if used:
            raise Conflict(
                f"{used} media assets keep their files in this profile's bucket: delete them "
                "first (the service deletes their files there), then the profile.",
            )
        await store.delete(conn, account, profile_id)
    return ok(True)


@router.post(
    "/api/v3/account/media/storage/validate",
    summary="Validate a storage setup: write a test object to the bucket and delete it",
)
async def validate(body: StorageChoice, account: Account, service: ServiceDep) -> JSONResponse:
    _check_kind(body.type)
    async with service.db.engine.connect() as conn:
        if body.profileId is not None:
            row = found(await store.get(conn, account, body.profileId), "Storage profile")
        elif body.type is None:
            row = found(await store.default(conn, account), "A default storage profile")
        else:
            row = None
    if body.type == "dolbyStorage":
        raise Invalid("dolbyStorage is this server's own storage: nothing to validate.")
    if row is not None:
        settings = profiles.Settings.of(row)
        if body.options is not None:  # the platform's overrides of a profile's options
            changed = _values(body.options, body.options.model_fields_set)
            settings = profiles.Settings(**{**settings.__dict__, **changed})
    else:
        if body.options is None or body.options.bucketName is None:
            raise Invalid("Give storage options with a bucketName.", {"options": ["bucketName"]})
        settings = profiles.Settings(
            **_values(body.options, body.options.model_fields_set | {"bucketName"})
        )
    try:
        test_id, location = await profiles.validate(
            settings, service.settings.data_dir / "spool" / "profiles" / "validation"
        )
    except profiles.ProfileError as exc:
        raise Invalid(
            exc.message[:1].upper() + exc.message[1:] + ".", {exc.field: [exc.message]}
        ) from exc
    return ok({"id": test_id, "storage": {"type": profiles.TYPE, "path": location}})
