"""Storage profiles, as the platform has them: an account's own bucket (a second moto bucket,
reached with the profile's own endpoint and keys), its validation call (a test object written
and deleted), a clip naming the profile written there, read, downloaded and deleted there; the
service's own storage stays the data directory. Both databases."""

from __future__ import annotations

from typing import Any

import pytest

from mediahooks.storage import profiles
from mediahooks.storage.s3 import S3Storage
from support import buckets
from support.media import clip, fetch, hooks_for, media_of, push, token
from support.receiver import Receiver
from support.server import Api, ApiFactory

BASE = "/api/v3/account/media/storage"


@pytest.fixture
def profile_bucket(s3_endpoint: buckets.Endpoint | None) -> tuple[buckets.Endpoint, str]:
    """A bucket of the tests' moto server other than the service's own storage: its name."""
    if s3_endpoint is None:
        pytest.skip("a second bucket needs the moto server the tests start")
    return s3_endpoint, buckets.new_bucket(s3_endpoint).removeprefix("s3://").split("/")[0]


def options(endpoint: buckets.Endpoint, bucket: str, prefix: str = "clips/mine") -> dict[str, Any]:
    return {
        "bucketName": bucket,
        "objectPrefix": prefix,
        "bucketRegion": buckets.MOTO_ENV["AWS_REGION"],
        "endpointUrl": endpoint.url,
        "accessKeyId": buckets.MOTO_ENV["AWS_ACCESS_KEY_ID"],
        "secretAccessKey": buckets.MOTO_ENV["AWS_SECRET_ACCESS_KEY"],
    }


async def refused(api: Api, method: str, path: str, body: Any, status: int) -> str:
    got, answer = await api.call(method, path, body)
    assert got == status and answer["status"] == "fail", (got, answer)
    return str(answer["data"]["message"])


def bucket_of(api: Api, profile: dict[str, Any]) -> S3Storage:
    """The profile's bucket, opened as the service opens it (to look inside)."""
    settings = profiles.Settings(
        profile["options"]["bucketName"],
        profile["options"]["objectPrefix"],
        buckets.MOTO_ENV["AWS_REGION"],
        profile["options"]["endpointUrl"],
        buckets.MOTO_ENV["AWS_ACCESS_KEY_ID"],
        buckets.MOTO_ENV["AWS_SECRET_ACCESS_KEY"],
    )
    return profiles.open_bucket(settings, api.service.settings.data_dir / "look")


async def test_profiles_crud_masks_secrets_and_keeps_one_default(
    api: Api, profile_bucket: tuple[buckets.Endpoint, str]
) -> None:
    endpoint, bucket = profile_bucket
    secret = buckets.MOTO_ENV["AWS_SECRET_ACCESS_KEY"]
    first = await api.ok(
        "POST",
        BASE,
        {"name": "archive", "default": True, "type": "awsS3", "options": options(endpoint, bucket)},
    )
    assert first["name"] == "archive" and first["default"] is True and first["type"] == "awsS3"
    shown = first["options"]["secretAccessKey"]
    assert shown != secret and secret not in str(first) and shown.endswith(secret[-4:])
    assert first["options"]["objectPrefix"] == "clips/mine"
    second = await api.ok(
        "POST", BASE, {"default": True, "type": "awsS3", "options": options(endpoint, bucket, "")}
    )
    assert second["name"] == bucket  # no name: the bucket's
    # One default: the newer replaced the older.
    assert (await api.ok("GET", f"{BASE}/{first['id']}"))["default"] is False
    assert [p["id"] for p in await api.ok("GET", f"{BASE}?default=true")] == [second["id"]]
    listed = await api.ok("GET", BASE)
    assert [p["name"] for p in listed] == sorted([bucket, "archive"])
    assert secret not in str(listed)
    changed = await api.ok("PUT", f"{BASE}/{first['id']}", {"name": "vault", "default": True})
    assert changed["name"] == "vault" and changed["default"] is True
    assert changed["options"]["bucketName"] == bucket  # options untouched
    assert await api.ok("DELETE", f"{BASE}/{second['id']}") is True
    await refused(api, "GET", f"{BASE}/{second['id']}", None, 404)

    # Bad input: 4xx with the envelope, never 500.
    gcs = {"type": "gcs", "options": {"bucketName": bucket}}
    assert "not offered" in await refused(api, "POST", BASE, gcs, 400)
    bad_bucket = {"type": "awsS3", "options": {"bucketName": "Not A Bucket"}}
    await refused(api, "POST", BASE, bad_bucket, 400)
    bad_endpoint = {"type": "awsS3", "options": {"bucketName": bucket, "endpointUrl": "ftp://x"}}
    await refused(api, "POST", BASE, bad_endpoint, 400)
    await refused(api, "GET", f"{BASE}/00000000-0000-4000-8000-000000000000", None, 404)


