"""The publish token API as the platform documents it, on a real server, both databases: the
documented create and update examples, every field stored and echoed, the update verbs under
their v1 and v2 names, paging to the end, sorting, `list_by_name`, `active`, `active/all`,
`disable`, and bad input refused with a message."""

from __future__ import annotations

import random
import re
import time
from datetime import datetime
from typing import Any

import aiohttp
import pytest

from mediahooks.clock import from_iso
from support.envelope import assert_fail
from support.server import Api
from support.tokens import create, ts_segment

GEO = {"isEnabled": True, "clusters": ["phx-1", "sgp-1"]}
RESTREAM = [
    {"label": "rtmp restream config", "url": "rtmp://testrtmp.com", "key": "5ce4d599cfd4a4413"}
]

# The platform's own create examples (`POST /api/publish_token`: simple, regex, expiring).
CREATE_EXAMPLES: dict[str, dict[str, Any]] = {
    "simple": {
        "label": "simple_token",
        "streams": [{"streamName": "stream1", "isRegex": False}],
        "geoCascade": GEO,
        "restream": RESTREAM,
    },
    "regex": {
        "label": "regex_token",
        "streams": [
            {"streamName": "container1/.+", "isRegex": True},
            {"streamName": "master_stream", "isRegex": False},
        ],
        "geoCascade": GEO,
        "restream": RESTREAM,
    },
    "expiring": {
        "label": "temp_token",
        "expires": 3600,
        "streams": [{"streamName": "temp_stream", "isRegex": False}],
        "geoCascade": GEO,
        "restream": RESTREAM,
    },
}


async def put_segment(api: Api, token: str, stream: str) -> tuple[int, Any]:
    """A real HLS PUT of a real MPEG-TS segment."""
    async with (
        aiohttp.ClientSession() as s,
        s.put(
            f"{api.url}/ingest/{stream}/index0.ts",
            data=ts_segment(),
            headers={"Authorization": f"Bearer {token}"},
        ) as resp,
    ):
        return resp.status, await resp.json(content_type=None) if resp.status >= 400 else None


@pytest.mark.parametrize("example", sorted(CREATE_EXAMPLES))
async def test_the_documented_create_examples_are_stored_and_echoed(api: Api, example: str) -> None:
    body = CREATE_EXAMPLES[example]
    before = time.time()
    tok = await api.ok("POST", "/api/publish_token", body)
    assert isinstance(tok["id"], int) and re.fullmatch("[0-9a-f]{64}", tok["token"])
    assert tok["label"] == tok["name"] == body["label"]
    assert tok["streams"] == body["streams"]
    assert tok["geoCascade"] == GEO
    assert tok["restream"] == [{**RESTREAM[0], "enabled": True}]
    # The documented defaults.
    expected = {
        "isActive": True,
        "subscribeRequiresAuth": False,
        "record": False,
        "clip": False,
        "multisource": True,
        "enableThumbnails": False,
        "lowLatencyRtmp": True,
        "drm": False,
        "allowedOrigins": [],
        "allowedIpAddresses": [],
        "allowedCountries": [],
        "deniedCountries": [],
        "bindIpsOnUsage": None,
        "integrationId": "None",
    }
    assert {k: tok[k] for k in expected} == expected
    assert abs(from_iso_text(tok["addedOn"]) - before) < 60
    if "expires" in body:
        assert abs(from_iso_text(tok["expiresOn"]) - (before + 3600)) < 60
    else:
        assert tok["expiresOn"] is None
    assert await api.ok("GET", f"/api/publish_token/{tok['id']}") == tok


def from_iso_text(text: str) -> float:
    return from_iso(datetime.fromisoformat(text)) / 1000


EVERY_FIELD = {
    "label": "every field",
    "streams": [
        {"streamName": "cam", "isRegex": False},
        {"streamName": "cam-[0-9]+", "isRegex": True},
    ],
    "subscribeRequiresAuth": True,
    "record": True,
    "clip": False,
    "multisource": False,
    "enableThumbnails": True,
    "lowLatencyRtmp": False,
    "enableUTCInsertion": True,
    "drm": True,
    "priority": -3,
    "encoderProfileId": "profile-1",
    "geoCascade": {"isEnabled": False, "clusters": ["lon-1"]},
    "restream": [{"url": "rtmps://live.example.com/app", "key": "secret-key", "enabled": False}],
    "originCluster": "fra-1",
    "allowedCountries": ["us", "CA"],
    "allowedOrigins": ["*.example.com", "https://studio.example.org:8443"],
    "allowedIpAddresses": ["203.0.113.7", "198.51.100.0/24", "2001:db8::/32"],
    "expiresOn": "2099-01-02T03:04:05Z",
}


