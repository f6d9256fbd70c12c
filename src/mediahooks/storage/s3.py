"""Media files in an S3-compatible bucket (AWS S3, MinIO, Garage, SeaweedFS, R2, B2).

``s3://bucket/prefix`` names the bucket; credentials, region and endpoint come from the
standard AWS variables (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``,
``AWS_ENDPOINT_URL`` for a bucket not on AWS). The client is obstore: async, in Rust, with
ranged reads, multipart uploads and presigning in one small wheel.

A file is cut locally into the spool directory, uploaded by `commit` and removed from the spool
once the bucket has it. While the bucket cannot be reached, `commit` waits and tries again: the
asset stays `processing` (its lease kept alive by the worker) and nothing is lost.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import obstore
from obstore.store import S3Store

from mediahooks.storage import Body

log = logging.getLogger("mediahooks.storage")

# Between tries of an upload while the bucket is away: doubling, capped.
FIRST_WAIT = 0.5
LONGEST_WAIT = 10.0
CHUNK = 256 * 1024


@dataclass(frozen=True)
class Access:
    """Where a bucket is and the keys to it; what is None comes from the AWS variables."""

    endpoint: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None

    def config(self) -> dict[str, str]:
        names = ("endpoint", "region", "access_key_id", "secret_access_key")
        return {name: value for name in names if (value := getattr(self, name))}


def parse_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` → (bucket, "some/prefix")."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise ValueError(f"a storage URL is s3://bucket or s3://bucket/prefix, got {url!r}")
    return parts.netloc, parts.path.strip("/")


class S3Storage:
    kind = "s3"

    def __init__(
        self, url: str, spool: Path, *, proxy: bool = False, access: Access | None = None
    ) -> None:
        """``access``: how to reach this bucket when not with the standard AWS variables (a
        storage profile's own endpoint, region and keys)."""
        self.bucket, self.prefix = parse_url(url)
        self.spool = spool
        self.proxy = proxy
        self.base = f"s3://{self.bucket}/" + (f"{self.prefix}/" if self.prefix else "")
        given = access.config() if access else {}
        endpoint = given.get("endpoint") or os.environ.get("AWS_ENDPOINT_URL", "")
        self.store = S3Store(
            self.bucket,
            prefix=self.prefix or None,
            config=given or None,  # type: ignore[arg-type]
            # MinIO and moto on a private network speak plain HTTP; AWS is always HTTPS.
            client_options={"allow_http": endpoint.startswith("http://")},
            # The worker retries an upload for as long as the bucket is away; the client's own
            # retries only cover a blip.
            retry_config={"max_retries": 2, "retry_timeout": timedelta(seconds=10)},
        )

    def staging(self, key: str) -> Path:
        path = self.spool / key
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    async def commit(self, key: str, media_type: str) -> str:
        staged = self.staging(key)
        location = await self.upload(key, staged, media_type)
        staged.unlink(missing_ok=True)
        return location

    async def upload(self, key: str, source: Path, media_type: str) -> str:
        if not source.exists():  # noqa: ASYNC240 (a stat)
            raise FileNotFoundError(source)
        wait = FIRST_WAIT
        while True:
            try:
                await obstore.put_async(
                    self.store, key, source, attributes={"Content-Type": media_type}
                )
                break
            except Exception as exc:  # any failure of the bucket: wait, then try again
                # Removed meanwhile (a segment expired): nothing to upload.
                if not source.exists():  # noqa: ASYNC240 (a stat)
                    raise FileNotFoundError(source) from exc
                log.warning(
                    "upload of %s failed (%s); retrying in %.1f s", key, type(exc).__name__, wait
                )
                await asyncio.sleep(wait)
                wait = min(wait * 2, LONGEST_WAIT)
        return self.location(key)

    def location(self, key: str) -> str:
        return self.base + key

    def key_of(self, location: str) -> str:
        if not location.startswith(self.base):
            raise ValueError(f"{location!r} is not in {self.base}")
        return location[len(self.base) :]

    async def delete(self, locations: list[str]) -> None:
        keys = [self.key_of(location) for location in locations]
        if keys:
            await obstore.delete_async(self.store, keys)

    async def size(self, location: str) -> int | None:
        try:
            meta = await obstore.head_async(self.store, self.key_of(location))
        except FileNotFoundError:
            return None
        return meta["size"]

    async def signed_url(self, location: str, ttl: float) -> str | None:
        if self.proxy:
            return None
        return await obstore.sign_async(
            self.store, "GET", self.key_of(location), timedelta(seconds=ttl)
        )

    async def read(self, location: str, start: int, end: int | None) -> Body:
        key = self.key_of(location)
        size = (await obstore.head_async(self.store, key))["size"]
        stop = size if end is None else min(end, size)
        result = await obstore.get_async(self.store, key, options={"range": (start, stop)})

        async def chunks() -> AsyncIterator[bytes]:
            async for chunk in result.stream(min_chunk_size=CHUNK):
                yield bytes(chunk)

        return Body(chunks(), start, stop, size)

    async def fetch(self, location: str, dest: Path) -> None:
        result = await obstore.get_async(self.store, self.key_of(location))
        with open(dest, "wb") as file:  # noqa: ASYNC230 (a local disk keeps up with the bucket)
            async for chunk in result.stream(min_chunk_size=CHUNK):
                file.write(chunk)

    async def close(self) -> None:
        return None
