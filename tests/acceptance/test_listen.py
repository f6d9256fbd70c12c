"""`mediahooks listen` as a user runs it: a real process on an ephemeral port, real hooks from a
real server, real clips downloaded, a real SIGKILL in the middle of a download, a real command
for `--exec` and a real HTTP endpoint behind Apprise for `--notify`."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import signal
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import av
import pytest
from aiohttp import web

from mediahooks import signing
from support.footprint import BLOCKER
from support.media import clip, fetch, media_of, push, token
from support.receiver import Receiver
from support.server import API_SECRET, Api, ApiFactory
from support.signatures import VECTOR_BODY, VECTOR_SECRET, platform_sign
from support.waiting import eventually

RECORDER = """\
import json, os, sys
record = {
    "stdin": sys.stdin.read(),
    "env": {k: v for k, v in os.environ.items() if k.startswith("MEDIAHOOKS_")},
}
with open(sys.argv[1], "a") as out:
    out.write(json.dumps(record) + "\\n")
"""


LISTEN = [sys.executable, "-m", "mediahooks", "listen"]


@dataclass
class Listener:
    """A running `mediahooks listen` process and everything it printed."""

    proc: asyncio.subprocess.Process
    url: str = ""
    output: list[str] = field(default_factory=list)
    reader: asyncio.Task[None] | None = None

    def text(self) -> str:
        return "".join(self.output)

    async def wait_for(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while (found := re.search(pattern, self.text())) is None:
            if time.monotonic() > deadline or (self.reader and self.reader.done()):
                pytest.fail(f"no {pattern!r} in the listener's output:\n{self.text()}")
            await asyncio.sleep(0.05)
        return found

    async def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()
        if self.reader:
            await self.reader


class Listeners:
    def __init__(self) -> None:
        self.started: list[Listener] = []

    async def start(self, *args: str, command: Sequence[str] = LISTEN) -> Listener:
        proc = await asyncio.create_subprocess_exec(
            *command,
            "--port",
            "0",
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        listener = Listener(proc)
        self.started.append(listener)
        listener.reader = asyncio.create_task(_read(listener))
        ready = await listener.wait_for(r"READY (http://\S+)")
        listener.url = ready.group(1)
        return listener

    async def stop_all(self) -> None:
        for listener in self.started:
            if listener.proc.returncode is None:
                listener.proc.terminate()
                try:
                    await asyncio.wait_for(listener.proc.wait(), 10)
                except TimeoutError:
                    await listener.kill()


async def _read(listener: Listener) -> None:
    assert listener.proc.stdout is not None
    while line := await listener.proc.stdout.readline():
        listener.output.append(line.decode(errors="replace"))


@pytest.fixture
async def listeners() -> AsyncIterator[Listeners]:
    running = Listeners()
    yield running
    await running.stop_all()


def recorder(tmp_path: Path) -> tuple[str, Path]:
    """An --exec command that appends its stdin and MEDIAHOOKS_* variables to a file."""
    script, records = tmp_path / "record.py", tmp_path / "records.jsonl"
    script.write_text(RECORDER)
    return f"{shlex.quote(sys.executable)} {shlex.quote(str(script))} {records}", records


def records_of(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    # Only whole lines: the command may be writing the next one right now.
    lines = path.read_text().split("\n")[:-1]
    return [json.loads(line) for line in lines]


async def subscribe(api: Api, receiver: Receiver) -> dict[str, Any]:
    """A media webhook; its URL is pointed at a listener once the listener knows the secret."""
    return await api.webhook(receiver.url + "/not-yet")


async def point(api: Api, hook: dict[str, Any], listener: Listener) -> None:
    await api.ok("PUT", f"/api/webhooks/{hook['id']}", {"url": listener.url + "/hooks"})


async def deliveries(api: Api, hook: dict[str, Any], event: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = await api.ok("GET", f"/api/webhooks/{hook['id']}/deliveries")
    return [d for d in found if d["event"] == event]


async def wait_for_file(path: Path, timeout: float = 60) -> bytes:
    async def there() -> bool:
        return path.exists()

    await eventually(there, timeout)
    return path.read_bytes()


async def send(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    async with aiohttp.ClientSession() as s, s.post(url, data=body, headers=headers) as resp:
        return resp.status, await resp.text()


def encoded(payload: Any) -> bytes:
    """A hook body as the server encodes it (compact JSON, UTF-8)."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