async def test_every_field_is_stored_and_echoed_by_create_read_list_and_update(api: Api) -> None:
    tok = await api.ok("POST", "/api/publish_token", EVERY_FIELD)
    expected = {
        **EVERY_FIELD,
        "restream": [
            {
                "url": "rtmps://live.example.com/app",
                "key": "secret-key",
                "label": None,
                "enabled": False,
            }
        ],
        "allowedCountries": ["US", "CA"],
        "expiresOn": "2099-01-02T03:04:05.000Z",
        "deniedCountries": [],
        "isActive": True,
    }
    assert {k: tok[k] for k in expected} == expected
    assert tok["effectiveSettings"] == {
        "originCluster": "fra-1",
        "allowedCountries": ["US", "CA"],
        "deniedCountries": [],
        "geoCascade": {"isEnabled": False, "clusters": ["lon-1"]},
        "enableUTCInsertion": True,
    }
    assert await api.ok("GET", f"/api/publish_token/{tok['id']}") == tok
    assert await api.ok("GET", "/api/publish_token/list?page=1&itemsOnPage=10") == [tok]
    # Updating one field leaves every other as it was.
    after = await api.ok("PUT", f"/api/publish_token/{tok['id']}", {"drm": False})
    assert after == {**tok, "drm": False}
    # bindIpsOnUsage excludes allowedIpAddresses: clear one, set the other.
    after = await api.ok(
        "PUT", f"/api/v2/publish_token/{tok['id']}", {"allowedIpAddresses": [], "bindIpsOnUsage": 2}
    )
    assert after["bindIpsOnUsage"] == 2 and after["allowedIpAddresses"] == []


async def test_the_documented_updates(api: Api) -> None:
    tok = await create(
        api,
        streams=[
            {"streamName": "myStreamName", "isRegex": False},
            {"streamName": "container1/.+", "isRegex": True},
        ],
    )
    # simple: a new label and a new token value; the old value stops working at once.
    simple = await api.ok(
        "PUT", f"/api/publish_token/{tok['id']}", {"label": "new_label_name", "refreshToken": True}
    )
    assert simple["label"] == simple["name"] == "new_label_name"
    assert simple["token"] != tok["token"] and re.fullmatch("[0-9a-f]{64}", simple["token"])
    status, body = await put_segment(api, tok["token"], "myStreamName")
    assert "unknown publish token" in assert_fail(status, body, 401)
    assert (await put_segment(api, simple["token"], "myStreamName"))[0] == 201
    # complex: streams added and removed, subscribeRequiresAuth, on the v2 route.
    complex_ = await api.ok(
        "PUT",
        f"/api/v2/publish_token/{tok['id']}",
        {
            "label": "new_regex_token_name",
            "subscribeRequiresAuth": True,
            "addTokenStreams": [
                {"streamName": "newStream1"},
                {"streamName": "special_regex_stream[0-9]+", "isRegex": True},
            ],
            "removeTokenStreams": ["container1/.+"],
        },
    )
    assert complex_["streams"] == [
        {"streamName": "myStreamName", "isRegex": False},
        {"streamName": "newStream1", "isRegex": False},
        {"streamName": "special_regex_stream[0-9]+", "isRegex": True},
    ]
    assert complex_["subscribeRequiresAuth"] is True and complex_["token"] == simple["token"]
    assert await api.ok("GET", f"/api/publish_token/{tok['id']}") == complex_
    # What ingest obeys: the added rule admits, the removed one no longer does.
    assert (await put_segment(api, simple["token"], "special_regex_stream7"))[0] == 201
    assert (await put_segment(api, simple["token"], "container1"))[0] == 403


