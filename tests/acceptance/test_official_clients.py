"""The platform's official clients manage webhooks and publish tokens against our server, unchanged.

`dolbyio-rest-apis` (PyPI, from the lock) and `@dolbyio/dolbyio-rest-apis-client` (npm,
installed by the test into a cache it reuses) both hard-code `https://api.millicast.com`. How
each builds its URLs, read from their sources:

- Python: `dolbyio_rest_apis.core.urls.get_rts_url()` is a constant `https://api.millicast.com`;
  requests go through aiohttp with an SSL context made from `certifi.where()` alone, and aiohttp
  connects to the address *and port* its resolver (`socket.getaddrinfo`) returns.
- Node: each call passes `hostname: urls.getRtsHostname()` and a fixed `port: 443` to
  follow-redirects' `https.request`; Node's https agent opens the connection with `tls.connect`.

So nothing in either client can point it elsewhere, and the least magical way in is at the name
resolution / connection step of the client's own process (see `official_clients`): a TLS front
on 127.0.0.1 with a certificate for api.millicast.com from a test CA, the CA trusted by the
client process, and api.millicast.com:443 turned into 127.0.0.1:<front> there and nowhere else.
Every other name is refused, so no call can leave loopback.

Neither client has a call for `POST /api/webhooks/test/{type}`; each sends it through its own
HTTP layer (the one its webhook calls use), as a user of the client would.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path
from typing import Any

import trustme

from support.official_clients import (
    client_environment,
    node_client,
    node_command,
    python_command,
    run_client,
    tls_front,
)
from support.receiver import Receiver
from support.server import API_SECRET, Api

PYTHON_SCENARIO = """\
import asyncio
import json
import os

from dolbyio_rest_apis.core.http_request_error import HttpRequestError
from dolbyio_rest_apis.core.urls import get_rts_url
from dolbyio_rest_apis.streaming import publish_token, webhooks
from dolbyio_rest_apis.streaming.internal.http_context import StreamingHttpContext
from dolbyio_rest_apis.streaming.models.publish_token import (
    CreatePublishToken,
    TokenGeoCascade,
    TokenStreamName,
    UpdatePublishToken,
)
from dolbyio_rest_apis.streaming.models.webhooks import CreateWebhook, UpdateWebhook

SECRET = os.environ["API_SECRET"]


async def status_of(call):
    try:
        await call
    except HttpRequestError as error:
        return error.status_code
    return 200


