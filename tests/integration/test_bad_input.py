"""Bad input on every endpoint: a 4xx answer in the `fail` envelope whose message names what to
fix, never a 500, and nothing changed on the way.

These requests change no state, so one server per database serves the whole module.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from mediahooks import server
from mediahooks.service import Service
from support.databases import fresh_postgres_database
from support.server import API_SECRET, DATABASES, Api, settings_for

pytestmark = pytest.mark.asyncio(loop_scope="module")

HOOK_URL = "http://127.0.0.1:9/hook"
LIMIT = 64 * 1024


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=DATABASES)
async def api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Api]:
    """A server over a fresh database of each kind, shared by the module's tests.

    Without dispatch: nothing here should ever be delivered. Connections are not reused, so one
    request that breaks its connection cannot fail the next test.
    """
    async with AsyncExitStack() as stack:
        tmp = tmp_path_factory.mktemp(f"bad-input-{request.param}")
        if request.param == "sqlite":
            url = f"sqlite:///{tmp / 'test.db'}"
        else:
            url = await stack.enter_async_context(fresh_postgres_database())
        service = Service(settings_for(url, tmp / "data"))
        await service.open(dispatch=False)
        stack.push_async_callback(service.close)
        running = await server.start(service, "127.0.0.1", 0)
        stack.push_async_callback(running.stop)
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True))
        stack.push_async_callback(session.close)
        yield Api(running.url, service, session, running)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def hook(api: Api) -> dict[str, Any]:
    """A webhook that the bad requests aim at; it must come out of every test unchanged."""
    return await api.webhook(HOOK_URL)


@pytest_asyncio.fixture(loop_scope="module", autouse=True)
async def nothing_changes(api: Api, hook: dict[str, Any]) -> AsyncIterator[None]:
    before = await api.ok("GET", "/api/webhooks/list?itemCount=100")
    yield
    assert await api.ok("GET", "/api/webhooks/list?itemCount=100") == before
    assert await api.ok("GET", f"/api/webhooks/{hook['id']}/deliveries") == []


async def send(
    api: Api,
    method: str,
    path: str,
    data: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """``data``: bytes as they are, an async iterator sent chunked, anything else as JSON."""
    sent = {"Authorization": f"Bearer {API_SECRET}", **(headers or {})}
    if data is not None and not isinstance(data, bytes) and not hasattr(data, "__aiter__"):
        data = json.dumps(data).encode()
        sent.setdefault("Content-Type", "application/json")
    async with api.session.request(method, api.url + path, data=data, headers=sent) as resp:
        text = await resp.text()
        try:
            return resp.status, json.loads(text)
        except ValueError:
            return resp.status, text


def assert_rejected(status: int, body: Any, expected: int, *fields: str) -> None:
    """A `fail` envelope with ``expected``; the message and the errors name each of ``fields``."""
    assert 400 <= expected < 500
    assert status == expected, (status, body)
    assert isinstance(body, dict) and body.get("status") == "fail", body
    assert set(body["data"]) == {"message", "errors"}, body
    message, errors = body["data"]["message"], body["data"]["errors"]
    assert isinstance(message, str) and len(message) >= 10, body
    assert isinstance(errors, dict), body
    for field in fields:
        assert field in message, (field, message)
        named = [key for key in errors if key == field or key.startswith(field + ".")]
        assert named, (field, errors)
        assert all(isinstance(m, str) and m for key in named for m in errors[key]), errors


def body_endpoints(hook: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        ("POST", "/api/webhooks"),
        ("PUT", f"/api/webhooks/{hook['id']}"),
        ("POST", f"/api/webhooks/{hook['id']}/recover"),
    ]


# --- bodies that are not a JSON object ---------------------------------------------------------

NOT_AN_OBJECT = [
    pytest.param(b'{"url": "http://127.0.0.1/", ', {}, id="malformed JSON"),
    pytest.param(b"{'url': 'http://127.0.0.1/'}", {}, id="single quotes"),
    pytest.param(b'{"isFeedHooks": true} trailing', {}, id="trailing garbage"),
    pytest.param(b'[{"url": "http://127.0.0.1/", "isFeedHooks": true}]', {}, id="array"),
    pytest.param(b'"http://127.0.0.1/"', {}, id="string"),
    pytest.param(b"12", {}, id="number"),
    pytest.param(b"true", {}, id="boolean"),
    pytest.param(b"null", {}, id="null"),
    pytest.param(b"", {}, id="empty"),
    pytest.param(b'{"url": "\xff\xfe"}', {}, id="not UTF-8"),
    pytest.param(b"[" * 5000 + b"]" * 5000, {}, id="nested too deeply"),
    pytest.param(
        b"url=http%3A%2F%2F127.0.0.1%2F&isFeedHooks=true",
        {"Content-Type": "application/x-www-form-urlencoded"},
        id="form encoded",
    ),
    pytest.param(
        b'{"url": "http://127.0.0.1/", "isFeedHooks": true}',
        {"Content-Type": "text/plain"},
        id="JSON sent as text",
    ),
]


@pytest.mark.parametrize(("data", "headers"), NOT_AN_OBJECT)
async def test_a_body_that_is_not_a_json_object(
    api: Api, hook: dict[str, Any], data: bytes, headers: dict[str, str]
) -> None:
    for method, path in body_endpoints(hook):
        status, body = await send(
            api, method, path, data, {"Content-Type": "application/json", **headers}
        )
        assert_rejected(status, body, 400, "body")


# --- creating ----------------------------------------------------------------------------------


def create(**fields: Any) -> dict[str, Any]:
    return {"url": HOOK_URL, "isFeedHooks": True, **fields}


CREATE_CASES = [
    pytest.param({"isFeedHooks": True}, ["url"], id="url missing"),
    pytest.param({"url": HOOK_URL}, ["isFeedHooks"], id="isFeedHooks missing"),
    pytest.param({}, ["url", "isFeedHooks"], id="both missing"),
    pytest.param(create(url=None), ["url"], id="url null"),
    pytest.param(create(url=8080), ["url"], id="url a number"),
    pytest.param(create(url=[HOOK_URL]), ["url"], id="url a list"),
    pytest.param(create(url={"href": HOOK_URL}), ["url"], id="url an object"),
    pytest.param(create(url=""), ["url"], id="url empty"),
    pytest.param(create(url=HOOK_URL + "?" + "a" * 2048), ["url"], id="url over 2048"),
    pytest.param(create(isFeedHooks="true"), ["isFeedHooks"], id="bool as string"),
    pytest.param(create(isFeedHooks=1), ["isFeedHooks"], id="bool as number"),
    pytest.param(create(isFeedHooks=None), ["isFeedHooks"], id="required bool null"),
    pytest.param(create(isMediaHooks="yes"), ["isMediaHooks"], id="isMediaHooks string"),
    pytest.param(create(isRecordingHooks=[]), ["isRecordingHooks"], id="isRecordingHooks list"),
    pytest.param(create(isThumbnailHooks=0), ["isThumbnailHooks"], id="isThumbnailHooks 0"),
    pytest.param(create(isTranscoderHooks="false"), ["isTranscoderHooks"], id="transcoder str"),
    pytest.param(
        create(isViewerConnectionHooks={}), ["isViewerConnectionHooks"], id="viewer object"
    ),
    pytest.param(create(filter=""), ["filter"], id="filter empty"),
    pytest.param(create(filter="a" * 129), ["filter"], id="filter over 128"),
    pytest.param(create(filter=42), ["filter"], id="filter a number"),
    pytest.param(create(filter="("), ["filter"], id="regex open group"),
    pytest.param(create(filter="[a-"), ["filter"], id="regex open class"),
    pytest.param(create(filter="*cam"), ["filter"], id="regex nothing to repeat"),
    pytest.param(create(filter="(?P<name"), ["filter"], id="regex open name"),
    pytest.param(create(filter="cam\\"), ["filter"], id="regex trailing backslash"),
    pytest.param(create(filter="a{2,1}"), ["filter"], id="regex bad range"),
    pytest.param(create(url="ftp://127.0.0.1/hook"), ["url"], id="ftp"),
    pytest.param(create(url="javascript:alert(1)"), ["url"], id="javascript"),
    pytest.param(create(url="file:///etc/passwd"), ["url"], id="file"),
    pytest.param(create(url="mailto:ops@example.com"), ["url"], id="mailto"),
    pytest.param(create(url="127.0.0.1/hook"), ["url"], id="no scheme"),
    pytest.param(create(url="//127.0.0.1/hook"), ["url"], id="scheme relative"),
    pytest.param(create(url="http://"), ["url"], id="no host"),
    pytest.param(create(url="http:///hook"), ["url"], id="empty host"),
    pytest.param(create(url="http://user:pass@127.0.0.1/"), ["url"], id="user and password"),
    pytest.param(create(url="https://token@127.0.0.1/"), ["url"], id="user only"),
    pytest.param(create(url="http://:secret@127.0.0.1/"), ["url"], id="password only"),
    pytest.param(create(url="http://127.0.0.1:99999/"), ["url"], id="port out of range"),
    pytest.param(create(url="http://127.0.0.1:http/"), ["url"], id="port not a number"),
    pytest.param(create(url="http://[::1/"), ["url"], id="broken IPv6"),
    pytest.param(create(url="http://" + "a" * 64 + ".example/"), ["url"], id="label over 63"),
    pytest.param(create(url="http://cam..example/"), ["url"], id="empty label"),
    pytest.param(
        {"url": 1, "isFeedHooks": "yes", "filter": "("},
        ["url", "isFeedHooks", "filter"],
        id="three fields at once",
    ),
]


@pytest.mark.parametrize(("body", "fields"), CREATE_CASES)
async def test_create_refuses(api: Api, body: dict[str, Any], fields: list[str]) -> None:
    status, answer = await send(api, "POST", "/api/webhooks", body)
    assert_rejected(status, answer, 400, *fields)


# --- updating ----------------------------------------------------------------------------------

UPDATE_CASES = [
    pytest.param({"url": 5}, ["url"], id="url a number"),
    pytest.param({"url": ""}, ["url"], id="url empty"),
    pytest.param({"url": "http://x/" + "a" * 2048}, ["url"], id="url over 2048"),
    pytest.param({"url": "gopher://127.0.0.1/"}, ["url"], id="gopher"),
    pytest.param({"url": "http://user:pw@127.0.0.1/"}, ["url"], id="credentials"),
    pytest.param({"url": "http://" + "b" * 70 + "/"}, ["url"], id="label over 63"),
    pytest.param({"isFeedHooks": "false"}, ["isFeedHooks"], id="bool as string"),
    pytest.param({"isMediaHooks": 1}, ["isMediaHooks"], id="bool as number"),
    pytest.param({"filter": ""}, ["filter"], id="filter empty"),
    pytest.param({"filter": "x" * 129}, ["filter"], id="filter over 128"),
    pytest.param({"filter": "(unclosed"}, ["filter"], id="invalid regex"),
    pytest.param({"filter": ["a"]}, ["filter"], id="filter a list"),
    pytest.param({"refreshSecret": "true"}, ["refreshSecret"], id="refreshSecret string"),
    pytest.param({"reEnable": 1}, ["reEnable"], id="reEnable number"),
    pytest.param(
        {"url": "ftp://x/", "filter": ")", "refreshSecret": True},
        ["url", "filter"],
        id="nothing applied when one field is bad",
    ),
]


@pytest.mark.parametrize(("body", "fields"), UPDATE_CASES)
async def test_update_refuses_and_changes_nothing(
    api: Api, hook: dict[str, Any], body: dict[str, Any], fields: list[str]
) -> None:
    status, answer = await send(api, "PUT", f"/api/webhooks/{hook['id']}", body)
    assert_rejected(status, answer, 400, *fields)
    assert await api.ok("GET", f"/api/webhooks/{hook['id']}") == hook


# --- recover -----------------------------------------------------------------------------------

RECOVER_CASES = [
    pytest.param({}, id="since missing"),
    pytest.param({"since": None}, id="since null"),
    pytest.param({"since": "yesterday"}, id="since words"),
    pytest.param({"since": "2026-13-01T00:00:00Z"}, id="month 13"),
    pytest.param({"since": "2026-01-01T25:00:00Z"}, id="hour 25"),
    pytest.param({"since": "2026-01-01T00:00:00+25:00"}, id="offset out of range"),
    pytest.param({"since": []}, id="since a list"),
    pytest.param({"since": {"date": "2026-01-01"}}, id="since an object"),
    pytest.param(b'{"since": 1e400}', id="since infinite"),
    pytest.param({"since": 10**30}, id="since far beyond 9999"),
]


@pytest.mark.parametrize("body", RECOVER_CASES)
async def test_recover_needs_a_parseable_since(
    api: Api, hook: dict[str, Any], body: dict[str, Any] | bytes
) -> None:
    headers = {"Content-Type": "application/json"}
    status, answer = await send(api, "POST", f"/api/webhooks/{hook['id']}/recover", body, headers)
    assert_rejected(status, answer, 400, "since")


# --- bodies over the limit ---------------------------------------------------------------------


async def chunks(total: int, size: int = 8192) -> AsyncIterator[bytes]:
    """``total`` bytes of a JSON-looking body, in pieces, with no Content-Length."""
    sent = 0
    while sent < total:
        piece = min(size, total - sent)
        yield b" " * piece
        sent += piece


@pytest.mark.parametrize("how", ["declared", "chunked"])
async def test_a_body_over_the_limit_is_413(api: Api, hook: dict[str, Any], how: str) -> None:
    assert api.service.settings.max_body_bytes == LIMIT
    endpoints = [
        *body_endpoints(hook),
        ("POST", "/api/webhooks/test/Media"),
        ("DELETE", f"/api/webhooks/{hook['id']}"),
    ]
    for method, path in endpoints:
        data: Any = b" " * (LIMIT + 1) if how == "declared" else chunks(2 * LIMIT)
        status, body = await send(api, method, path, data, {"Content-Type": "application/json"})
        assert_rejected(status, body, 413, "body")


async def test_a_body_of_exactly_the_limit_is_read(api: Api) -> None:
    status, body = await send(api, "POST", "/api/webhooks", b" " * LIMIT)
    # Read and judged on its content (it is not JSON), not refused for its size.
    assert_rejected(status, body, 400, "body")


# --- ids in paths ------------------------------------------------------------------------------

# Digits out of range are a bad id (400); anything else is no id at all, so no resource (404).
BAD_IDS = ["0", str(2**63), str(2**64), "9" * 40]
NOT_IDS = ["abc", "-1", "1.5", "1e3", "0x10"]

ID_ROUTES = [
    ("GET", "/api/webhooks/{id}", None),
    ("PUT", "/api/webhooks/{id}", {}),
    ("DELETE", "/api/webhooks/{id}", None),
    ("GET", "/api/webhooks/{id}/deliveries", None),
    ("POST", "/api/webhooks/{id}/recover", {"since": "2020-01-01T00:00:00Z"}),
    ("GET", "/api/webhooks/{id}/deliveries/{deliveryId}", None),
    ("POST", "/api/webhooks/{id}/deliveries/{deliveryId}/retry", None),
]


async def each_id_route(
    api: Api, hook: dict[str, Any], bad: str
) -> AsyncIterator[tuple[str, str, int, Any]]:
    """Every route that takes an id, with ``bad`` in each id parameter in turn: (the parameter,
    the path, the status, the answer)."""
    for method, template, body in ID_ROUTES:
        for param in ("id", "deliveryId"):
            if "{" + param + "}" not in template:
                continue
            values = {"id": str(hook["id"]), "deliveryId": "1", param: bad}
            path = template.format(**values)
            status, answer = await send(api, method, path, body)
            yield param, f"{method} {path}", status, answer


@pytest.mark.parametrize("bad", BAD_IDS)
async def test_an_id_that_is_not_a_positive_64_bit_integer(
    api: Api, hook: dict[str, Any], bad: str
) -> None:
    async for param, request, status, answer in each_id_route(api, hook, bad):
        assert status == 400, (request, status, answer)
        assert_rejected(status, answer, 400, param)


@pytest.mark.parametrize("bad", NOT_IDS)
async def test_a_path_that_is_not_an_id_is_no_resource(
    api: Api, hook: dict[str, Any], bad: str
) -> None:
    async for _, request, status, answer in each_id_route(api, hook, bad):
        assert status == 404, (request, status, answer)
        assert_rejected(status, answer, 404)


async def test_the_largest_id_is_valid_and_not_found(api: Api, hook: dict[str, Any]) -> None:
    largest = 2**63 - 1
    for method, template, body in ID_ROUTES:
        paths = {template.format(id=largest, deliveryId=1)}
        if "{deliveryId}" in template:
            paths.add(template.format(id=hook["id"], deliveryId=largest))
        for path in sorted(paths):
            status, answer = await send(api, method, path, body)
            assert status == 404, (method, path, status, answer)
            assert_rejected(status, answer, 404)


# --- query parameters --------------------------------------------------------------------------

QUERY_CASES = [
    pytest.param("list", "itemCount=0", "itemCount", id="list itemCount 0"),
    pytest.param("list", "itemCount=1000", "itemCount", id="list itemCount 1000"),
    pytest.param("list", "itemCount=-5", "itemCount", id="list itemCount negative"),
    pytest.param("list", "itemCount=ten", "itemCount", id="list itemCount words"),
    pytest.param("list", "itemCount=", "itemCount", id="list itemCount empty"),
    pytest.param("list", "startingId=-1", "startingId", id="list startingId -1"),
    pytest.param("list", "startingId=abc", "startingId", id="list startingId words"),
    pytest.param("list", f"startingId={2**64}", "startingId", id="list startingId huge"),
    pytest.param("list", "isDescending=maybe", "isDescending", id="list isDescending maybe"),
    pytest.param("list", "isDescending=2", "isDescending", id="list isDescending 2"),
    pytest.param("deliveries", "status=bogus", "status", id="deliveries status bogus"),
    pytest.param(
        "deliveries", "status=failed&status=bogus", "status", id="deliveries one status bad"
    ),
    pytest.param("deliveries", "itemCount=0", "itemCount", id="deliveries itemCount 0"),
    pytest.param("deliveries", "itemCount=1000", "itemCount", id="deliveries itemCount 1000"),
    pytest.param("deliveries", "startingId=-1", "startingId", id="deliveries startingId -1"),
    pytest.param(
        "deliveries", "isDescending=maybe", "isDescending", id="deliveries isDescending maybe"
    ),
]


@pytest.mark.parametrize(("resource", "query", "field"), QUERY_CASES)
async def test_a_bad_query_parameter(
    api: Api, hook: dict[str, Any], resource: str, query: str, field: str
) -> None:
    base = "/api/webhooks/list" if resource == "list" else f"/api/webhooks/{hook['id']}/deliveries"
    status, answer = await send(api, "GET", f"{base}?{query}")
    assert_rejected(status, answer, 400, field)


# --- the rest ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hook_type", "field"),
    [("Bogus", "webhookType"), ("x" * 65, "webhookType"), ("Media%00", "url")],
)
async def test_a_test_event_of_an_unknown_hook_type(api: Api, hook_type: str, field: str) -> None:
    status, answer = await send(api, "POST", f"/api/webhooks/test/{hook_type}")
    assert_rejected(status, answer, 400, field)


async def test_unknown_paths_and_methods_answer_in_the_envelope(
    api: Api, hook: dict[str, Any]
) -> None:
    for method, path, expected in (
        ("GET", "/api/nothing-here", 404),
        ("GET", f"/api/webhooks/{hook['id']}/nothing", 404),
        ("PATCH", f"/api/webhooks/{hook['id']}", 405),
        ("GET", "/api/webhooks", 405),
        ("DELETE", "/api/webhooks/list", 405),  # `list` is a resource of its own, not an id
    ):
        status, answer = await send(api, method, path)
        assert status == expected, (method, path, status, answer)
        assert_rejected(status, answer, expected)