async def test_streams_removed_the_way_the_platform_clients_send_them(api: Api) -> None:
    # The official Python and Node clients send {streamName, isRegex} objects, not names.
    tok = await create(
        api,
        streams=[
            {"streamName": "cam", "isRegex": False},
            {"streamName": "cam", "isRegex": True},
            {"streamName": "studio-[0-9]", "isRegex": True},
            {"streamName": "hall", "isRegex": False},
        ],
    )
    after = await api.ok(
        "PUT",
        f"/api/publish_token/{tok['id']}",
        {
            "removeTokenStreams": [
                {"streamName": "cam", "isRegex": True},
                {"streamName": "studio-[0-9]"},
                "hall",
            ]
        },
    )
    assert after["streams"] == [{"streamName": "cam", "isRegex": False}]
    status, body = await api.call(
        "PUT",
        f"/api/publish_token/{tok['id']}",
        {"removeTokenStreams": [{"streamName": "cam", "isRegex": True}]},
    )
    assert "does not have: ['cam']" in assert_fail(status, body, 400)


V1_V2 = [
    ("updateAllowedOrigins", "allowedOrigins", ["https://a.example.com"]),
    ("updateAllowedIpAddresses", "allowedIpAddresses", ["10.0.0.0/8", "::1"]),
    ("updateGeoCascade", "geoCascade", {"isEnabled": True, "clusters": ["iad-1"]}),
    ("updateOriginCluster", "originCluster", "iad-1"),
    ("updateAllowedCountries", "allowedCountries", ["DE"]),
    ("updateDeniedCountries", "deniedCountries", ["FR"]),
    ("updateBindIpsOnUsage", "bindIpsOnUsage", 3),
    (
        "updateRestream",
        "restream",
        [{"url": "rtmp://x.example.com/live", "key": "12345", "label": "x", "enabled": True}],
    ),
]


@pytest.mark.parametrize(("v1", "v2", "value"), V1_V2, ids=[v2 for _, v2, _ in V1_V2])
async def test_v1_and_v2_names_update_the_same_field(
    api: Api, v1: str, v2: str, value: Any
) -> None:
    one, two = await create(api), await create(api)
    by_v1 = await api.ok("PUT", f"/api/publish_token/{one['id']}", {v1: value})
    by_v2 = await api.ok("PUT", f"/api/v2/publish_token/{two['id']}", {v2: value})
    assert by_v1[v2] == by_v2[v2] == value
    # Both routes take both names.
    assert (await api.ok("PUT", f"/api/v2/publish_token/{one['id']}", {v1: value}))[v2] == value
    status, body = await api.call("PUT", f"/api/publish_token/{one['id']}", {v1: value, v2: value})
    assert f"Give {v2} or {v1}, not both" in assert_fail(status, body, 400)


async def test_null_clears_what_the_platform_says_it_clears_and_leaves_the_rest(api: Api) -> None:
    tok = await create(api, priority=4, encoderProfileId="p", enableUTCInsertion=False, record=True,
                       expiresOn="2099-01-01T00:00:00Z")  # fmt: skip
    cleared = await api.ok(
        "PUT",
        f"/api/publish_token/{tok['id']}",
        {"priority": None, "encoderProfileId": None, "enableUTCInsertion": None,
         "expiresOn": None, "record": None, "isActive": None},
    )  # fmt: skip
    assert (cleared["priority"], cleared["encoderProfileId"], cleared["enableUTCInsertion"]) == (
        None,
        None,
        None,
    )
    assert cleared["expiresOn"] is None
    assert cleared["record"] is True and cleared["isActive"] is True


async def test_is_active_and_disable_stop_a_token_and_enable_brings_it_back(api: Api) -> None:
    tok, other = await create(api), await create(api)
    off = await api.ok("PUT", f"/api/publish_token/{tok['id']}", {"isActive": False})
    assert off["isActive"] is False
    status, body = await put_segment(api, tok["token"], "cam")
    assert "disabled" in assert_fail(status, body, 401)
    on = await api.ok("PUT", f"/api/publish_token/{tok['id']}", {"isActive": True})
    assert on["isActive"] is True and (await put_segment(api, tok["token"], "cam"))[0] == 201
    # The platform's bulk disable: each id succeeds or fails on its own.
    done = await api.ok(
        "PATCH", "/api/publish_token/disable", {"tokenIds": [other["id"], 999999, other["id"]]}
    )
    assert done == {
        "successfulTokens": [other["id"]],
        "failedTokens": [{"tokenId": 999999, "errorMessage": "Publish token 999999 not found."}],
    }
    assert (await api.ok("GET", f"/api/publish_token/{other['id']}"))["isActive"] is False
    status, body = await put_segment(api, other["token"], "cam")
    assert_fail(status, body, 401)
    assert (await api.ok("GET", f"/api/publish_token/{tok['id']}"))["isActive"] is True


