"""The receiver SDK's rules: verify (our hooks and the platform's) and parse every documented
variant. Served for real and imported alone: `integration/test_receiver_apps.py`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from datetime import UTC, datetime

import av
import pytest
import standardwebhooks

from mediahooks import receiver, signing
from mediahooks.events import ImageHook
from mediahooks.receiver import (
    BadSignature,
    FeedsHook,
    InvalidTimestamp,
    MalformedHook,
    MediaHook,
    MissingHeaders,
    OtherHook,
    Receiver,
    Rejected,
    ThumbnailHook,
    TimestampInFuture,
    TimestampTooOld,
    VerificationError,
    parse,
    verify,
)
from support import GOLDEN
from support.signatures import VECTOR_BODY, VECTOR_SECRET, VECTOR_SIGNATURE, platform_sign

# -- the platform's own hooks


def test_a_body_signed_as_the_platform_documents_verifies_in_platform_mode() -> None:
    header = platform_sign(VECTOR_SECRET, VECTOR_BODY)
    assert header == VECTOR_SIGNATURE
    got = verify(VECTOR_BODY, {"X-Millicast-Signature": header}, VECTOR_SECRET, platform=True)
    assert got == receiver.Verified("platform", None, None)
    # Header names are case-insensitive, as HTTP has them.
    verify(VECTOR_BODY, {"x-millicast-signature": header}, VECTOR_SECRET, platform=True)
    with pytest.raises(BadSignature):
        verify(VECTOR_BODY + b" ", {"X-Millicast-Signature": header}, VECTOR_SECRET, platform=True)
    with pytest.raises(BadSignature):
        other = signing.new_secret()
        verify(VECTOR_BODY, {"X-Millicast-Signature": header}, other, platform=True)
    with pytest.raises(MissingHeaders):
        verify(VECTOR_BODY, {}, VECTOR_SECRET, platform=True)


def test_the_platform_signature_alone_is_refused_unless_platform_mode_is_on() -> None:
    headers = {"X-Millicast-Signature": VECTOR_SIGNATURE}
    with pytest.raises(MissingHeaders):
        verify(VECTOR_BODY, headers, VECTOR_SECRET)


def test_platform_mode_still_checks_standard_headers_when_they_are_sent() -> None:
    # Our deliveries carry both schemes: the one with a timestamp decides, so a stale request
    # is refused even though its X-Millicast-Signature is genuine.
    old = int(time.time()) - 3600
    headers = signing.sign([VECTOR_SECRET], "msg_old", old, VECTOR_BODY)
    with pytest.raises(TimestampTooOld):
        verify(VECTOR_BODY, headers, VECTOR_SECRET, platform=True)
    fresh = signing.sign([VECTOR_SECRET], "msg_new", int(time.time()), VECTOR_BODY)
    assert verify(VECTOR_BODY, fresh, VECTOR_SECRET, platform=True).webhook_id == "msg_new"


def test_a_platform_hook_is_keyed_by_its_body_for_de_duplication() -> None:
    hooks = Receiver(VECTOR_SECRET, platform=True)
    headers = {"X-Millicast-Signature": VECTOR_SIGNATURE}
    first, again = hooks.receive(VECTOR_BODY, headers), hooks.receive(VECTOR_BODY, headers)
    assert first.scheme == "platform" and first.webhook_id is None
    assert first.key == again.key == "sha256:" + hashlib.sha256(VECTOR_BODY).hexdigest()


# -- Standard Webhooks: one corpus through the reference package and through us

SECRET = base64.b64encode(b"receiver-corpus-secret-32-bytes!").decode()
OTHER = base64.b64encode(b"some-other-secret-of-32-bytes!!!").decode()
BODY = VECTOR_BODY
Case = tuple[str, bytes, dict[str, str]]


def package_sign(secret: str, msg_id: str, ts: int, body: bytes) -> str:
    wh = standardwebhooks.Webhook("whsec_" + secret)
    signature: str = wh.sign(msg_id, datetime.fromtimestamp(ts, tz=UTC), body.decode())
    return signature


def headers(msg_id: str, ts: int | str, signature: str) -> dict[str, str]:
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": signature}


def corpus() -> tuple[list[Case], list[Case], list[Case]]:
    """Cases the spec requires every verifier to accept, cases carrying no valid signature
    (every verifier must refuse them), and malformed headers that we refuse.

    How lenient a peer library is with malformed headers changes between its releases (1.3.0
    of the package began to accept `v1 v1,<sig>`), so the package is asked only about what
    the spec decides; what we do with malformed headers is checked on us alone.
    """
    now = int(time.time())

    def at(
        ts: int, msg_id: str = "msg_1", body: bytes = BODY, secret: str = SECRET
    ) -> dict[str, str]:
        return headers(msg_id, ts, package_sign(secret, msg_id, ts, body))

    good = at(now)
    good_sig = good["webhook-signature"]
    b64 = good_sig.removeprefix("v1,")
    random_sig = "v1," + base64.b64encode(os.urandom(32)).decode()
    body_only = hmac.new(base64.b64decode(SECRET), BODY, hashlib.sha256).digest()
    unicode_body = BODY.replace(b"test-record-clip", "caméra-東京".encode())

    def sig(value: str) -> dict[str, str]:
        return {**good, "webhook-signature": value}

    def without(name: str) -> dict[str, str]:
        return {k: v for k, v in good.items() if k != name}

    accepted: list[Case] = [
        ("signed by the package", BODY, good),
        ("header names in any case", BODY, {k.upper(): v for k, v in good.items()}),
        ("one good signature among several", BODY, sig(f"{random_sig} {good_sig}")),
        ("an unknown scheme beside v1", BODY, sig(f"v2,abc {good_sig}")),
        ("four minutes old", BODY, at(now - 240)),
        ("four minutes ahead", BODY, at(now + 240)),
        ("a body beyond ASCII", unicode_body, at(now, body=unicode_body)),
        ("an id with dots", BODY, at(now, msg_id="msg.1.x")),
        ("leading zeros in the timestamp", BODY, {**good, "webhook-timestamp": f"0{now}"}),
    ]
    forged: list[Case] = [
        ("another secret", BODY, at(now, secret=OTHER)),
        ("the body changed", BODY.replace(b"clip", b"clap", 1), good),
        ("a trailing newline", BODY + b"\n", good),
        ("another id", BODY, {**good, "webhook-id": "msg_2"}),
        ("the timestamp moved a second", BODY, {**good, "webhook-timestamp": str(now + 1)}),
        ("six minutes old", BODY, at(now - 360)),
        ("six minutes ahead", BODY, at(now + 360)),
        ("no webhook-id", BODY, without("webhook-id")),
        ("no webhook-timestamp", BODY, without("webhook-timestamp")),
        ("no webhook-signature", BODY, without("webhook-signature")),
        ("an empty signature", BODY, sig("")),
        ("a truncated signature", BODY, sig(good_sig[:-4])),
        ("only a v2 signature", BODY, sig("v2," + b64)),
        ("HMAC of the body alone", BODY, sig("v1," + base64.b64encode(body_only).decode())),
        ("the platform header only", BODY, {"X-Millicast-Signature": platform_sign(SECRET, BODY)}),
    ]
    malformed: list[Case] = [
        ("a signature that is not base64", BODY, sig("v1,not*base64!")),
        ("an uppercase version", BODY, sig("V1," + b64)),
        ("an entry without a comma first", BODY, sig(f"v1 {good_sig}")),
        ("a double space", BODY, sig(f"{random_sig}  {good_sig}")),
        ("bad base64 first", BODY, sig(f"v1,abc {good_sig}")),
        ("a timestamp in words", BODY, {**good, "webhook-timestamp": "soon"}),
        ("a negative timestamp", BODY, {**good, "webhook-timestamp": "-1"}),
        # The spec says integer seconds; the package parses a float and floors it.
        ("a fractional timestamp", BODY, {**good, "webhook-timestamp": f"{now}.0"}),
        ("spaces around the timestamp", BODY, {**good, "webhook-timestamp": f" {now} "}),
        # Some base64 decoders skip characters outside the alphabet.
        ("a stray character in the signature", BODY, sig(f"v1,{b64[:8]}!{b64[8:]}")),
    ]
    return accepted, forged, malformed


def package_accepts(body: bytes, hdrs: dict[str, str]) -> bool:
    try:
        standardwebhooks.Webhook("whsec_" + SECRET).verify(body, hdrs)
    except Exception:  # the package also fails with ValueError and binascii.Error on bad input
        return False
    return True


def we_accept(body: bytes, hdrs: dict[str, str]) -> bool:
    try:
        verify(body, hdrs, SECRET)
    except VerificationError:
        return False
    return True


def test_one_corpus_through_the_standardwebhooks_package_and_through_us() -> None:
    accepted, forged, malformed = corpus()
    for name, body, hdrs in accepted:
        assert package_accepts(body, hdrs), name
        assert we_accept(body, hdrs), name
        # The secret may be written either way.
        assert verify(body, hdrs, "whsec_" + SECRET).scheme == "standard"
    for name, body, hdrs in forged:
        assert not package_accepts(body, hdrs), name
        assert not we_accept(body, hdrs), name
    for name, body, hdrs in malformed:
        assert not we_accept(body, hdrs), name


def test_refusals_say_precisely_why() -> None:
    now = int(time.time())

    def sign_at(ts: int) -> dict[str, str]:
        return signing.sign([SECRET], "msg_1", ts, BODY)

    cases: list[tuple[dict[str, str], type[VerificationError], type[Exception]]] = [
        ({}, MissingHeaders, MissingHeaders),
        (sign_at(now - 301), TimestampTooOld, receiver.StaleTimestamp),
        (sign_at(now + 301), TimestampInFuture, receiver.StaleTimestamp),
        ({**sign_at(now), "webhook-timestamp": "1e9"}, InvalidTimestamp, receiver.StaleTimestamp),
        ({**sign_at(now), "webhook-id": "msg_2"}, BadSignature, receiver.BadSignature),
    ]
    for hdrs, precise, family in cases:
        with pytest.raises(precise) as raised:
            verify(BODY, hdrs, SECRET)
        assert isinstance(raised.value, family)
    # A tolerance of our choosing.
    verify(BODY, sign_at(now - 3000), SECRET, tolerance=3600)


def test_rotation_any_signature_against_any_secret() -> None:
    old, new = signing.new_secret(), signing.new_secret()
    both = signing.sign([new, old], "msg_r", int(time.time()), BODY)
    assert verify(BODY, both, old).webhook_id == "msg_r"
    assert verify(BODY, both, new).webhook_id == "msg_r"
    only_old = signing.sign([old], "msg_r", int(time.time()), BODY)
    assert verify(BODY, only_old, [new, old]).webhook_id == "msg_r"
    with pytest.raises(BadSignature):
        verify(BODY, only_old, [new, signing.new_secret()])


def test_a_bad_secret_is_refused_when_configured_not_on_each_request() -> None:
    bad: object
    for bad in ("not base64!", "", []):
        with pytest.raises(ValueError):
            Receiver(bad)


# -- parse


@pytest.mark.parametrize("name", sorted(p.name for p in GOLDEN.glob("*.json")))
def test_the_platform_examples_parse(name: str) -> None:
    hook = parse((GOLDEN / name).read_bytes())
    assert isinstance(hook, MediaHook)
    assert len(hook.data.media_asset_id) == 32
    assert hook.data.stream_name and hook.data.stream_id and hook.data.token_id


def test_a_hook_without_metadata_and_one_from_a_channel() -> None:
    errored = parse((GOLDEN / "errored-recording.json").read_bytes())
    assert isinstance(errored, MediaHook) and errored.data.metadata is None
    assert errored.data.error is None
    channel = parse(
        {
            "type": "media",
            "event": "completed",
            "timestamp": 1725260343575,
            "data": {
                "mediaAssetId": "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6",
                "channelId": "a1b2c3d4e5f6g7h8u9j0k1l2m",
                "startTime": 1725259874671,
                "type": "clip",
                "expiration": 1733900336143,
            },
        }
    )
    assert isinstance(channel, MediaHook)
    data = channel.data
    assert data.channel_id == "a1b2c3d4e5f6g7h8u9j0k1l2m" == data.source
    assert data.stream_name is None and data.stream_id is None and data.token_id is None


def test_feeds_hooks_including_an_ended_one_without_started() -> None:
    ended = parse(
        b'{"type":"feeds","event":"ended","timestamp":1638463501075,"data":{"feedId":'
        b'"369e4a86-f937-4254-bd9f-99dc484d2bd6","accountId":"ZG6NWV","name":"sample_stream",'
        b'"streamId":"ZG6NWV/sample_stream","active":false,"ended":1638463500963,"priority":2}}'
    )
    assert isinstance(ended, FeedsHook)
    assert ended.data.started is None and ended.data.ended == 1638463500963
    assert ended.data.active is False and ended.data.priority == 2


def test_later_fields_events_and_types_are_kept_not_refused() -> None:
    raw = json.loads(VECTOR_BODY)
    raw["data"]["region"] = "eu"
    raw["data"]["metadata"] = {"error": "the timeline expired", "size": 5}
    raw["event"] = "archived"
    hook = parse(raw)
    assert isinstance(hook, MediaHook) and hook.event == "archived"
    assert hook.data.extra == {"region": "eu"} and hook.data.error == "the timeline expired"
    other = parse({"type": "viewerConnection", "event": "noViewers", "timestamp": 1, "data": {}})
    assert isinstance(other, OtherHook) and other.type == "viewerConnection"
    # A float written for an integer is still a time.
    assert parse({**json.loads(VECTOR_BODY), "timestamp": 1725260343575.0}).timestamp == (
        1725260343575
    )


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        b'{"type": "media", "event": "completed", "timestamp": 1, "data": []}',
        b'{"type": "media", "event": "completed", "timestamp": "soon", "data": {}}',
        b'{"type": "media", "event": "completed", "timestamp": 1, "data": {}}',
        b'{"type": "media", "event": "completed", "timestamp": 1, "data": {"mediaAssetId": 7}}',
        b'{"type": "feeds", "event": "started", "timestamp": 1, "data": {"name": "x"}}',
        b'{"event": "completed", "timestamp": 1, "data": {}}',
        # Deeper than the interpreter's stack: json.loads raises RecursionError, not ValueError.
        b'{"type": "media", "data": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    ],
)
def test_what_is_not_a_hook_is_refused(body: bytes) -> None:
    with pytest.raises(MalformedHook):
        parse(body)


def test_a_thumbnail_is_a_jpeg_whose_facts_travel_in_headers() -> None:
    encoder = av.CodecContext.create("mjpeg", "w")
    encoder.width, encoder.height, encoder.pix_fmt = 64, 36, "yuvj420p"
    jpeg = bytes(encoder.encode(av.VideoFrame(64, 36, "yuvj420p"))[0])
    sent = ImageHook(1725260343575, "feed-1", "dkxfvY/cam", 7, jpeg)
    headers = sent.headers() | {"X-Millicast-Signature": platform_sign(SECRET, jpeg)}
    hook = receiver.Receiver(SECRET, platform=True).receive(jpeg, headers).hook
    assert isinstance(hook, ThumbnailHook) and hook.image == jpeg
    assert (hook.timestamp, hook.stream_name, hook.feed_id, hook.token_id) == (
        1725260343575,
        "cam",
        "feed-1",
        7,
    )
    # Signed but not a picture, or without the header that says whose it is: not a hook.
    for body, extra in ((b"GIF89a", {}), (jpeg, {"X-Millicast-Stream-Id": ""})):
        wrong = sent.headers() | extra | {"X-Millicast-Signature": platform_sign(SECRET, body)}
        with pytest.raises(Rejected) as refused:
            receiver.Receiver(SECRET, platform=True).receive(body, wrong)
        assert refused.value.status == 400, refused.value.reason
