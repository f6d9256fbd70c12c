"""Golden tests of the wire format: the platform's own examples and test vector, read with the
one parser there is (the receiver's) and written with the sender's builders (`events`)."""

import json
from dataclasses import replace
from typing import Any

import pytest

from mediahooks import events
from mediahooks.receiver.models import FeedsHook, MalformedHook, MediaHook, OtherHook, parse
from support import GOLDEN
from support.signatures import VECTOR_BODY

# The same hook's data, built by the sender.
VECTOR_DATA = events.MediaData(
    media_asset_id="e0ca421e3ee748629d073b6991d4d93d",
    token_id=1187282,
    stream_name="test-record-clip",
    stream_id="dkxfvY/test-record-clip",
    start_time=1725259874671,
    type="clip",
    metadata={},
    expiration=1733900336143,
)


def rebuilt(text: str | bytes | dict[str, Any]) -> events.Hook:
    """The hook a receiver reads in ``text``, built again with the sender's builders from the
    fields the receiver gives (typed for media and feeds, as sent for the other types)."""
    hook = parse(text)
    if isinstance(hook, MediaHook):
        media = hook.data
        assert media.token_id is not None and media.stream_name and media.stream_id
        assert media.start_time is not None and media.type in ("clip", "recording")
        return events.Hook(
            "media",
            hook.event,
            hook.timestamp,
            events.MediaData(
                media.media_asset_id,
                media.token_id,
                media.stream_name,
                media.stream_id,
                media.start_time,
                "clip" if media.type == "clip" else "recording",
                media.metadata,
                media.expiration,
                media.extra,
            ),
        )
    if isinstance(hook, FeedsHook):
        feed = hook.data
        assert feed.account_id and feed.name and feed.stream_id and feed.active is not None
        data = events.FeedsData(
            feed.feed_id,
            feed.account_id,
            feed.name,
            feed.stream_id,
            feed.started,
            feed.active,
            feed.ended,
            feed.extra,
        )
        return events.Hook("feeds", hook.event, hook.timestamp, data)
    assert isinstance(hook, OtherHook)
    return events.Hook(hook.type, hook.event, hook.timestamp, other_data(hook.type, hook.data))


def other_data(hook_type: str, d: dict[str, Any]) -> events.HookData:
    if hook_type == "recordings":
        return events.RecordingData(
            d["recordFileId"],
            d["tokenId"],
            d["streamName"],
            d["recordedOn"],
            d.get("removedOn"),
            d.get("metadata"),
        )
    if hook_type == "viewerConnection":
        return events.ViewerData(d["name"], d["accountId"], d["streamId"])
    assert hook_type == "transcoder"
    return events.TranscoderData(
        d["transcoderId"], d["transcoderName"], d["cluster"], d["createdOn"], d["status"]
    )


@pytest.mark.parametrize("name", sorted(p.name for p in GOLDEN.glob("*.json")))
def test_platform_examples_parse_and_re_encode_to_the_same_json(name: str) -> None:
    text = (GOLDEN / name).read_text()
    assert json.loads(events.encode(rebuilt(text))) == json.loads(text)


@pytest.mark.parametrize("name", sorted(p.name for p in (GOLDEN / "other").glob("*.json")))
def test_examples_of_the_other_json_hook_types_round_trip(name: str) -> None:
    """`recordings` (the platform's example, integer `recordFileId` and all), `viewerConnection`
    and `transcoder` (the fields of the platform's pages)."""
    text = (GOLDEN / "other" / name).read_text()
    hook = rebuilt(text)
    assert hook.type in events.HOOK_TYPES
    assert json.loads(events.encode(hook)) == json.loads(text)


def test_every_json_hook_type_has_a_sample_of_its_own_type() -> None:
    for hook_type in events.HOOK_TYPES:
        sample = events.sample(hook_type, "dkxfvY", 1725260343575)
        if hook_type == "thumbnail":  # a picture, not JSON
            assert sample is None
            continue
        assert sample is not None and sample.type == hook_type
        read = parse(events.encode(sample))
        assert (read.type, read.event, read.timestamp) == (hook_type, sample.event, 1725260343575)
        assert rebuilt(events.encode(sample)) == sample


def test_errored_example_has_no_metadata_and_stays_without() -> None:
    text = (GOLDEN / "errored-recording.json").read_text()
    hook = parse(text)
    assert isinstance(hook, MediaHook)
    assert hook.data.metadata is None and hook.data.error is None
    assert "metadata" not in json.loads(events.encode(rebuilt(text)))["data"]


def test_our_encoding_is_byte_identical_to_the_platform_vector() -> None:
    assert events.encode(events.media_hook("completed", VECTOR_DATA, 1725260343575)) == VECTOR_BODY
    assert events.encode(rebuilt(VECTOR_BODY)) == VECTOR_BODY


def test_a_hook_we_build_has_the_platform_shape() -> None:
    data = replace(VECTOR_DATA, media_asset_id=events.new_asset_id(), type="recording")
    body = json.loads(events.encode(events.media_hook("processing", data, 1725260343575)))
    assert list(body) == ["type", "event", "timestamp", "data"]
    assert body["data"]["mediaAssetId"] == data.media_asset_id
    assert len(data.media_asset_id) == 32 and int(data.media_asset_id, 16) >= 0
    assert len(str(body["timestamp"])) == 13


def test_fields_added_later_are_kept() -> None:
    raw = json.loads(VECTOR_BODY)
    raw["data"]["region"] = "eu"
    hook = parse(raw)
    assert isinstance(hook, MediaHook) and hook.data.extra == {"region": "eu"}
    assert json.loads(events.encode(rebuilt(raw)))["data"]["region"] == "eu"


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
    assert json.loads(events.encode(rebuilt(raw))) == raw
    # The platform's own `ended` example carries no `started`.
    del raw["data"]["started"]
    assert json.loads(events.encode(rebuilt(raw))) == raw


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"type":"media"}',
        b'{"type":"media","event":"exploded","timestamp":1,"data":{}}',
        b'{"type":"media","event":"completed","timestamp":1,"data":{"tokenId":1}}',
        b'{"type":"feeds","event":"started","timestamp":"soon","data":{"feedId":"f"}}',
    ],
)
def test_malformed_hooks_are_refused_with_a_reason(body: bytes) -> None:
    with pytest.raises(MalformedHook) as refused:
        parse(body)
    assert str(refused.value)


def test_types_and_events_added_later_are_read_not_refused() -> None:
    """The receiver is lenient where the sender is strict: a platform newer than this parser
    still gets its hooks through."""
    hook = parse(b'{"type":"other","event":"x","timestamp":1,"data":{"a":1}}')
    assert isinstance(hook, OtherHook) and hook.data == {"a": 1}
    later = parse(b'{"type":"media","event":"archived","timestamp":1,"data":{"mediaAssetId":"m"}}')
    assert isinstance(later, MediaHook) and later.event == "archived"