async def walk(api: Api, query: str, per_page: int) -> list[dict[str, Any]]:
    """Next page until an empty one, as the platform's clients do."""
    found: list[dict[str, Any]] = []
    for page in range(1, 100):
        items = await api.ok(
            "GET", f"/api/publish_token/{query}&page={page}&itemsOnPage={per_page}"
        )
        assert len(items) <= per_page
        if not items:
            return found
        found += items
    raise AssertionError("the list never ended")


async def test_paging_walks_to_the_end_in_each_order(api: Api) -> None:
    labels = [f"{c}{i}" for i, c in enumerate("bBaA" * 6)]  # 24, mixed case
    random.Random(7).shuffle(labels)
    made = [await create(api, label=label) for label in labels]
    deleted = made.pop(3)
    await api.ok("DELETE", f"/api/publish_token/{deleted['id']}")
    ids = [t["id"] for t in made]
    by_name = sorted(made, key=lambda t: (t["label"], t["id"]))  # code point order
    for per_page in (1, 5, 23, 100):
        got = await walk(api, "list?sortBy=Name", per_page)
        assert [t["label"] for t in got] == [t["label"] for t in by_name]
    assert await walk(api, "list?sortBy=Name&isDescending=true", 7) == by_name[::-1]
    assert [t["id"] for t in await walk(api, "list?sortBy=AddedOn", 4)] == sorted(ids)
    descending = await walk(api, "list?sortBy=AddedOn&isDescending=true", 4)
    assert [t["id"] for t in descending] == sorted(ids, reverse=True)
    # The defaults: page 1 of 10, by name.
    assert await api.ok("GET", "/api/publish_token/list") == by_name[:10]
    assert await api.ok("GET", "/api/publish_token/list?page=99&itemsOnPage=100") == []


async def test_list_by_name_finds_labels_and_stream_names_not_patterns(api: Api) -> None:
    # The platform's example: `name=temp` finds both tokens.
    temp = await create(
        api,
        label="temp_token",
        streams=[
            {"streamName": "container1/.+", "isRegex": True},
            {"streamName": "master_stream", "isRegex": False},
        ],
    )
    simple = await create(api, label="simple_token", streams=[{"streamName": "stream_name_temp_1"}])
    pattern = await create(
        api, label="Patterned", streams=[{"streamName": "temp.*", "isRegex": True}]
    )
    other = await create(api, label="other", streams=[{"streamName": "x"}])

    async def ids(query: str) -> list[int]:
        found = await api.ok("GET", f"/api/publish_token/list_by_name?{query}")
        return [t["id"] for t in found]

    assert await ids("name=temp&page=1&itemsOnPage=10") == [simple["id"], temp["id"]]
    assert await ids("name=TEMP&filterBy=TokenOrStreamName") == [simple["id"], temp["id"]]
    assert await ids("name=temp&filterBy=TokenName") == [temp["id"]]
    assert await ids("name=temp&filterBy=StreamName") == [simple["id"]]
    assert await ids("name=temp&filterBy=None") == [
        pattern["id"], other["id"], simple["id"], temp["id"]
    ]  # fmt: skip
    assert await ids("name=temp&isDescending=true") == [temp["id"], simple["id"]]
    assert await ids("name=temp&sortBy=AddedOn") == [temp["id"], simple["id"]]
    assert await ids("name=temp&page=2&itemsOnPage=1") == [temp["id"]]
    assert await ids("name=temp&page=3&itemsOnPage=1") == []
    # `_` and `%` are the characters they are, not wildcards ("p_e" is no "ple" of "simple").
    assert await ids("name=_tok") == [simple["id"], temp["id"]]
    assert await ids("name=%25") == [] and await ids("name=p_e") == []
    assert await ids("name=master_stream") == [temp["id"]]


