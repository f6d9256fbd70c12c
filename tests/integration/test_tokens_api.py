"""`/api/publish_token` on a real server, both databases: create, update every field, bad input,
and stream rules that are hostile regular expressions."""

from __future__ import annotations

import logging
import time
from typing import Any

import aiohttp
import pytest

from support.envelope import assert_fail
from support.server import Api

# A playlist naming a segment never sent: valid, with nothing to time.
PLAYLIST = b"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\nindex0.ts\n"
CAM = [{"streamName": "cam", "isRegex": False}]


async def new_token(api: Api, **fields: Any) -> dict[str, Any]:
    body = {"label": "camera", "streams": CAM, **fields}
    data: dict[str, Any] = await api.ok("POST", "/api/publish_token", body)
    return data


async def upload(api: Api, token: str, stream: str) -> tuple[int, Any]:
    """PUT a playlist to ``stream``: the token's rules are checked before anything else."""
    async with (
        aiohttp.ClientSession() as s,
        s.put(
            f"{api.url}/ingest/{stream}/index.m3u8",
            data=PLAYLIST,
            headers={"Authorization": f"Bearer {token}"},
        ) as resp,
    ):
        return resp.status, await resp.json(content_type=None) if resp.status >= 400 else None


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"label": "renamed"}, {"label": "renamed", "name": "renamed"}),
        (
            {"streams": [{"streamName": "studio-[0-9]+", "isRegex": True}]},
            {"streams": [{"streamName": "studio-[0-9]+", "isRegex": True}]},
        ),
        # isRegex defaults to false, as at create.
        (
            {"streams": [{"streamName": "other"}]},
            {"streams": [{"streamName": "other", "isRegex": False}]},
        ),
        ({"record": True}, {"record": True, "clip": False}),
        ({"clip": True}, {"clip": True, "record": False}),
        ({"record": False, "clip": True}, {"record": False, "clip": True}),
        # Unknown fields are ignored, as everywhere in the API; nothing else changes.
        ({"isActive": False, "nonsense": 1}, {"isActive": False}),
        # A null is no change (except for the fields a null clears).
        ({"record": None, "label": None, "multisource": False}, {"multisource": False}),
    ],
)
async def test_update_changes_exactly_the_fields_given(
    api: Api, change: dict[str, Any], expected: dict[str, Any]
) -> None:
    before = await new_token(api)
    after = await api.ok("PUT", f"/api/publish_token/{before['id']}", change)
    # `publish` shows how to publish the first exact stream name: it follows `streams`.
    assert without_publish(after) == without_publish({**before, **expected})
    assert await api.ok("GET", f"/api/publish_token/{before['id']}") == after


def without_publish(token: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in token.items() if k != "publish"}


async def test_an_update_is_what_ingest_obeys(api: Api) -> None:
    tok = await new_token(api)
    assert (await upload(api, tok["token"], "studio-7"))[0] == 403
    changed = await api.ok(
        "PUT",
        f"/api/publish_token/{tok['id']}",
        {"streams": [{"streamName": "studio-[0-9]+", "isRegex": True}]},
    )
    assert changed["publish"]["url"].endswith("/ingest/mystream/index.m3u8")
    # Allowed now; the playlist itself has nothing to time, so it is simply accepted.
    assert (await upload(api, tok["token"], "studio-7"))[0] == 201
    assert (await upload(api, tok["token"], "cam"))[0] == 403


async def test_updating_an_unknown_or_deleted_token_is_404(api: Api) -> None:
    status, body = await api.call("PUT", "/api/publish_token/999999", {"label": "x"})
    assert "Publish token 999999" in assert_fail(status, body, 404)
    tok = await new_token(api)
    await api.ok("DELETE", f"/api/publish_token/{tok['id']}")
    status, body = await api.call("PUT", f"/api/publish_token/{tok['id']}", {"label": "x"})
    assert_fail(status, body, 404)


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"label": ""}, "label", "at least 1"),
        ({"label": 7}, "label", "string"),
        ({"label": "x" * 257}, "label", "at most 256"),
        ({"streams": []}, "streams", "at least 1"),
        ({"streams": "cam"}, "streams", "list"),
        ({"streams": [{"isRegex": True}]}, "streams.0.streamName", "required"),
        ({"streams": [{"streamName": "a(", "isRegex": True}]}, "streams.0", "regular expression"),
        ({"record": "yes"}, "record", "boolean"),
        ({"clip": 1}, "clip", "boolean"),
        ({"record": True, "clip": True}, "record", "cannot both record and clip"),
        ({"record": True}, "record", "cannot both record and clip"),  # the token clips already
        ({}, "body", "No properties specified to update"),
        ({"nonsense": 1}, "body", "No properties specified to update"),
    ],
)
async def test_bad_updates_are_refused_and_change_nothing(
    api: Api, change: dict[str, Any], field: str, words: str
) -> None:
    tok = await new_token(api, clip=True)
    status, body = await api.call("PUT", f"/api/publish_token/{tok['id']}", change)
    message = assert_fail(status, body, 400)
    assert words in message, message
    assert field in body["data"]["errors"], body
    assert await api.ok("GET", f"/api/publish_token/{tok['id']}") == tok


@pytest.mark.parametrize("pattern", ["a(", "[z-a]", "*a", "a{2,1}"])
async def test_an_invalid_stream_rule_is_refused_at_create(api: Api, pattern: str) -> None:
    rule = [{"streamName": pattern, "isRegex": True}]
    status, body = await api.call("POST", "/api/publish_token", {"label": "x", "streams": rule})
    message = assert_fail(status, body, 400)
    assert "streamName is not a valid regular expression" in message, message
    assert await api.ok("GET", "/api/publish_token/list?page=1&itemsOnPage=10") == []


async def test_a_rule_that_backtracks_for_ages_is_no_match_and_blocks_no_one(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    # Under the standard library's engine (a+)+ takes about 7 s on this name, doubling with each
    # further "a", while every other request waits; `regex` decides it at once, and stops
    # (a|aa)+ at the time limit.
    hostile = [{"streamName": p, "isRegex": True} for p in ("(a+)+", "(a|aa)+")]
    tok = await new_token(api, streams=hostile)
    name = "a" * 27 + "-"
    caplog.set_level(logging.WARNING, "mediahooks.patterns")
    started = time.monotonic()
    status, body = await upload(api, tok["token"], name)
    assert time.monotonic() - started < 2
    assert status == 403 and "may not publish" in body["data"]["message"]
    (warning,) = [r for r in caplog.records if r.name == "mediahooks.patterns"]
    assert f"stream rule of token {tok['id']}" in warning.getMessage()
    assert "treated as no match" in warning.getMessage() and name in warning.getMessage()
    # The same rules still match what they match quickly.
    assert (await upload(api, tok["token"], "aaaa"))[0] == 201