async def main():
    out = {}
    hook = await webhooks.create(
        SECRET, CreateWebhook(os.environ["HOOK_URL"], is_feed_hooks=True, is_recording_hooks=False)
    )
    out["webhook_created"] = hook.to_dict()
    out["webhook_read"] = (await webhooks.read(SECRET, hook.id)).to_dict()
    change = UpdateWebhook()
    change.url = os.environ["HOOK_URL"] + "?updated"
    change.refresh_secret = True
    out["webhook_updated"] = (await webhooks.update(SECRET, hook.id, change)).to_dict()
    listed = await webhooks.list_webhooks(SECRET, starting_id=0, item_count=10)
    out["webhooks_listed"] = [w.to_dict() for w in listed]
    async with StreamingHttpContext() as http:
        out["test_event"] = await http.requests_post(
            api_secret=SECRET, url=f"{get_rts_url()}/api/webhooks/test/Feeds"
        )
    # A second webhook to delete: deleting the first could cancel the test event's delivery.
    gone = await webhooks.create(
        SECRET, CreateWebhook(os.environ["HOOK_URL"], is_feed_hooks=False, is_recording_hooks=False)
    )
    await webhooks.delete(SECRET, gone.id)
    out["webhook_read_after_delete"] = await status_of(webhooks.read(SECRET, gone.id))
    out["webhook_deleted_id"] = gone.id

    create = CreatePublishToken("python client")
    create.streams = [TokenStreamName("cam1"), TokenStreamName("studio-.*", is_regex=True)]
    token = await publish_token.create(SECRET, create)
    out["token_created"] = token.to_dict()
    out["token_read"] = (await publish_token.read(SECRET, token.id)).to_dict()
    change = UpdatePublishToken()
    change.add_token_streams = [TokenStreamName("cam2")]
    change.remove_token_streams = [TokenStreamName("cam1")]
    out["token_streams_changed"] = (await publish_token.update(SECRET, token.id, change)).to_dict()
    change = UpdatePublishToken()
    change.is_active = False
    change.label = "python client, paused"
    change.update_allowed_origins = ["https://studio.example.com"]
    out["token_deactivated"] = (await publish_token.update(SECRET, token.id, change)).to_dict()
    change = UpdatePublishToken()
    change.refresh_token = True
    out["token_refreshed"] = (await publish_token.update(SECRET, token.id, change)).to_dict()
    listed = await publish_token.list_tokens(SECRET, "AddedOn", 1, 10, is_descending=True)
    out["tokens_listed"] = [t.to_dict() for t in listed]
    out["tokens_disabled"] = (await publish_token.disable(SECRET, [token.id, 999999])).to_dict()
    out["tokens_live"] = (await publish_token.get_all_active_publish_token_id(SECRET)).to_dict()
    await publish_token.delete(SECRET, token.id)

    rich = CreatePublishToken("python client, every setting")
    rich.streams = [TokenStreamName("cam9")]
    rich.expires_on = "2099-01-01T00:00:00Z"
    rich.allowed_origins = ["https://*.example.com"]
    rich.allowed_ip_addresses = ["10.0.0.0/8"]
    rich.allowed_countries = ["FR"]
    rich.origin_cluster = "fra-1"
    rich.subscribe_requires_auth = True
    rich.record = True
    rich.enable_thumbnails = True
    rich.display_srt_passphrase = True
    rich.geo_cascade = TokenGeoCascade(is_enabled=True, clusters=["fra-1"])
    # Not `restream`: this client's create sends it as one object, not the documented list.
    rich = await publish_token.create(SECRET, rich)
    out["token_rich"] = (await publish_token.read(SECRET, rich.id)).to_dict()
    await publish_token.delete(SECRET, rich.id)
    out["token_read_after_delete"] = await status_of(publish_token.read(SECRET, token.id))
    print(json.dumps(out))


asyncio.run(main())
"""

NODE_SCENARIO = """\
'use strict';
const CLIENT = '@dolbyio/dolbyio-rest-apis-client';
const { streaming, urls } = require(CLIENT);
const { sendPost } = require(`${CLIENT}/dist/streaming/internal/httpHelpers`);

const SECRET = process.env.API_SECRET;
const HOOK_URL = process.env.HOOK_URL;

const statusOf = (promise) =>
  promise.then(
    () => 200,
    (error) => Number((/response code (\\d+)/.exec(String(error)) || [0, 0])[1]),
  );