async def test_active_names_the_token_of_each_live_stream(api: Api) -> None:
    account = api.service.account_id
    cam, studio = await create(api), await create(api, streams=[{"streamName": "studio"}])
    assert await api.ok("GET", f"/api/publish_token/active?streamId={account}/cam") == {
        "tokenIds": []
    }
    assert await api.ok("GET", "/api/publish_token/active/all") == {"tokenIds": []}
    assert (await put_segment(api, cam["token"], "cam"))[0] == 201  # a broadcast starts
    assert (await put_segment(api, studio["token"], "studio"))[0] == 201
    assert await api.ok("GET", f"/api/publish_token/active?streamId={account}/cam") == {
        "tokenIds": [cam["id"]]
    }
    assert await api.ok("GET", "/api/publish_token/active/all") == {
        "tokenIds": sorted([cam["id"], studio["id"]])
    }
    # Another account's stream id is none of this account's business.
    assert await api.ok("GET", "/api/publish_token/active?streamId=zzzzzz/cam") == {"tokenIds": []}
    status, body = await api.call("GET", "/api/publish_token/active?streamId=cam")
    assert "accountId" in assert_fail(status, body, 400)
    status, body = await api.call("GET", "/api/publish_token/active")
    assert "streamId" in body["data"]["errors"] and status == 400


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/publish_token/abc"),
        ("GET", "/api/publish_token/active/xyz"),
        ("GET", "/api/publish_token/1/restream"),
        ("PUT", "/api/v2/publish_token/abc"),
        ("GET", "/api/v2/publish_token/list_by_name"),
        ("PATCH", "/api/publish_token/1/nothing"),
    ],
)
async def test_unknown_paths_are_404(api: Api, method: str, path: str) -> None:
    status, body = await api.call(method, path, {} if method != "GET" else None)
    assert_fail(status, body, 404)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("list?page=0", "page"),
        ("list?page=x", "page"),
        ("list?itemsOnPage=0", "itemsOnPage"),
        ("list?itemsOnPage=101", "itemsOnPage"),
        ("list?sortBy=Label", "sortBy"),
        ("list?isDescending=maybe", "isDescending"),
        ("list_by_name?page=1&itemsOnPage=10", "name"),
        ("list_by_name?name=", "name"),
        ("list_by_name?name=a&filterBy=Unknown", "filterBy"),
        ("list_by_name?name=a&itemsOnPage=1000", "itemsOnPage"),
    ],
)
async def test_bad_list_queries_are_refused(api: Api, query: str, field: str) -> None:
    status, body = await api.call("GET", f"/api/publish_token/{query}")
    assert_fail(status, body, 400)
    assert field in body["data"]["errors"], body


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"allowedIpAddresses": ["10.0.0.300"]}, "allowedIpAddresses.0", "not an IPv4 or IPv6"),
        ({"allowedIpAddresses": ["::1/129"]}, "allowedIpAddresses.0", "CIDR"),
        ({"updateAllowedIpAddresses": [5]}, "updateAllowedIpAddresses.0", "string"),
        ({"allowedOrigins": ["https://"]}, "allowedOrigins.0", "is not an origin"),
        ({"allowedOrigins": ["ftp://x.com"]}, "allowedOrigins.0", "is not an origin"),
        ({"allowedOrigins": "x.com"}, "allowedOrigins", "list"),
        ({"isActive": "no"}, "isActive", "boolean"),
        ({"refreshToken": 1}, "refreshToken", "boolean"),
        ({"addTokenStreams": [{"streamName": ""}]}, "addTokenStreams.0.streamName", "at least 1"),
        (
            {"addTokenStreams": [{"streamName": "(", "isRegex": True}]},
            "addTokenStreams.0",
            "regular",
        ),
        ({"removeTokenStreams": ["nope"]}, "removeTokenStreams", "does not have"),
        ({"removeTokenStreams": ["cam"]}, "removeTokenStreams", "at least one stream"),
        ({"removeTokenStreams": "cam"}, "removeTokenStreams", "list"),
        (
            {"removeTokenStreams": [{"isRegex": True}]},
            "removeTokenStreams.0.streamName",
            "required",
        ),
        ({"expiresOn": "2001-01-01T00:00:00Z"}, "expiresOn", "in the future"),
        ({"expiresOn": "soon"}, "expiresOn", "datetime"),
        ({"allowedCountries": ["USA"]}, "allowedCountries.0", "two-letter"),
        ({"allowedCountries": ["US"], "deniedCountries": ["FR"]}, "allowedCountries", "not both"),
        ({"bindIpsOnUsage": 1, "allowedIpAddresses": ["::1"]}, "bindIpsOnUsage", "exclude"),
        ({"bindIpsOnUsage": -1}, "bindIpsOnUsage", "greater than or equal"),
        ({"priority": 2**31}, "priority", "less than or equal"),
        ({"geoCascade": {"isEnabled": True, "clusters": []}}, "geoCascade", "cannot be empty"),
        ({"restream": [{"url": "rtmp://x", "key": "1"}]}, "restream.0.key", "at least 5"),
        ({"restream": [{"key": "12345"}]}, "restream.0.url", "required"),
        ({"lowLatencyRtmp": "yes"}, "lowLatencyRtmp", "boolean"),
        ({"drm": 0}, "drm", "boolean"),
        ({"multisource": "true"}, "multisource", "boolean"),
        ({"enableThumbnails": []}, "enableThumbnails", "boolean"),
        ({"encoderProfileId": ""}, "encoderProfileId", "at least 1"),
        ({"originCluster": 7}, "originCluster", "string"),
    ],
)
async def test_bad_updates_are_refused_with_the_field_and_change_nothing(
    api: Api, change: dict[str, Any], field: str, words: str
) -> None:
    tok = await create(api)
    for prefix in ("/api/publish_token", "/api/v2/publish_token"):
        status, body = await api.call("PUT", f"{prefix}/{tok['id']}", change)
        message = assert_fail(status, body, 400)
        assert words in message, message
        assert field in body["data"]["errors"], body
    assert await api.ok("GET", f"/api/publish_token/{tok['id']}") == tok


