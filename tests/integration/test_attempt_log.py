"""The attempt log and replay: `/api/webhooks/{id}/deliveries`, one delivery with every attempt,
resending one delivery and recovering every failed one since a time.

Receivers are real; outcomes are awaited through the API or the receiver, never slept on.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from aiohttp import web

from mediahooks.receiver import verify
from mediahooks.signing import MILLICAST_HEADER
from support.receiver import Receiver
from support.server import Api, ApiFactory
from support.waiting import eventually

FAST = "0.1,0.1"  # three attempts, 0.1 s apart
SIGNATURE_HEADERS = (
    "X-Millicast-Signature",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
)
ATTEMPT_FIELDS = {
    "at",
    "durationMs",
    "url",
    "statusCode",
    "errorKind",
    "error",
    "requestHeaders",
    "responseHeaders",
    "responseBody",
}


class Switch:
    """A receiver path that answers ``status`` (and ``body``) until a test changes them."""

    def __init__(self, status: int = 200, body: bytes = b"ok") -> None:
        self.status = status
        self.body = body

    async def __call__(self, _request: web.Request) -> web.Response:
        return web.Response(status=self.status, body=self.body, headers={"X-Receiver": "test"})


async def deliveries(api: Api, webhook_id: int, query: str = "") -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = await api.ok(
        "GET", f"/api/webhooks/{webhook_id}/deliveries{query}"
    )
    return data


async def delivery(api: Api, webhook_id: int, delivery_id: int) -> dict[str, Any]:
    data: dict[str, Any] = await api.ok(
        "GET", f"/api/webhooks/{webhook_id}/deliveries/{delivery_id}"
    )
    return data


async def settled(api: Api, webhook_id: int, status: str, count: int, timeout: float = 15) -> None:
    """Wait until ``count`` deliveries of the webhook are ``status``."""

    async def check() -> bool:
        return len(await deliveries(api, webhook_id, f"?status={status}&itemCount=100")) >= count

    await eventually(check, timeout)


async def send_test_event(api: Api) -> dict[str, Any]:
    return await api.send_test("Media")


def lower(headers: dict[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


# --- listing -----------------------------------------------------------------------------------


async def test_deliveries_are_listed_newest_first_filtered_and_paged(
    api_factory: ApiFactory, receiver: Receiver
) -> None:
    api = await api_factory(retry_schedule=FAST)
    switch = Switch(500)
    hook = await api.webhook(receiver.on("/hook", switch))

    first = await send_test_event(api)
    await settled(api, hook["id"], "failed", 1)
    switch.status = 200
    rest = [await send_test_event(api) for _ in range(3)]
    await settled(api, hook["id"], "succeeded", 3)
    sent = [first, *rest]

    listed = await deliveries(api, hook["id"])
    assert [d["messageId"] for d in listed] == [s["messageId"] for s in reversed(sent)]
    ids = [d["id"] for d in listed]
    assert ids == sorted(ids, reverse=True)
    newest, oldest = listed[0], listed[-1]
    assert newest["webhookId"] == hook["id"]
    assert (newest["hookType"], newest["event"]) == ("media", "completed")
    newest_body = next(
        r.json for r in receiver.received if r.headers["webhook-id"] == rest[-1]["messageId"]
    )
    assert newest["orderingKey"] == newest_body["data"]["mediaAssetId"]
    assert (newest["status"], newest["attempts"], newest["lastStatusCode"]) == ("succeeded", 1, 200)
    assert newest["lastError"] is None and newest["nextAttemptAt"] is None
    assert (oldest["status"], oldest["attempts"], oldest["lastStatusCode"]) == ("failed", 3, 500)
    assert "500" in oldest["lastError"]
    for d in listed:
        assert datetime.fromisoformat(d["createdAt"]) <= datetime.fromisoformat(d["completedAt"])

    ascending = await deliveries(api, hook["id"], "?isDescending=false")
    assert [d["id"] for d in ascending] == ids[::-1]

    async def with_status(query: str) -> list[int]:
        return [d["id"] for d in await deliveries(api, hook["id"], query)]

    assert await with_status("?status=failed") == [oldest["id"]]
    assert await with_status("?status=succeeded") == ids[:3]
    assert await with_status("?status=succeeded&status=failed") == ids
    assert await with_status("?status=pending&status=cancelled") == []

    page1 = await with_status("?itemCount=2")
    page2 = await with_status(f"?itemCount=2&startingId={page1[-1]}")
    page3 = await with_status(f"?itemCount=2&startingId={page2[-1]}")
    assert (page1, page2, page3) == (ids[:2], ids[2:], [])
    assert await with_status(f"?isDescending=false&itemCount=2&startingId={ids[-1]}") == [
        ids[2],
        ids[1],
    ]
    assert await with_status(f"?status=succeeded&itemCount=1&startingId={ids[0]}") == [ids[1]]


# --- one delivery ------------------------------------------------------------------------------


async def test_a_delivery_shows_its_payload_and_every_attempt(api: Api, receiver: Receiver) -> None:
    big = bytes(ord("a") + i % 26 for i in range(100 * 1024))
    switch = Switch(500, big)
    url = receiver.on("/hook", switch)
    hook = await api.webhook(url)

    async def heal(request: web.Request) -> web.Response:
        # Two attempts get the 100 KiB error page; the third succeeds.
        if len(receiver.at("/hook")) >= 3:
            switch.status, switch.body = 200, b"thanks"
        return await switch(request)

    receiver.on("/hook", heal)
    sent = await send_test_event(api)
    await settled(api, hook["id"], "succeeded", 1)

    (listed,) = await deliveries(api, hook["id"])
    shown = await delivery(api, hook["id"], listed["id"])
    assert {k: shown[k] for k in listed} == listed
    assert shown["payload"] == receiver.at("/hook")[-1].json
    assert (shown["status"], shown["attempts"], shown["lastStatusCode"]) == ("succeeded", 3, 200)

    log = shown["attemptLog"]
    received = receiver.at("/hook")
    assert len(log) == len(received) == 3
    assert [a["statusCode"] for a in log] == [500, 500, 200]
    assert [a["errorKind"] for a in log] == ["http", "http", None]
    assert "500" in log[0]["error"] and log[2]["error"] is None
    times = [datetime.fromisoformat(a["at"]) for a in log]
    assert times == sorted(times)
    assert datetime.fromisoformat(shown["createdAt"]) <= times[0]
    for attempt, got in zip(log, received, strict=True):
        assert set(attempt) >= ATTEMPT_FIELDS, attempt.keys()
        assert attempt["url"] == url
        assert isinstance(attempt["durationMs"], int) and 0 <= attempt["durationMs"] < 2000
        # The headers logged are the headers sent, signatures included, and they verify.
        for name in SIGNATURE_HEADERS:
            assert attempt["requestHeaders"][name] == got.headers[name], name
        assert attempt["requestHeaders"]["webhook-id"] == sent["messageId"]
        assert verify(got.body, attempt["requestHeaders"], hook["secret"]).webhook_id
        assert lower(attempt["responseHeaders"])["x-receiver"] == "test"

    # The body is kept up to 16 KiB; the rest of the 100 KiB is dropped.
    assert log[0]["responseBody"] == big[: 16 * 1024].decode()
    assert lower(log[0]["responseHeaders"])["content-length"] == str(len(big))
    assert log[2]["responseBody"] == "thanks"


async def test_a_binary_response_body_is_logged(api: Api, receiver: Receiver) -> None:
    switch = Switch(200, b"ok\x00\xff\xfe binary \x00 tail")
    hook = await api.webhook(receiver.on("/hook", switch))
    await send_test_event(api)
    await receiver.wait_for(1, "/hook")
    await settled(api, hook["id"], "succeeded", 1, timeout=5)
    (listed,) = await deliveries(api, hook["id"])
    (attempt,) = (await delivery(api, hook["id"], listed["id"]))["attemptLog"]
    assert attempt["statusCode"] == 200
    assert attempt["responseBody"].startswith("ok")
    assert attempt["responseBody"].endswith("tail")


async def test_a_delivery_is_found_only_under_its_own_webhook(api: Api, receiver: Receiver) -> None:
    mine = await api.webhook(receiver.url + "/mine")
    other = await api.webhook(receiver.url + "/other")
    await send_test_event(api)
    await settled(api, mine["id"], "succeeded", 1)
    await settled(api, other["id"], "succeeded", 1)
    (my_delivery,) = await deliveries(api, mine["id"])
    (other_delivery,) = await deliveries(api, other["id"])
    assert my_delivery["id"] != other_delivery["id"]

    assert (await delivery(api, mine["id"], my_delivery["id"]))["webhookId"] == mine["id"]
    for method, suffix in (("GET", ""), ("POST", "/retry")):
        path = f"/api/webhooks/{mine['id']}/deliveries/{other_delivery['id']}{suffix}"
        status, body = await api.call(method, path)
        assert (status, body["status"]) == (404, "fail"), (method, body)
        assert str(other_delivery["id"]) in body["data"]["message"]
    assert len(receiver.at("/other")) == 1


# --- resending ---------------------------------------------------------------------------------


async def test_retry_resends_a_finished_delivery_with_the_same_webhook_id(
    api_factory: ApiFactory, receiver: Receiver
) -> None:
    api = await api_factory(retry_schedule=FAST)
    healthy = await api.webhook(receiver.url + "/healthy")
    broken_switch = Switch(500)
    broken = await api.webhook(receiver.on("/broken", broken_switch))
    sent = await send_test_event(api)
    await settled(api, healthy["id"], "succeeded", 1)
    await settled(api, broken["id"], "failed", 1)
    (done,) = await deliveries(api, healthy["id"])
    (failed,) = await deliveries(api, broken["id"])

    again = await api.ok("POST", f"/api/webhooks/{healthy['id']}/deliveries/{done['id']}/retry")
    assert (again["id"], again["status"]) == (done["id"], "pending")
    first, second = await receiver.wait_for(2, "/healthy")
    assert second.body == first.body
    assert second.headers["webhook-id"] == first.headers["webhook-id"] == sent["messageId"]
    verify(
        second.body,
        {MILLICAST_HEADER: second.headers["X-Millicast-Signature"]},
        healthy["secret"],
        platform=True,
    )
    await settled(api, healthy["id"], "succeeded", 1)
    shown = await delivery(api, healthy["id"], done["id"])
    assert (shown["status"], shown["attempts"], len(shown["attemptLog"])) == ("succeeded", 2, 2)

    broken_switch.status = 200
    await api.ok("POST", f"/api/webhooks/{broken['id']}/deliveries/{failed['id']}/retry")
    got = await receiver.wait_for(4, "/broken")
    assert {r.headers["webhook-id"] for r in got} == {sent["messageId"]}
    await settled(api, broken["id"], "succeeded", 1)
    shown = await delivery(api, broken["id"], failed["id"])
    assert [a["statusCode"] for a in shown["attemptLog"]] == [500, 500, 500, 200]
    assert shown["attempts"] == 4


async def test_retry_of_a_pending_delivery_is_409(api_factory: ApiFactory) -> None:
    api = await api_factory(dispatch=False)
    hook = await api.webhook("http://127.0.0.1:9/hook")
    await send_test_event(api)
    (pending,) = await deliveries(api, hook["id"])
    assert pending["status"] == "pending"

    status, body = await api.call(
        "POST", f"/api/webhooks/{hook['id']}/deliveries/{pending['id']}/retry"
    )
    assert (status, body["status"]) == (409, "fail"), body
    assert "pending" in body["data"]["message"]
    assert (await deliveries(api, hook["id"]))[0] == pending


# --- recover -----------------------------------------------------------------------------------


async def test_recover_requeues_only_the_failed_deliveries_since_a_time(
    api_factory: ApiFactory, receiver: Receiver
) -> None:
    api = await api_factory(retry_schedule=FAST)
    switch = Switch(500)
    hook = await api.webhook(receiver.on("/flaky", switch))
    # Another webhook's failures are not this webhook's to recover.
    bystander = await api.webhook(receiver.on("/down", Switch(503)))

    before = await send_test_event(api)
    await settled(api, hook["id"], "failed", 1)
    after = await send_test_event(api)
    await settled(api, hook["id"], "failed", 2)
    await settled(api, bystander["id"], "failed", 2)
    switch.status = 200
    fine = await send_test_event(api)
    await settled(api, hook["id"], "succeeded", 1)
    await settled(api, bystander["id"], "failed", 3)

    by_message = {d["messageId"]: d for d in await deliveries(api, hook["id"])}
    old, new, good = (by_message[s["messageId"]] for s in (before, after, fine))
    created = [datetime.fromisoformat(d["createdAt"]) for d in (old, new)]
    since = created[0] + (created[1] - created[0]) / 2
    # Any zone will do: the time is the instant it names.
    since_text = since.astimezone(timezone(timedelta(hours=-5))).isoformat()

    path = f"/api/webhooks/{hook['id']}/recover"
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert await api.ok("POST", path, {"since": future}) == {"requeued": 0}
    received = len(receiver.at("/flaky"))
    assert await api.ok("POST", path, {"since": since_text}) == {"requeued": 1}

    got = await receiver.wait_for(received + 1, "/flaky")
    assert got[-1].headers["webhook-id"] == after["messageId"]
    await settled(api, hook["id"], "succeeded", 2)
    states = {d["id"]: d for d in await deliveries(api, hook["id"])}
    assert (states[old["id"]]["status"], states[old["id"]]["attempts"]) == ("failed", 3)
    assert (states[new["id"]]["status"], states[new["id"]]["attempts"]) == ("succeeded", 4)
    assert (states[good["id"]]["status"], states[good["id"]]["attempts"]) == ("succeeded", 1)
    assert [d["status"] for d in await deliveries(api, bystander["id"])] == ["failed"] * 3
    assert len(receiver.at("/flaky")) == received + 1

    # Recovering again finds nothing failed since then.
    assert await api.ok("POST", path, {"since": since_text}) == {"requeued": 0}