(async () => {
  const out = {};
  const hook = await streaming.webhooks.add(SECRET, {
    url: HOOK_URL, isFeedHooks: true, isRecordingHooks: false,
  });
  out.webhook_created = hook;
  out.webhook_read = await streaming.webhooks.read(SECRET, hook.id);
  out.webhook_updated = await streaming.webhooks.update(SECRET, hook.id, {
    url: HOOK_URL + '?updated', refreshSecret: true,
  });
  out.webhooks_listed = await streaming.webhooks.list(SECRET, {
    startingId: 0, itemCount: 10, isDescending: false,
  });
  out.test_event = await sendPost({
    hostname: urls.getRtsHostname(),
    path: '/api/webhooks/test/Feeds',
    headers: { Accept: 'application/json', Authorization: `Bearer ${SECRET}` },
  });
  // A second webhook to delete: deleting the first could cancel the test event's delivery.
  const gone = await streaming.webhooks.add(SECRET, {
    url: HOOK_URL, isFeedHooks: false, isRecordingHooks: false,
  });
  out.webhook_deleted_id = gone.id;
  out.webhook_deleted = await streaming.webhooks.remove(SECRET, gone.id);
  out.webhook_read_after_delete = await statusOf(streaming.webhooks.read(SECRET, gone.id));

  const token = await streaming.publishToken.create(SECRET, {
    label: 'node client',
    streams: [{ streamName: 'cam1' }, { streamName: 'studio-.*', isRegex: true }],
  });
  out.token_created = token;
  out.token_read = await streaming.publishToken.read(SECRET, token.id);
  out.token_streams_changed = await streaming.publishToken.update(SECRET, token.id, {
    addTokenStreams: [{ streamName: 'cam2' }], removeTokenStreams: [{ streamName: 'cam1' }],
  });
  out.token_deactivated = await streaming.publishToken.update(SECRET, token.id, {
    isActive: false, label: 'node client, paused',
    updateAllowedOrigins: ['https://studio.example.com'],
  });
  out.token_refreshed = await streaming.publishToken.update(SECRET, token.id, {
    refreshToken: true,
  });
  out.tokens_listed = await streaming.publishToken.list(SECRET, 'AddedOn', 1, 10, true);
  out.tokens_disabled = await streaming.publishToken.disable(SECRET, [token.id, 999999]);
  out.tokens_live = await streaming.publishToken.getAllActivePublishTokenId(SECRET);
  out.token_deleted = await streaming.publishToken.deleteToken(SECRET, token.id);

  const rich = await streaming.publishToken.create(SECRET, {
    label: 'node client, every setting',
    streams: [{ streamName: 'cam9' }],
    expires: 3600,
    allowedOrigins: ['https://*.example.com'],
    allowedIpAddresses: ['10.0.0.0/8'],
    allowedCountries: ['FR'],
    originCluster: 'fra-1',
    subscribeRequiresAuth: true,
    record: true,
    enableThumbnails: true,
    displaySrtPassphrase: true,
    geoCascade: { isEnabled: true, clusters: ['fra-1'] },
    restream: [{ url: 'rtmp://127.0.0.1:1/live', key: 'restream-key' }],
  });
  out.token_rich = await streaming.publishToken.read(SECRET, rich.id);
  await streaming.publishToken.deleteToken(SECRET, rich.id);
  out.token_read_after_delete = await statusOf(streaming.publishToken.read(SECRET, token.id));
  process.stdout.write(JSON.stringify(out));
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
"""


def check_webhooks(out: dict[str, Any], hook_url: str) -> None:
    """What the platform documents for each webhook answer."""
    created = out["webhook_created"]
    assert created["url"] == hook_url
    assert created["isFeedHooks"] is True and created["isRecordingHooks"] is False
    assert isinstance(created["id"], int) and created["secret"]
    assert out["webhook_read"]["id"] == created["id"]
    assert out["webhook_read"]["secret"] == created["secret"]
    updated = out["webhook_updated"]
    assert updated["url"] == hook_url + "?updated"
    assert updated["secret"] and updated["secret"] != created["secret"]
    assert [w["id"] for w in out["webhooks_listed"]] == [created["id"]]
    assert out["webhook_deleted_id"] != created["id"]
    assert out["webhook_read_after_delete"] == 404


def check_tokens(out: dict[str, Any], label: str) -> None:
    """What the platform documents for each publish token answer."""
    created = out["token_created"]
    assert created["label"] == label and created["isActive"] is True
    assert isinstance(created["id"], int) and len(created["token"]) >= 32
    assert {(s["streamName"], s["isRegex"]) for s in created["streams"]} == {
        ("cam1", False),
        ("studio-.*", True),
    }
    assert out["token_read"]["token"] == created["token"]
    assert {s["streamName"] for s in out["token_streams_changed"]["streams"]} == {
        "cam2",
        "studio-.*",
    }
    paused = out["token_deactivated"]
    assert paused["isActive"] is False and paused["label"] == label + ", paused"
    assert paused["allowedOrigins"] == ["https://studio.example.com"]
    refreshed = out["token_refreshed"]
    assert refreshed["token"] != created["token"] and len(refreshed["token"]) >= 32
    assert refreshed["label"] == label + ", paused"
    assert [(t["id"], t["isActive"]) for t in out["tokens_listed"]] == [(created["id"], False)]
    assert out["tokens_disabled"]["successfulTokens"] == [created["id"]]
    # The Python client's model types a failed tokenId as a string, the Node one as a number.
    assert [int(f["tokenId"]) for f in out["tokens_disabled"]["failedTokens"]] == [999999]
    assert out["tokens_live"] == {"tokenIds": []}
    assert out["token_read_after_delete"] == 404
    rich = out["token_rich"]
    assert rich["label"] == label + ", every setting"
    assert [s["streamName"] for s in rich["streams"]] == ["cam9"]
    assert rich["expiresOn"] and rich["expiresOn"] > created["addedOn"]
    assert rich["allowedOrigins"] == ["https://*.example.com"]
    assert rich["allowedIpAddresses"] == ["10.0.0.0/8"]
    assert rich["allowedCountries"] == ["FR"] and rich["originCluster"] == "fra-1"
    assert rich["subscribeRequiresAuth"] is True and rich["record"] is True
    assert rich["clip"] is False and rich["enableThumbnails"] is True
    assert rich["displaySrtPassphrase"] is True and rich["srtPassphrase"]
    assert rich["geoCascade"] == {"isEnabled": True, "clusters": ["fra-1"]}


async def check_test_event(out: dict[str, Any], receiver: Receiver) -> None:
    """The test event reached the webhook the client made, at the address it set, signed as the
    platform signs (sha1 HMAC, hex, over the body) with the secret the client got last."""
    assert out["test_event"] is True
    [hook] = await receiver.wait_for(1, "/platform-client")
    assert hook.json["type"] == "feeds"
    key = base64.b64decode(out["webhook_updated"]["secret"])
    signature = {k.lower(): v for k, v in hook.headers.items()}["x-millicast-signature"]
    assert signature == "sha1=" + hmac.new(key, hook.body, hashlib.sha1).hexdigest()


async def run_official(
    api: Api, receiver: Receiver, tmp_path: Path, command: list[str]
) -> tuple[dict[str, Any], str]:
    hook_url = receiver.url + "/platform-client"
    ca = trustme.CA()
    port = int(api.url.rsplit(":", 1)[1])
    async with tls_front(port, ca) as front_port:
        env = client_environment(tmp_path, front_port, ca)
        env.update(API_SECRET=API_SECRET, HOOK_URL=hook_url)
        out: dict[str, Any] = await run_client(command, env)
    return out, hook_url


async def test_python_client(api: Api, receiver: Receiver, tmp_path: Path) -> None:
    script = tmp_path / "python_client.py"
    script.write_text(PYTHON_SCENARIO)
    out, hook_url = await run_official(api, receiver, tmp_path, python_command(script))
    check_webhooks(out, hook_url)
    check_tokens(out, "python client")
    await check_test_event(out, receiver)


async def test_node_client(api: Api, receiver: Receiver, tmp_path: Path) -> None:
    node_client()
    script = tmp_path / "node_client.js"
    script.write_text(NODE_SCENARIO)
    command = node_command(script, tmp_path / "hooks")
    out, hook_url = await run_official(api, receiver, tmp_path, command)
    check_webhooks(out, hook_url)
    # The platform answers a deleted webhook with the webhook, a deleted token with `true`.
    assert out["webhook_deleted"]["id"] == out["webhook_deleted_id"]
    check_tokens(out, "node client")
    assert out["token_deleted"] is True
    assert [(r["url"], r["key"]) for r in out["token_rich"]["restream"]] == [
        ("rtmp://127.0.0.1:1/live", "restream-key")
    ]
    await check_test_event(out, receiver)
