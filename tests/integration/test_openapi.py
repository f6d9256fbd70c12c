"""The API as its OpenAPI document says: schemathesis against a real server finds no server
error and no answer the document does not declare; the document declares the 400s the API
answers; `/docs` works offline; 405s name every allowed method; a bug answers 500 and closes
its connection; `/healthz` and `/readyz`."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from mediahooks.store import webhooks
from support import ROOT
from support.server import API_SECRET, Api


async def test_schemathesis_finds_no_server_error_and_no_undeclared_answer(api: Api) -> None:
    st = Path(sys.executable).with_name("st")
    proc = await asyncio.create_subprocess_exec(
        str(st),
        "run",
        f"{api.url}/openapi.json",
        "--header",
        f"Authorization: Bearer {API_SECRET}",
        "--checks",
        "all",
        "--max-examples",
        "5",
        "--max-time",
        "60",
        "--seed",
        "20261205",
        "--no-shrink",
        cwd=ROOT,  # where schemathesis.toml is
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "NO_COLOR": "1"},
    )
    out, _ = await proc.communicate()
    report = out.decode(errors="replace")
    failures = report[report.find("FAILURES") :] if "FAILURES" in report else report
    assert proc.returncode == 0, failures[:8000]
    assert re.search(r"Tested: \d+", report), report[-2000:]


async def test_the_document_declares_400_not_422_and_the_envelope(api: Api) -> None:
    async with api.session.get(f"{api.url}/openapi.json") as resp:
        document: dict[str, Any] = await resp.json()
    operations = [op for path in document["paths"].values() for op in path.values()]
    assert all("422" not in op["responses"] for op in operations)
    assert all("default" in op["responses"] for op in operations)
    create = document["paths"]["/api/webhooks"]["post"]["responses"]
    assert create["400"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Fail"
    }
    status, body = await api.call("POST", "/api/webhooks", {"url": 5})
    assert status == 400 and body["status"] == "fail" and "url" in body["data"]["errors"]


async def test_docs_work_offline(api: Api) -> None:
    async with api.session.get(f"{api.url}/docs") as resp:
        page = await resp.text()
    assert resp.status == 200
    assert "/docs/static/swagger-ui-bundle.js" in page
    assert not re.search(r"""(src|href)=["']https?://""", page), "the page loads from the web"
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        async with api.session.get(f"{api.url}/docs/static/{asset}") as resp:
            assert resp.status == 200 and len(await resp.read()) > 10_000


async def test_a_405_names_every_method_of_the_resource(api: Api) -> None:
    hook = await api.webhook("http://127.0.0.1:9/hooks")
    status, body = await api.call("PATCH", f"/api/webhooks/{hook['id']}")
    assert status == 405 and body["status"] == "fail"
    async with api.session.patch(f"{api.url}/api/webhooks/{hook['id']}") as resp:
        allowed = {m.strip() for m in resp.headers["Allow"].split(",")}
    assert {"GET", "PUT", "DELETE"} <= allowed and "PATCH" not in allowed
    # A path that is not an id is no resource, not a bad id; `list` is its own resource.
    assert (await api.call("GET", "/api/webhooks/abc"))[0] == 404
    status, _ = await api.call("PUT", "/api/webhooks/list", {})
    assert status == 405


async def test_a_download_link_with_a_signature_beyond_ascii_is_refused_cleanly(api: Api) -> None:
    url = f"{api.url}/media/{'0' * 32}.mp4?expires=1&sig={'é' * 64}"
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        assert resp.status == 400
        assert (await resp.json())["status"] == "fail"


async def test_nul_characters_are_refused_alike_on_both_databases(api: Api) -> None:
    status, body = await api.call(
        "POST", "/api/publish_token", {"label": "a\u0000b", "streams": [{"streamName": "x"}]}
    )
    assert status == 400 and "NUL" in body["data"]["message"], body
    status, body = await api.call(
        "POST", "/api/subscribe_token", {"label": "a\u0000b", "streams": [{"streamName": "x"}]}
    )
    assert status == 400 and "NUL" in body["data"]["message"], body
    status, body = await api.call("GET", "/api/v3/media/assets?streamName=a%00b")
    assert status == 400 and "NUL" in body["data"]["message"], body


async def test_a_bug_answers_500_and_closes_its_connection(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_: Any, **__: Any) -> Any:
        raise TypeError("a bug")

    monkeypatch.setattr(webhooks, "page", broken)
    async with api.session.get(
        f"{api.url}/api/webhooks/list", headers={"Authorization": f"Bearer {API_SECRET}"}
    ) as resp:
        assert resp.status == 500
        assert resp.headers.get("Connection", "").lower() == "close"
        assert (await resp.json())["status"] == "error"


async def test_health_and_readiness(api: Api) -> None:
    async with api.session.get(f"{api.url}/healthz") as resp:
        assert resp.status == 200
    async with api.session.get(f"{api.url}/readyz") as resp:
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["status"] == "ready"
