"""The real `ffmpeg` command line as the publisher, exactly as a user would type it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mediahooks.clock import now_ms
from support.media import clip, fetch, hooks_for, media_of, token
from support.mediakit import h264_aac_file
from support.receiver import Receiver
from support.server import Api

SECONDS = 22


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A short H.264/AAC file to publish."""
    return h264_aac_file(tmp_path_factory.mktemp("source") / "input.mp4", SECONDS, "320x180")


@pytest.mark.parametrize("segment_type", ["mpegts", "fmp4"])
async def test_ffmpeg_publishes_and_a_clip_completes(
    api: Api, receiver: Receiver, source: Path, segment_type: str
) -> None:
    await api.webhook(receiver.url + "/ff")
    tok = await token(api, "live")
    if segment_type == "mpegts":  # the header form
        url = f"{api.url}/ingest/live/index.m3u8"
        auth = ["-headers", f"Authorization: Bearer {tok['token']}\r\n"]
    else:  # the token-in-path form, for tools that cannot set headers
        url = f"{api.url}/ingest/t/{tok['token']}/live/index.m3u8"
        auth = []
    started = now_ms()
    ffmpeg = await asyncio.create_subprocess_exec(
        "ffmpeg", "-loglevel", "error", "-re", "-i", str(source),
        "-c:v", "libx264", "-g", "30", "-c:a", "aac",
        "-f", "hls", "-hls_time", "1", "-hls_segment_type", segment_type,
        "-method", "PUT", *auth, "-hls_flags", "program_date_time", url,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(ffmpeg.communicate(), SECONDS + 30)
    assert ffmpeg.returncode == 0, err.decode()
    (asset,) = await clip(api, "live", started + 5_000, started + 17_000)
    assert await hooks_for(receiver, "/ff", asset["id"], 2) == ["processing", "completed"]
    read = await api.ok("GET", f"/api/v3/media/assets/{asset['id']}")
    status, body, _ = await fetch(read["download"]["downloadUrl"])
    assert status == 200
    duration, kinds = media_of(body)
    assert kinds == {"video", "audio"}
    assert 11.5 <= duration <= 13.5
