"""Golden tests of the wire format: the platform's own examples and test vector."""

import json
from typing import Any

import pytest

from mediahooks import events
from support import GOLDEN
from support.signatures import VECTOR_BODY


@pytest.mark.parametrize("name", sorted(p.name for p in GOLDEN.glob("*.json")))
def test_platform_examples_parse_and_re_encode_to_the_same_json(name: str) -> None:
    text = (GOLDEN / name).read_text()
    hook = events.parse(text)
    assert json.loads(events.encode(hook)) == json.loads(text)


@pytest.mark.parametrize("name", sorted(p.name for p in (GOLDEN / "other").glob("*.json")))
def test_examples_of_the_other_json_hook_types_round_trip(name: str) -> None:
    """`recordings` (the platform's example, integer `recordFileId` and all), `viewerConnection`
    and `transcoder` (the fields of the platform's pages)."""
    text = (GOLDEN / "other" / name).read_text()
    hook = events.parse(text)
    assert hook.type in events.HOOK_TYPES
    assert json.loads(events.encode(hook)) == json.loads(text)


def test_every_json_hook_type_has_a_sample_of_its_own_type() -> None:
    for hook_type in events.HOOK_TYPES:
        sample = events.sample(hook_type, "dkxfvY", 1725260343575)
        if hook_type == "thumbnail":  # a picture, not JSON
            assert sample is None
            continue
        assert sample is not None and sample.type == hook_type
        assert events.parse(events.encode(sample)) == sample


def test_errored_example_has_no_metadata_and_stays_without() -> None:
    hook = events.parse((GOLDEN / "errored-recording.json").read_text())
    assert isinstance(hook.data, events.MediaData)
    assert hook.data.metadata is None
    assert "metadata" not in json.loads(events.encode(hook))["data"]


def test_our_encoding_is_byte_identical_to_the_platform_vector() -> None:
    assert events.encode(events.parse(VECTOR_BODY)) == VECTOR_BODY


def test_a_hook_we_build_has_the_platform_shape() -> None:
    data = events.MediaData(
        media_asset_id=events.new_asset_id(),
        token_id=7,
        stream_name="cam",
        stream_id="dkxfvY/cam",
        start_time=1725259874671,
        type="recording",
        metadata={},
        expiration=1733900336143,
    )
    body = json.loads(events.encode(events.media_hook("processing", data, 1725260343575)))
    assert list(body) == ["type", "event", "timestamp", "data"]
    assert body["data"]["mediaAssetId"] == data.media_asset_id
    assert len(data.media_asset_id) == 32 and int(data.media_asset_id, 16) >= 0
    assert len(str(body["timestamp"])) == 13


def test_fields_added_later_are_kept() -> None:
    raw = json.loads(VECTOR_BODY)
    raw["data"]["region"] = "eu"
    hook = events.parse(raw)
    assert json.loads(events.encode(hook))["data"]["region"] == "eu"


def test_feeds_hook_round_trips() -> None:
    raw: dict[str, Any] = {
        "type": "feeds",
        "event": "ended",
        "timestamp": 1725260343575,
        "data": {
            "feedId": "f1",
            "accountId": "dkxfvY",
            "name": "cam",
            "streamId": "dkxfvY/cam",
            "started": 1725260000000,
            "active": False,
            "ended": 1725260343000,
        },
    }
    assert json.loads(events.encode(events.parse(raw))) == raw
    # The platform's own `ended` example carries no `started`.
    del raw["data"]["started"]
    assert json.loads(events.encode(events.parse(raw))) == raw


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"type":"media"}',
        b'{"type":"media","event":"exploded","timestamp":1,"data":{}}',
        b'{"type":"media","event":"completed","timestamp":1,"data":{"tokenId":1}}',
        b'{"type":"other","event":"x","timestamp":1,"data":{}}',
    ],
)
def test_malformed_hooks_are_refused_with_a_reason(body: bytes) -> None:
    with pytest.raises(events.MalformedHook):
        events.parse(body)
