"""The webhooks REST API of reference §3, field for field, against a real server on each database:
create/read/update/delete, paging, test events through a real receiver, auth on every route, and
the SSRF guard on the URLs a webhook may be given.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import update

from mediahooks.clock import now_ms
from mediahooks.store.schema import webhooks as webhooks_table
from support.envelope import assert_fail
from support.receiver import Receiver
from support.server import API_SECRET, Api, ApiFactory, api_routes
from support.signatures import assert_signed
from support.targets import EMBEDDING_URLS, PUBLIC_EMBEDDING_URLS

FLAGS = (
    "isFeedHooks",
    "isMediaHooks",
    "isRecordingHooks",
    "isThumbnailHooks",
    "isTranscoderHooks",
    "isViewerConnectionHooks",
)
FIELDS = {"id", "url", "secret", *FLAGS, "filter", "disabled"}
PUBLIC_URL = "https://1.1.1.1/hooks"


def assert_secret(secret: Any) -> None:
    assert isinstance(secret, str)
    assert len(base64.b64decode(secret, validate=True)) == 32


async def set_disabled(api: Api, webhook_id: int, until: int, reason: str) -> None:
    async with api.service.db.transaction() as conn:
        await conn.execute(
            update(webhooks_table)
            .where(webhooks_table.c.id == webhook_id)
            .values(disabled_until=until, disabled_reason=reason)
        )


# --- create, read, update, delete --------------------------------------------------------------


async def test_create_answers_the_platform_fields_with_defaults(api: Api) -> None:
    created = await api.ok("POST", "/api/webhooks", {"url": PUBLIC_URL, "isFeedHooks": True})

    assert set(created) == FIELDS
    assert type(created["id"]) is int and created["id"] >= 1
    assert created["url"] == PUBLIC_URL
    assert_secret(created["secret"])
    assert created["isFeedHooks"] is True
    assert all(created[flag] is False for flag in FLAGS if flag != "isFeedHooks"), created
    assert created["filter"] is None
    assert created["disabled"] is None


async def test_create_takes_every_flag_and_a_filter(api: Api) -> None:
    first = await api.ok("POST", "/api/webhooks", {"url": PUBLIC_URL, "isFeedHooks": False})
    body = {"url": PUBLIC_URL + "/all", **dict.fromkeys(FLAGS, True), "filter": "^cam-[0-9]+$"}
    created = await api.ok("POST", "/api/webhooks", body)

    assert {k: created[k] for k in body} == body
    assert created["id"] > first["id"]
    assert created["secret"] != first["secret"]
    assert all(first[flag] is False for flag in FLAGS)


async def test_a_null_optional_field_on_create_takes_its_default(api: Api) -> None:
    body = {"url": PUBLIC_URL, "isFeedHooks": True, "isMediaHooks": None, "filter": None}
    created = await api.ok("POST", "/api/webhooks", body)
    assert created["isMediaHooks"] is False
    assert created["filter"] is None


async def test_read_answers_what_create_answered(api: Api) -> None:
    created = await api.webhook(PUBLIC_URL, filter="live")
    assert await api.ok("GET", f"/api/webhooks/{created['id']}") == created


async def test_update_changes_any_field_and_only_that_field(api: Api) -> None:
    hook = await api.webhook(PUBLIC_URL)
    path = f"/api/webhooks/{hook['id']}"
    changes: list[dict[str, Any]] = [
        {"url": "https://1.0.0.1/other"},
        *({flag: not hook[flag]} for flag in FLAGS),
        {"filter": "^studio-"},
        {"url": "https://8.8.8.8/again", "isMediaHooks": True, "filter": "b"},
    ]
    expected = dict(hook)
    for change in changes:
        expected.update(change)
        assert await api.ok("PUT", path, change) == expected, change
        assert await api.ok("GET", path) == expected, change
    assert expected["secret"] == hook["secret"]


async def test_filter_is_cleared_with_null_and_other_nulls_change_nothing(api: Api) -> None:
    hook = await api.webhook(PUBLIC_URL, filter="^cam")
    path = f"/api/webhooks/{hook['id']}"

    unchanged = await api.ok("PUT", path, {"url": None, "isMediaHooks": None})
    assert unchanged == hook
    assert await api.ok("PUT", path, {}) == hook

    cleared = await api.ok("PUT", path, {"filter": None})
    assert cleared == {**hook, "filter": None}
    assert (await api.ok("GET", path))["filter"] is None


async def test_refresh_secret_makes_a_new_secret(api: Api) -> None:
    hook = await api.webhook(PUBLIC_URL)
    path = f"/api/webhooks/{hook['id']}"

    assert await api.ok("PUT", path, {"refreshSecret": False}) == hook
    refreshed = await api.ok("PUT", path, {"refreshSecret": True})
    assert_secret(refreshed["secret"])
    assert refreshed["secret"] != hook["secret"]
    assert refreshed == {**hook, "secret": refreshed["secret"]}
    assert (await api.ok("GET", path))["secret"] == refreshed["secret"]

    again = await api.ok("PUT", path, {"refreshSecret": True, "isFeedHooks": True})
    assert again["secret"] not in (hook["secret"], refreshed["secret"])
    assert again["isFeedHooks"] is True


async def test_re_enable_lifts_a_disable(api: Api) -> None:
    hook = await api.webhook(PUBLIC_URL)
    path = f"/api/webhooks/{hook['id']}"
    until = now_ms() + 3_600_000
    await set_disabled(api, hook["id"], until, "every delivery failed for too long")

    disabled = (await api.ok("GET", path))["disabled"]
    assert disabled["reason"] == "every delivery failed for too long"
    shown = datetime.fromisoformat(disabled["until"])
    assert shown.utcoffset() == timedelta(0)
    assert abs(shown.timestamp() * 1000 - until) < 1000
    assert (await api.ok("GET", "/api/webhooks/list"))[0]["disabled"] == disabled

    # Any other update leaves the disable in place; reEnable lifts it.
    assert (await api.ok("PUT", path, {"isFeedHooks": True}))["disabled"] == disabled
    enabled = await api.ok("PUT", path, {"reEnable": True})
    assert enabled["disabled"] is None
    assert enabled == {**hook, "isFeedHooks": True}
    assert (await api.ok("GET", path))["disabled"] is None


async def test_a_disable_that_has_run_out_reads_as_null(api: Api) -> None:
    hook = await api.webhook(PUBLIC_URL)
    await set_disabled(api, hook["id"], now_ms() - 1000, "long ago")
    assert (await api.ok("GET", f"/api/webhooks/{hook['id']}"))["disabled"] is None


async def test_delete_answers_the_webhook_then_it_is_gone(api: Api) -> None:
    keep = await api.webhook(PUBLIC_URL)
    gone = await api.webhook(PUBLIC_URL + "/gone")
    path = f"/api/webhooks/{gone['id']}"

    # The platform answers the webhook deleted (its `SuccessWebhookModel`).
    assert await api.ok("DELETE", path) == gone

    for method, body in (("GET", None), ("PUT", {"isFeedHooks": True}), ("DELETE", None)):
        status, answer = await api.call(method, path, body)
        assert str(gone["id"]) in assert_fail(status, answer, 404), method
    assert [h["id"] for h in await api.ok("GET", "/api/webhooks/list")] == [keep["id"]]
    assert await api.ok("GET", f"/api/webhooks/{keep['id']}") == keep


# --- listing -----------------------------------------------------------------------------------


async def test_list_pages_by_id_with_an_exclusive_starting_id(api: Api) -> None:
    ids = [(await api.webhook(f"{PUBLIC_URL}/{n}"))["id"] for n in range(12)]
    assert ids == sorted(ids)

    async def listed(query: str = "") -> list[int]:
        return [h["id"] for h in await api.ok("GET", "/api/webhooks/list" + query)]

    assert await listed() == ids[:10]  # itemCount defaults to 10, ascending
    assert await listed("?itemCount=100") == ids
    assert await listed("?itemCount=3") == ids[:3]
    assert await listed(f"?startingId={ids[2]}&itemCount=3") == ids[3:6]
    assert await listed(f"?startingId={ids[-1]}") == []
    assert await listed("?startingId=0&itemCount=1") == ids[:1]
    assert await listed("?isDescending=true&itemCount=3") == ids[::-1][:3]
    assert await listed(f"?isDescending=true&startingId={ids[3]}") == ids[2::-1]
    assert await listed(f"?isDescending=true&startingId={ids[0]}") == []
    assert await listed("?isDescending=false&itemCount=2") == ids[:2]

    whole = await api.ok("GET", "/api/webhooks/list?itemCount=1")
    assert whole == [await api.ok("GET", f"/api/webhooks/{ids[0]}")]


# --- test events -------------------------------------------------------------------------------


async def test_test_events_reach_only_the_webhooks_of_their_type(
    api: Api, receiver: Receiver
) -> None:
    media = await api.webhook(receiver.url + "/media", filter="^never-matches$")
    feeds = await api.webhook(receiver.url + "/feeds", isFeedHooks=True, isMediaHooks=False)
    both = await api.webhook(receiver.url + "/both", isFeedHooks=True)
    other = await api.webhook(
        receiver.url + "/other", isMediaHooks=False, isTranscoderHooks=True, isThumbnailHooks=True
    )

    sent_media = await api.send_test("Media")
    assert sent_media["webhookIds"] == [media["id"], both["id"]]
    sent_feeds = await api.send_test("Feeds")
    assert sent_feeds["webhookIds"] == [feeds["id"], both["id"]]

    (got,) = await receiver.wait_for(1, "/media")
    assert (got.json["type"], got.json["event"]) == ("media", "completed")
    assert_signed(got, media["secret"], sent_media["messageId"])

    (got,) = await receiver.wait_for(1, "/feeds")
    assert (got.json["type"], got.json["event"]) == ("feeds", "started")
    assert_signed(got, feeds["secret"], sent_feeds["messageId"])

    both_got = await receiver.wait_for(2, "/both")
    by_type = {r.json["type"]: r for r in both_got}
    assert set(by_type) == {"media", "feeds"}
    assert_signed(by_type["media"], both["secret"], sent_media["messageId"])
    assert_signed(by_type["feeds"], both["secret"], sent_feeds["messageId"])

    assert await api.ok("GET", f"/api/webhooks/{other['id']}/deliveries") == []
    assert receiver.at("/other") == []


async def test_a_test_event_of_an_unknown_hook_type_is_refused(api: Api) -> None:
    hook = await api.webhook(PUBLIC_URL, **dict.fromkeys(FLAGS, True))
    for hook_type in ("Bogus", "Medias", "viewer"):
        status, body = await api.call("POST", f"/api/webhooks/test/{hook_type}")
        message = assert_fail(status, body, 400)
        assert hook_type in message and "ViewerConnection" in message, message
        assert "webhookType" in body["data"]["errors"], body
    assert await api.ok("GET", f"/api/webhooks/{hook['id']}/deliveries") == []


# --- paths and fields --------------------------------------------------------------------------


async def test_paths_answer_with_or_without_a_trailing_slash(api: Api, receiver: Receiver) -> None:
    body = {"url": receiver.url + "/hook", "isFeedHooks": True}
    created = await api.ok("POST", "/api/webhooks/", body)
    path = f"/api/webhooks/{created['id']}"
    assert await api.ok("GET", path + "/") == created
    updated = await api.ok("PUT", path + "/", {"filter": "x"})
    assert updated["filter"] == "x"
    assert await api.ok("GET", "/api/webhooks/list/") == [updated]
    assert await api.ok("GET", "/api/webhooks/list/?itemCount=5") == [updated]
    assert await api.ok("POST", "/api/webhooks/test/Feeds/") is True
    assert len(await api.ok("GET", path + "/deliveries/")) == 1
    await receiver.wait_for(1, "/hook")
    assert await api.ok("DELETE", path + "/") == updated


async def test_unknown_request_fields_are_ignored(api: Api) -> None:
    body = {
        "url": PUBLIC_URL,
        "isFeedHooks": True,
        "isSomethingNewHooks": True,
        "description": "from an older client",
        "nested": {"a": [1, 2]},
    }
    created = await api.ok("POST", "/api/webhooks", body)
    assert set(created) == FIELDS

    updated = await api.ok(
        "PUT", f"/api/webhooks/{created['id']}", {"isMediaHooks": True, "unknown": 1}
    )
    assert updated == {**created, "isMediaHooks": True}


async def test_openapi_and_docs_answer(api: Api) -> None:
    async with api.session.get(api.url + "/openapi.json") as resp:
        assert resp.status == 200
        spec = await resp.json()
    assert "/api/webhooks" in spec["paths"]
    assert "/api/webhooks/{id}/deliveries" in spec["paths"]
    async with api.session.get(api.url + "/docs") as resp:
        assert resp.status == 200
        assert "text/html" in resp.headers["Content-Type"]


# --- auth --------------------------------------------------------------------------------------


AUTHORIZATIONS = {
    "no header": None,
    "wrong secret": "Bearer wrong-secret",
    "longer secret": f"Bearer {API_SECRET}x",
    "empty secret": "Bearer ",
    "Basic scheme": f"Basic {base64.b64encode(API_SECRET.encode()).decode()}",
    "Token scheme": f"Token {API_SECRET}",
    "no scheme": API_SECRET,
}


async def test_every_api_route_needs_the_api_secret(api: Api, receiver: Receiver) -> None:
    hook = await api.webhook(receiver.url + "/hook")
    for name, authorization in AUTHORIZATIONS.items():
        headers = {} if authorization is None else {"Authorization": authorization}
        for method, path in api_routes():
            status, body = await api.call(method, path, None, auth=False, headers=dict(headers))
            assert status == 401, (name, method, path, status, body)
            assert_fail(status, body, 401)
    # Nothing was done on the way: the webhook is intact and no event was sent.
    assert await api.ok("GET", f"/api/webhooks/{hook['id']}") == hook
    assert await api.ok("GET", f"/api/webhooks/{hook['id']}/deliveries") == []
    assert receiver.received == []


# --- SSRF --------------------------------------------------------------------------------------

PRIVATE_URLS = [
    "http://127.0.0.1:8080/hook",
    "http://127.1/",
    "http://2130706433/",
    "http://localhost/hook",
    "http://10.0.0.1/",
    "http://172.16.5.4/",
    "http://192.168.1.10/",
    "http://100.64.0.1/",
    "http://0.0.0.0/",
    "http://169.254.10.20/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/",
    "http://[fe80::1]/",
    "http://[fd00::1]/",
    "http://[fd00:ec2::254]/",
    "http://[::ffff:10.0.0.1]/",
    "http://[::ffff:127.0.0.1]/",
    "https://[::ffff:169.254.169.254]:8443/",
]


def assert_refused_target(status: int, body: dict[str, Any], url: str) -> None:
    message = assert_fail(status, body, 400)
    assert "MEDIAHOOKS_ALLOW_PRIVATE_TARGETS" in message, (url, message)
    assert "url" in body["data"]["errors"], (url, body)


async def test_private_targets_are_refused_without_the_allow_list(
    api_factory: ApiFactory,
) -> None:
    api = await api_factory(allow_private_targets="")
    hook = await api.webhook(PUBLIC_URL)
    for url in PRIVATE_URLS:
        status, body = await api.call("POST", "/api/webhooks", {"url": url, "isFeedHooks": True})
        assert_refused_target(status, body, url)
        status, body = await api.call("PUT", f"/api/webhooks/{hook['id']}", {"url": url})
        assert_refused_target(status, body, url)
    assert await api.ok("GET", "/api/webhooks/list") == [hook]


async def test_ipv6_forms_that_embed_a_private_ipv4_are_refused(api_factory: ApiFactory) -> None:
    api = await api_factory(allow_private_targets="")
    hook = await api.webhook(PUBLIC_URL)
    for url, reason in EMBEDDING_URLS:
        status, body = await api.call("POST", "/api/webhooks", {"url": url, "isFeedHooks": True})
        assert_refused_target(status, body, url)
        assert reason in body["data"]["message"], (url, body)
        status, body = await api.call("PUT", f"/api/webhooks/{hook['id']}", {"url": url})
        assert_refused_target(status, body, url)
    assert await api.ok("GET", "/api/webhooks/list") == [hook]
    # A translator's address for a public IPv4 address is as public as that address.
    for url in PUBLIC_EMBEDDING_URLS:
        assert (await api.webhook(url))["url"] == url


async def test_an_allow_list_admits_its_networks_and_no_others(
    api_factory: ApiFactory, receiver: Receiver
) -> None:
    api = await api_factory(allow_private_targets="127.0.0.0/8")
    hook = await api.webhook(receiver.url + "/allowed")
    sent = await api.send_test("Media")
    (got,) = await receiver.wait_for(1, "/allowed")
    assert_signed(got, hook["secret"], sent["messageId"])

    port = receiver.url.rsplit(":", 1)[1]
    moved = await api.ok("PUT", f"/api/webhooks/{hook['id']}", {"url": f"http://127.0.0.2:{port}/"})
    assert moved["url"] == f"http://127.0.0.2:{port}/"

    for url in ("http://10.0.0.1/", "http://[::1]/", "http://169.254.169.254/"):
        status, body = await api.call("POST", "/api/webhooks", {"url": url, "isFeedHooks": True})
        assert_refused_target(status, body, url)
        status, body = await api.call("PUT", f"/api/webhooks/{hook['id']}", {"url": url})
        assert_refused_target(status, body, url)
    assert await api.ok("GET", f"/api/webhooks/{hook['id']}") == moved


async def test_until_is_an_iso_utc_time(api: Api) -> None:
    # The `until` of a disable is written like every time of the API: ISO 8601 with a Z.
    hook = await api.webhook(PUBLIC_URL)
    until = int(datetime(2031, 5, 6, 7, 8, 9, 123000, tzinfo=UTC).timestamp() * 1000)
    await set_disabled(api, hook["id"], until, "testing")
    disabled = (await api.ok("GET", f"/api/webhooks/{hook['id']}"))["disabled"]
    assert disabled == {"until": "2031-05-06T07:08:09.123Z", "reason": "testing"}
