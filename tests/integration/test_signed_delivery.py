"""A real delivery through a real server verifies under both signature schemes, on each database."""

import standardwebhooks

from mediahooks.receiver import verify
from support.receiver import Receiver
from support.server import Api
from support.signatures import platform_verify


async def test_a_real_delivery_verifies_both_ways(api: Api, receiver: Receiver) -> None:
    hook = await api.webhook(receiver.url + "/signed")
    await api.ok("POST", "/api/webhooks/test/Media")
    (got,) = await receiver.wait_for(1, "/signed")
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers["User-Agent"].startswith("mediahooks/")
    assert platform_verify(hook["secret"], got.body, got.headers["X-Millicast-Signature"])
    standardwebhooks.Webhook("whsec_" + hook["secret"]).verify(got.body, got.headers)
    assert verify(got.body, got.headers, hook["secret"]).webhook_id == got.headers["webhook-id"]
