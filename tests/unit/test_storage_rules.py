"""Storage rules without a store: byte ranges of downloads, and which storage URLs are buckets."""

from __future__ import annotations

import pytest

from mediahooks.config import Settings
from mediahooks.storage import ranges


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        (None, 100, None),
        ("bytes=0-99", 1000, (0, 100)),
        ("bytes=10-", 100, (10, 100)),
        ("bytes=-10", 100, (90, 100)),
        ("bytes=90-500", 100, (90, 100)),
        ("bytes=0-1,5-6", 100, None),  # several ranges: the whole file
        ("items=0-1", 100, None),
        ("bytes=x-y", 100, None),
    ],
)
def test_ranges_parse(header: str | None, size: int, expected: tuple[int, int] | None) -> None:
    assert ranges.parse(header, size) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=-0", "bytes=5-2"])
def test_ranges_outside_the_file_are_unsatisfiable(header: str) -> None:
    with pytest.raises(ranges.Unsatisfiable):
        ranges.parse(header, 100)


@pytest.mark.parametrize("url", ["file:///tmp/x", "s3://", "s3:///prefix", "bucket/prefix"])
def test_a_storage_url_that_is_not_a_bucket_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="MEDIAHOOKS_STORAGE_URL"):
        Settings(storage_url=url)