@pytest.mark.parametrize(
    ("extra", "field", "words"),
    [
        ({"expires": 0}, "expires", "greater than or equal to 1"),
        ({"expires": 60, "expiresOn": "2099-01-01T00:00:00Z"}, "expires", "not both"),
        ({"expiresOn": "2001-01-01T00:00:00Z"}, "expiresOn", "in the future"),
        ({"allowedIpAddresses": ["localhost"]}, "allowedIpAddresses.0", "not an IPv4"),
        ({"allowedOrigins": ["*"]}, "allowedOrigins.0", "is not an origin"),
        ({"restream": [{"url": "rtmp://x", "key": "12345"}] * 11}, "restream", "at most 10"),
        ({"record": True, "clip": True}, "record", "cannot both record and clip"),
    ],
)
async def test_bad_creates_are_refused_with_the_field(
    api: Api, extra: dict[str, Any], field: str, words: str
) -> None:
    body = {"label": "x", "streams": [{"streamName": "cam"}], **extra}
    status, answer = await api.call("POST", "/api/publish_token", body)
    message = assert_fail(status, answer, 400)
    assert words in message, message
    assert field in answer["data"]["errors"], answer
    assert await api.ok("GET", "/api/publish_token/list") == []


@pytest.mark.parametrize(
    ("body", "field"),
    [({}, "tokenIds"), ({"tokenIds": []}, "tokenIds"), ({"tokenIds": ["a"]}, "tokenIds.0"),
     ({"tokenIds": [0]}, "tokenIds.0")],
)  # fmt: skip
async def test_bad_disables_are_refused(api: Api, body: dict[str, Any], field: str) -> None:
    status, answer = await api.call("PATCH", "/api/publish_token/disable", body)
    assert_fail(status, answer, 400)
    assert field in answer["data"]["errors"], answer


async def test_the_document_names_operations_as_the_platform_does(api: Api) -> None:
    async with api.session.get(f"{api.url}/openapi.json") as resp:
        paths = (await resp.json())["paths"]
    named = {
        ("post", "/api/publish_token"): "PublishTokenV1_CreateToken",
        ("get", "/api/publish_token/list"): "PublishTokenV1_ListTokens",
        ("get", "/api/publish_token/list_by_name"): "PublishTokenV1_ListTokensByName",
        ("get", "/api/publish_token/active"): "PublishTokenV1_GetActiveTokenByStreamId",
        ("get", "/api/publish_token/active/all"): "PublishTokenV1_GetAllActiveTokensByAccount",
        ("patch", "/api/publish_token/disable"): "PublishTokenV1_DisableTokens",
        ("get", "/api/publish_token/{id}"): "PublishTokenV1_ReadToken",
        ("put", "/api/publish_token/{id}"): "PublishTokenV1_UpdateToken",
        ("delete", "/api/publish_token/{id}"): "PublishTokenV1_DeleteToken",
        ("put", "/api/v2/publish_token/{id}"): "PublishTokenV2_UpdateToken",
    }
    for (method, path), operation in named.items():
        assert paths[path][method]["operationId"] == operation, (method, path)