async def test_validation_writes_and_deletes_a_test_object_or_says_what_failed(
    api: Api, profile_bucket: tuple[buckets.Endpoint, str]
) -> None:
    endpoint, bucket = profile_bucket
    profile = await api.ok("POST", BASE, {"type": "awsS3", "options": options(endpoint, bucket)})
    checked = await api.ok("POST", f"{BASE}/validate", {"profileId": profile["id"]})
    assert checked["storage"]["type"] == "awsS3"
    path = checked["storage"]["path"]
    assert path.startswith(f"s3://{bucket}/clips/mine/") and checked["id"] in path
    # Written and deleted again.
    assert await bucket_of(api, profile).size(path) is None
    # A one-off setup, not saved as a profile.
    once = await api.ok(
        "POST", f"{BASE}/validate", {"type": "awsS3", "options": options(endpoint, bucket, "x")}
    )
    assert once["storage"]["path"].startswith(f"s3://{bucket}/x/")
    # A bucket that does not exist: the answer says which and why.
    missing = options(endpoint, "no-such-bucket-here")
    message = await refused(
        api, "POST", f"{BASE}/validate", {"type": "awsS3", "options": missing}, 400
    )
    assert "Could not write a test object to s3://no-such-bucket-here/clips/mine" in message
    # No profile given and no default profile.
    await refused(api, "POST", f"{BASE}/validate", {}, 404)


async def test_a_clip_naming_a_profile_is_written_read_and_deleted_in_its_bucket(
    api_factory: ApiFactory, receiver: Receiver, profile_bucket: tuple[buckets.Endpoint, str]
) -> None:
    endpoint, bucket = profile_bucket
    api = await api_factory()  # the service's own storage: its data directory
    assert api.service.storage.kind == "local"
    await api.webhook(receiver.url + "/p")
    profile = await api.ok("POST", BASE, {"type": "awsS3", "options": options(endpoint, bucket)})
    tok = await token(api, "cam")
    start = await push(api, tok, "cam", 14)
    unknown = {"streamName": "cam", "startTime": "2020-01-01T00:00:00Z"}
    body = {**unknown, "storage": {"profileId": "nope"}}
    assert "does not exist" in await refused(api, "POST", "/api/v3/media/assets", body, 400)
    body = {**unknown, "storage": {"profileId": profile["id"], "options": {"objectPrefix": "x"}}}
    assert "not taken" in await refused(api, "POST", "/api/v3/media/assets", body, 400)
    body = {**unknown, "storage": {"type": "awsS3"}}
    assert "create a storage profile" in await refused(
        api, "POST", "/api/v3/media/assets", body, 400
    )

    (asset,) = await clip(api, "cam", start, start + 12_000, storage={"profileId": profile["id"]})
    assert asset["storage"]["type"] == "awsS3"
    assert await hooks_for(receiver, "/p", asset["id"], 2) == ["processing", "completed"]
    done = await api.ok("GET", f"/api/v3/media/assets/{asset['id']}")
    path = done["storage"]["path"]
    assert done["storage"]["type"] == "awsS3"
    assert path == f"s3://{bucket}/clips/mine/{asset['id']}.mp4"
    stored = bucket_of(api, profile)
    assert await stored.size(path) == done["metadata"]["sizes"]["mp4"]
    assert await stored.size(path.removesuffix(".mp4") + ".jpg")  # the poster beside it
    # Nothing of it in the service's own storage.
    assert not list(api.service.settings.data_dir.rglob(f"{asset['id']}*"))
    status, data, _ = await fetch(done["download"]["downloadUrl"])  # through the redirect
    assert status == 200 and len(data) == done["metadata"]["sizes"]["mp4"]
    assert media_of(data)[1] == {"video", "audio"}
    # A clip without `storage` stays in the service's own storage (no default profile).
    (own,) = await clip(api, "cam", start, start + 11_000)
    assert own["storage"] == {"type": "dolbyStorage", "path": None}

    # The profile holds an asset: it cannot go first.
    assert "delete them first" in await refused(api, "DELETE", f"{BASE}/{profile['id']}", None, 409)
    gone = await api.ok("DELETE", f"/api/v3/media/assets?id={asset['id']}")
    assert gone["itemsDeleted"] == 1
    assert (await hooks_for(receiver, "/p", asset["id"], 3))[-1] == "deleted"
    assert await stored.size(path) is None
    assert await api.ok("DELETE", f"{BASE}/{profile['id']}") is True
