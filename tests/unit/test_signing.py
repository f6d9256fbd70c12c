"""Both signature schemes: the platform's test vector, off-the-shelf verifiers, rotation."""

import time

import pytest
import standardwebhooks

from mediahooks import receiver, signing
from mediahooks.receiver import verify
from mediahooks.signing import MILLICAST_HEADER
from support.signatures import VECTOR_BODY, platform_verify

VECTOR_SECRET = "ZXhhbXBsZS13ZWJob29rLXNlY3JldC1ieXRlcy0wMDA="
VECTOR_SIGNATURE = "sha1=dc7a5a797047d488eac1b296f8916fcdd973d695"


def test_platform_test_vector() -> None:
    assert signing.millicast_signature(VECTOR_SECRET, VECTOR_BODY) == VECTOR_SIGNATURE
    assert platform_verify(VECTOR_SECRET, VECTOR_BODY, VECTOR_SIGNATURE)
    verify(VECTOR_BODY, {MILLICAST_HEADER: VECTOR_SIGNATURE}, VECTOR_SECRET, platform=True)


def test_standard_webhooks_package_accepts_our_headers() -> None:
    ts = int(time.time())
    headers = signing.sign([VECTOR_SECRET], "msg_1", ts, VECTOR_BODY)
    verified = standardwebhooks.Webhook("whsec_" + VECTOR_SECRET).verify(VECTOR_BODY, headers)
    assert verified["type"] == "media"


def test_our_verify_accepts_what_the_package_signs() -> None:
    ts = int(time.time())
    wh = standardwebhooks.Webhook("whsec_" + VECTOR_SECRET)
    from datetime import UTC, datetime

    signature = wh.sign("msg_2", datetime.fromtimestamp(ts, tz=UTC), VECTOR_BODY.decode())
    headers = {"webhook-id": "msg_2", "webhook-timestamp": str(ts), "webhook-signature": signature}
    assert verify(VECTOR_BODY, headers, VECTOR_SECRET).webhook_id == "msg_2"


def test_rotation_signs_with_both_keys_and_either_verifies() -> None:
    old, new = signing.new_secret(), signing.new_secret()
    ts = int(time.time())
    headers = signing.sign([new, old], "msg_3", ts, VECTOR_BODY)
    assert len(headers["webhook-signature"].split()) == 2
    for key in (old, new):
        standardwebhooks.Webhook("whsec_" + key).verify(VECTOR_BODY, headers)
        assert verify(VECTOR_BODY, headers, key).webhook_id == "msg_3"
    # The platform header carries the current key only.
    assert platform_verify(new, VECTOR_BODY, headers[signing.MILLICAST_HEADER])


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (lambda h, b: ({**h, "webhook-signature": "v1,AAAA"}, b), receiver.BadSignature),
        (lambda h, b: (h, b + b" "), receiver.BadSignature),
        (lambda h, b: ({**h, "webhook-id": "msg_other"}, b), receiver.BadSignature),
        (lambda h, b: ({**h, "webhook-timestamp": "1"}, b), receiver.StaleTimestamp),
        (
            lambda h, b: ({**h, "webhook-timestamp": str(int(time.time()) + 3600)}, b),
            receiver.StaleTimestamp,
        ),
        (
            lambda h, b: ({k: v for k, v in h.items() if k != "webhook-id"}, b),
            receiver.MissingHeaders,
        ),
    ],
)
def test_forgeries_are_refused_by_us_and_by_the_package(change, error) -> None:  # type: ignore[no-untyped-def]
    headers = signing.sign([VECTOR_SECRET], "msg_4", int(time.time()), VECTOR_BODY)
    bad_headers, bad_body = change(headers, VECTOR_BODY)
    with pytest.raises(error):
        verify(bad_body, bad_headers, VECTOR_SECRET)
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook("whsec_" + VECTOR_SECRET).verify(bad_body, bad_headers)