async def test_a_real_clip_is_downloaded_once_and_forgeries_are_refused(
    api: Api, receiver: Receiver, listeners: Listeners, tmp_path: Path
) -> None:
    hook = await subscribe(api, receiver)
    command, records = recorder(tmp_path)
    downloads = tmp_path / "downloads"
    tolerance = 5
    listener = await listeners.start(
        "--secret", hook["secret"],
        "--download-dir", str(downloads),
        "--api-url", api.url,
        "--api-secret", API_SECRET,
        "--exec", command,
        "--notify", f"json://127.0.0.1:{receiver.url.rsplit(':', 1)[1]}/notify",
        "--tolerance", str(tolerance),
    )  # fmt: skip
    await point(api, hook, listener)
    tok = await token(api, "cam")
    start = await push(api, tok, "cam", 12)
    (asset,) = await clip(api, "cam", start, start + 11_000)
    asset_id = asset["id"]

    # `completed` leads to the file, complete and playable, where the issue says.
    data = await wait_for_file(downloads / "cam" / f"{asset_id}.mp4")
    read = await api.ok("GET", f"/api/v3/media/assets/{asset_id}")
    status, direct, _ = await fetch(read["download"]["downloadUrl"])
    assert status == 200 and data == direct and len(data) == read["metadata"]["sizes"]["mp4"]
    duration, kinds = media_of(data)
    assert kinds == {"video", "audio"} and 10 <= duration <= 12.5
    assert not list(downloads.rglob("*.part"))
    await listener.wait_for(rf"media completed clip {asset_id} \(cam\): downloaded cam/")

    # --exec ran once per event with the hook on stdin, the key fields in the environment.
    async def both_recorded() -> bool:
        return len(records_of(records)) == 2

    await eventually(both_recorded)
    processing, completed = records_of(records)
    assert json.loads(completed["stdin"])["data"]["mediaAssetId"] == asset_id
    env = completed["env"]
    assert env["MEDIAHOOKS_EVENT"] == "completed" and env["MEDIAHOOKS_ASSET_ID"] == asset_id
    assert env["MEDIAHOOKS_STREAM_NAME"] == "cam" and env["MEDIAHOOKS_ASSET_TYPE"] == "clip"
    assert env["MEDIAHOOKS_FILE"] == str(downloads / "cam" / f"{asset_id}.mp4")
    assert processing["env"]["MEDIAHOOKS_EVENT"] == "processing"
    assert "MEDIAHOOKS_FILE" not in processing["env"]
    (note,) = await receiver.wait_for(1, "/notify")
    assert "completed" in note.json["title"] and asset_id in note.json["message"]

    # A second delivery of `completed` (a resend) is recognised and does nothing again.
    (sent,) = await deliveries(api, hook, "completed")
    await api.ok("POST", f"/api/webhooks/{hook['id']}/deliveries/{sent['id']}/retry")
    await listener.wait_for(rf"media completed clip {asset_id} \(cam\): duplicate of ")
    detail = await api.ok("GET", f"/api/webhooks/{hook['id']}/deliveries/{sent['id']}")
    first_try, resend = detail["attemptLog"]
    assert (first_try["statusCode"], resend["statusCode"]) == (202, 200)
    assert resend["responseBody"].startswith("duplicate")

    # Forged, wrongly signed, and replayed requests are refused.
    body = encoded(detail["payload"])
    captured = resend["requestHeaders"]
    # Within the tolerance the same bytes are a duplicate (so the body was rebuilt exactly) ...
    assert (await send(listener.url + "/hooks", body, captured))[0] == 200
    forged = body.replace(b'"cam"', b'"elsewhere"')
    assert (await send(listener.url + "/hooks", forged, captured))[0] == 401
    wrong = signing.sign([signing.new_secret()], "msg_wrong", int(time.time()), body)
    assert (await send(listener.url + "/hooks", body, wrong))[0] == 401
    # ... and once it has passed, the captured request is refused as a replay.
    age = time.time() - int(captured["webhook-timestamp"])
    await asyncio.sleep(max(0.0, tolerance + 1.2 - age))
    status, text = await send(listener.url + "/hooks", body, captured)
    assert status == 401 and "TimestampTooOld" in text
    await listener.wait_for("refused a request .*TimestampTooOld")

    # `deleted` runs the command and notifies; nothing above ran twice.
    await api.ok("DELETE", f"/api/v3/media/assets?id={asset_id}")

    async def deleted_recorded() -> bool:
        return len(records_of(records)) == 3

    await eventually(deleted_recorded)
    assert records_of(records)[2]["env"]["MEDIAHOOKS_EVENT"] == "deleted"
    notes = await receiver.wait_for(2, "/notify")
    assert "deleted" in notes[1].json["title"]
    await asyncio.sleep(0.5)
    assert len(records_of(records)) == 3 and len(receiver.at("/notify")) == 2
    assert listener.text().count(f"media completed clip {asset_id} (cam): downloaded") == 1


class RecordingProxy:
    """A reverse proxy in front of the API that notes every request: the listener's own view
    of its Range requests and the answers it got. The Host header passes through, so the
    download links the API makes point at the proxy too."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.seen: list[tuple[str, str | None, int]] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        skip = {"content-length", "transfer-encoding", "accept-encoding"}
        headers = {k: v for k, v in request.headers.items() if k.lower() not in skip}
        async with (
            aiohttp.ClientSession(auto_decompress=False) as session,
            session.request(
                request.method,
                self.upstream + request.path_qs,
                headers=headers,
                data=await request.read(),
                allow_redirects=False,
            ) as resp,
        ):
            body = await resp.read()
            kept = {"content-type", "content-range", "accept-ranges"}
            answer = {k: v for k, v in resp.headers.items() if k.lower() in kept}
        self.seen.append((request.path, request.headers.get("Range"), resp.status))
        return web.Response(status=resp.status, body=body, headers=answer)


@pytest.fixture
async def proxy_factory() -> AsyncIterator[Any]:
    runners: list[web.AppRunner] = []

    async def start(upstream: str) -> RecordingProxy:
        proxy = RecordingProxy(upstream)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", proxy.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        proxy.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        return proxy

    yield start
    for runner in runners:
        await runner.cleanup()


async def test_killed_in_the_middle_of_a_download_it_resumes_with_range(
    api_factory: ApiFactory,
    receiver: Receiver,
    listeners: Listeners,
    proxy_factory: Any,
    tmp_path: Path,
) -> None:
    # Links live 2 s, so the one the killed listener was using has expired by the restart.
    api = await api_factory(download_ttl=2)
    proxy = await proxy_factory(api.url)
    hook = await subscribe(api, receiver)
    downloads = tmp_path / "downloads"
    common = [
        "--secret", hook["secret"],
        "--download-dir", str(downloads),
        "--api-url", proxy.url,
        "--api-secret", API_SECRET,
    ]  # fmt: skip
    # About 230 kB at 60 kB/s: a download of some four seconds to interrupt.
    first = await listeners.start(*common, "--rate-limit", "60k")
    await point(api, hook, first)
    tok = await token(api, "cam")
    start = await push(api, tok, "cam", 12)
    (asset,) = await clip(api, "cam", start, start + 11_000)
    target = downloads / "cam" / f"{asset['id']}.mp4"
    part = target.with_name(f".{target.name}.part")

    async def partly_there() -> bool:
        return part.exists() and part.stat().st_size >= 40_000

    await eventually(partly_there, timeout=60)
    # The hook was acknowledged long before the download could finish.
    (sent,) = await deliveries(api, hook, "completed")
    assert sent["status"] == "succeeded" and sent["attempts"] == 1
    await first.kill()
    have = part.stat().st_size
    size = (await api.ok("GET", f"/api/v3/media/assets/{asset['id']}"))["metadata"]["sizes"]["mp4"]
    assert 0 < have < size and not target.exists()
    await asyncio.sleep(2.2)  # the link expires

    second = await listeners.start(*common)
    data = await wait_for_file(target)
    await second.wait_for(rf"resuming at byte {have}\b")
    await second.wait_for(rf"downloaded cam/{asset['id']}\.mp4 .*resumed at byte {have}\)")
    assert "1 unfinished job(s) from the last run" in second.text()
    _, direct, _ = await fetch(
        (await api.ok("GET", f"/api/v3/media/assets/{asset['id']}"))["download"]["downloadUrl"]
    )
    assert data == direct and len(data) == size
    media_of(data)  # and it plays
    assert not part.exists()
    # What the listener asked for: the whole file first; after the restart the same range on
    # the stale link (403), a fresh link from the API, the range again (206).
    media = f"/media/{asset['id']}.mp4"
    asset_path = f"/api/v3/media/assets/{asset['id']}"
    steps = [(p, r, s) for p, r, s in proxy.seen if p in (media, asset_path)]
    assert steps[:2] == [(asset_path, None, 200), (media, None, 200)]
    assert steps[2:5] == [
        (media, f"bytes={have}-", 403),
        (asset_path, None, 200),
        (media, f"bytes={have}-", 206),
    ]
    assert len(steps) == 5


async def test_exec_notify_and_duplicates_for_hooks_signed_here(
    receiver: Receiver, listeners: Listeners, tmp_path: Path
) -> None:
    secret = signing.new_secret()
    command, records = recorder(tmp_path)
    listener = await listeners.start(
        "--secret", secret,
        "--download-dir", str(tmp_path / "downloads"),
        "--exec", command,
        "--notify", f"json://127.0.0.1:{receiver.url.rsplit(':', 1)[1]}/alerts",
    )  # fmt: skip
    errored = encoded(
        {
            "type": "media",
            "event": "errored",
            "timestamp": int(time.time() * 1000),
            "data": {
                "mediaAssetId": "f26120d4443b474b8b1d6e1ecfcbd369",
                "channelId": "studio-channel",
                "startTime": 1725245888000,
                "type": "recording",
                "metadata": {"error": "the range left the timeline before it was cut"},
            },
        }
    )
    headers = signing.sign([secret], "msg_errored", int(time.time()), errored)
    started = time.monotonic()
    status, text = await send(listener.url, errored, headers)
    assert (status, text) == (202, "queued\n")
    assert time.monotonic() - started < 2
    (alert,) = await receiver.wait_for(1, "/alerts")
    assert alert.json["type"] == "failure"
    assert "left the timeline" in alert.json["message"] and "errored" in alert.json["title"]

    async def recorded() -> bool:
        return len(records_of(records)) == 1

    await eventually(recorded)
    (record,) = records_of(records)
    assert record["stdin"].encode() == errored
    assert record["env"]["MEDIAHOOKS_ERROR"] == "the range left the timeline before it was cut"
    assert record["env"]["MEDIAHOOKS_CHANNEL_ID"] == "studio-channel"
    assert record["env"]["MEDIAHOOKS_WEBHOOK_ID"] == "msg_errored"
    assert "MEDIAHOOKS_STREAM_NAME" not in record["env"]

    # The same webhook-id again, even freshly signed: acknowledged, not redone.
    again = signing.sign([secret], "msg_errored", int(time.time()), errored)
    assert (await send(listener.url, errored, again))[0] == 200
    # A `processing` hook is logged and given to the command, but does not notify by default.
    processing = errored.replace(b'"errored"', b'"processing"')
    headers = signing.sign([secret], "msg_processing", int(time.time()), processing)
    assert (await send(listener.url, processing, headers))[0] == 202

    async def both() -> bool:
        return len(records_of(records)) == 2

    await eventually(both)
    await listener.wait_for("media processing recording f26120d4443b474b8b1d6e1ecfcbd369")
    await asyncio.sleep(0.3)
    assert len(receiver.at("/alerts")) == 1 and len(records_of(records)) == 2
    # Not a hook, although signed: 400.
    nonsense = b'{"hello": "world"}'
    headers = signing.sign([secret], "msg_x", int(time.time()), nonsense)
    assert (await send(listener.url, nonsense, headers))[0] == 400


async def test_platform_mode_takes_the_platform_signature_alone(
    listeners: Listeners, tmp_path: Path
) -> None:

    header = {"X-Millicast-Signature": platform_sign(VECTOR_SECRET, VECTOR_BODY)}
    strict = await listeners.start(
        "--secret", VECTOR_SECRET, "--download-dir", str(tmp_path / "strict")
    )
    assert (await send(strict.url, VECTOR_BODY, header))[0] == 401
    platform = await listeners.start(
        "--secret", VECTOR_SECRET, "--download-dir", str(tmp_path / "platform"), "--platform"
    )
    assert "replays of such requests cannot be refused" in platform.text()
    assert (await send(platform.url, VECTOR_BODY, header))[0] == 202
    # With no webhook-id, the body itself tells a second delivery of the event apart.
    assert (await send(platform.url, VECTOR_BODY, header))[0] == 200
    await platform.wait_for(
        r"media completed clip e0ca421e3ee748629d073b6991d4d93d \(test-record-clip\): "
        r"not downloaded \(no --api-url\)"
    )


async def test_deeply_nested_json_with_a_good_signature_is_400_not_500(
    listeners: Listeners, tmp_path: Path
) -> None:
    secret = signing.new_secret()
    listener = await listeners.start("--secret", secret, "--download-dir", str(tmp_path))
    nested = b'{"type": "media", "event": "completed", "data": ' + b"[" * 200_000
    nested += b"]" * 200_000 + b"}"
    headers = signing.sign([secret], "msg_deep", int(time.time()), nested)
    status, text = await send(listener.url + "/hooks", nested, headers)
    assert status == 400 and "nested too deeply" in text, (status, text)
    # And it goes on serving.
    body = encoded(
        {
            "type": "feeds",
            "event": "started",
            "timestamp": int(time.time() * 1000),
            "data": {"feedId": "feed-1", "name": "cam", "streamId": "dkxfvY/cam", "active": True},
        }
    )
    headers = signing.sign([secret], "msg_after", int(time.time()), body)
    assert (await send(listener.url + "/hooks", body, headers))[0] == 202


async def test_bad_settings_are_refused_before_starting(tmp_path: Path) -> None:
    cases = [
        (["--secret", "not base64!"], "base64"),
        (["--secret", signing.new_secret(), "--notify", "nosuchscheme://x"], "Apprise"),
        (["--secret", signing.new_secret(), "--api-url", "http://127.0.0.1:1"], "go together"),
        (["--secret", signing.new_secret(), "--rate-limit", "fast"], "rate"),
    ]
    for args, message in cases:
        # `listen` alone, as an install without the server runs it (and it starts faster).
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "mediahooks.receiver",
            "--download-dir",
            str(tmp_path),
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "COLUMNS": "200"},
        )
        out, _ = await proc.communicate()
        assert proc.returncode == 2, out
        assert message in out.decode() and "Traceback" not in out.decode()


async def test_an_exec_command_that_cannot_run_is_refused_at_start(tmp_path: Path) -> None:
    plain = tmp_path / "on-hook.sh"
    plain.write_text("#!/bin/sh\necho hook\n")  # not made executable
    cases = [
        ("./no-such-hook.sh", "./no-such-hook.sh does not exist"),
        (f"{plain} --verbose", f"{plain} is not an executable file (chmod +x"),
        (str(tmp_path), "is not an executable file"),
        (
            "no-such-program-3f9a --flag | cat",
            "'no-such-program-3f9a' is not a command found on PATH",
        ),
        ("LANG=C no-such-program-3f9a", "'no-such-program-3f9a' is not a command found on PATH"),
        ("echo 'unbalanced", "is not a valid shell command line"),
        ("   ", "--exec needs a command"),
    ]
    for command, message in cases:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mediahooks.receiver", "--secret", signing.new_secret(),
            "--download-dir", str(tmp_path), "--exec", command,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "COLUMNS": "300"},
        )  # fmt: skip
        out, _ = await proc.communicate()
        assert proc.returncode == 2, (command, out)
        assert message in out.decode() and "Traceback" not in out.decode(), (command, out)


def test_what_exec_accepts_at_start(tmp_path: Path) -> None:
    from mediahooks.receiver.command import problem

    script = tmp_path / "on-hook.sh"
    script.write_text("#!/bin/sh\ncat\n")
    script.chmod(0o755)
    for command in [
        "echo",
        "cat > /dev/null",
        f"{script} --verbose",
        f"{shlex.quote(sys.executable)} -c 'import sys'",
        "LANG=C sort",
        "if true; then cat; fi",
        "exec cat",
        "$HOME/bin/anything",  # the shell expands it: not ours to judge
    ]:
        assert problem(command) is None, command


async def test_one_state_folder_one_listener_and_a_taken_port(
    listeners: Listeners, tmp_path: Path
) -> None:
    secret = ["--secret", signing.new_secret()]
    first = await listeners.start(*secret, "--download-dir", str(tmp_path / "a"))
    port = first.url.rsplit(":", 1)[1]
    taken = f"cannot listen on 127.0.0.1:{port}"
    for args, message in [
        (["--port", "0", "--download-dir", str(tmp_path / "a")], "another `mediahooks listen`"),
        (["--port", port, "--download-dir", str(tmp_path / "b")], taken),
    ]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mediahooks.receiver", *secret, *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await proc.communicate()
        assert proc.returncode == 1 and message in out.decode(), out
        assert b"Traceback" not in out


async def test_listen_runs_and_verifies_without_the_server_dependencies(
    listeners: Listeners, tmp_path: Path
) -> None:

    # What `pip install mediahooks` (no server extra) can run: the listen command alone.
    alone = BLOCKER + "import runpy\nrunpy.run_module('mediahooks.receiver', run_name='__main__')\n"
    secret = signing.new_secret()
    listener = await listeners.start(
        "--secret", secret, "--download-dir", str(tmp_path),
        command=[sys.executable, "-c", alone],
    )  # fmt: skip
    body = encoded(
        {
            "type": "feeds",
            "event": "started",
            "timestamp": int(time.time() * 1000),
            "data": {"feedId": "feed-1", "name": "cam", "streamId": "dkxfvY/cam", "active": True},
        }
    )
    now = int(time.time())
    assert (await send(listener.url, body, signing.sign([secret], "msg_feed", now, body)))[0] == 202
    wrong = signing.sign([signing.new_secret()], "msg_feed", now, body)
    assert (await send(listener.url, body, wrong))[0] == 401
    await listener.wait_for("feeds started cam")


async def test_thumbnails_are_saved_as_pictures_not_refused(
    api: Api, listeners: Listeners, tmp_path: Path
) -> None:
    hook = await api.webhook(api.url + "/not-yet", isMediaHooks=False, isThumbnailHooks=True)
    listener = await listeners.start("--secret", hook["secret"], "--download-dir", str(tmp_path))
    await point(api, hook, listener)
    await api.send_test("Thumbnail")
    saved = await listener.wait_for(r"thumbnail (\S+) \(\d+ bytes\): saved (\S+\.jpg)")
    picture = Path(saved.group(2))
    assert picture.parent == tmp_path / saved.group(1) / "thumbnails"
    with av.open(str(picture)) as image:
        frame = next(image.decode(video=0))
        assert frame.width > 0 and frame.height > 0

    (sent,) = await deliveries(api, hook, "thumbnail")

    async def answered() -> bool:
        shown = await api.ok("GET", f"/api/webhooks/{hook['id']}/deliveries/{sent['id']}")
        return bool(shown["status"] == "succeeded")

    await eventually(answered)
    # A retried delivery of the same picture finds it there and is answered 2xx again.
    await api.ok("POST", f"/api/webhooks/{hook['id']}/deliveries/{sent['id']}/retry")
    await listener.wait_for(r"thumbnail \S+ \(\d+ bytes\): already saved")
    assert list(picture.parent.iterdir()) == [picture]
