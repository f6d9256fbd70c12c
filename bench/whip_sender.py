"""One WHIP publisher for the ingest benchmark: an H.264 (or VP8) file's packets sent as they
are (no encoding, like OBS's encoder output), looped at real time, and a silent Opus track.

Run: ``python bench/whip_sender.py <whip url> <token> <file.ts|file.webm>``; it publishes
until killed.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import Callable
from fractions import Fraction

import aiohttp
import av
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, MediaStreamTrack

from mediahooks.ingest import ice

CLOCK = 90_000


class PacedVideo(MediaStreamTrack):
    """H.264 access units (Annex B, as MPEG-TS carries them) or VP8 frames sent at their times,
    the times
    rising across loops; ``on_sent(n)`` is told when unit ``n`` (counted across loops) goes."""

    kind = "video"

    def __init__(
        self, units: list[tuple[Fraction, bytes]], on_sent: Callable[[int], None] | None = None
    ) -> None:
        super().__init__()
        first = units[0][0]
        self.units = [(t - first, data) for t, data in units]
        self.length = self.units[-1][0] + (self.units[1][0] - self.units[0][0])
        self.on_sent = on_sent
        self.index = 0
        self.start: float | None = None

    async def recv(self) -> av.Packet:
        if self.start is None:
            self.start = time.monotonic()
        loops, at = divmod(self.index, len(self.units))
        offset, data = self.units[at]
        when = offset + loops * self.length
        delay = self.start + float(when) - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        if self.on_sent is not None:
            self.on_sent(self.index)
        self.index += 1
        packet = av.Packet(data)
        packet.pts = round(when * CLOCK)
        packet.time_base = Fraction(1, CLOCK)
        return packet


def file_units(path: str) -> tuple[str, list[tuple[Fraction, bytes]]]:
    """A file's video codec, and its video packets with their times (s)."""
    units = []
    with av.open(path) as container:
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            if packet.size and packet.pts is not None:
                units.append((packet.pts * packet.time_base, bytes(packet)))
        return stream.codec_context.name, units


async def publish(
    url: str, token: str, video: MediaStreamTrack, codec: str = "h264"
) -> RTCPeerConnection:
    """Publish ``video`` (H.264 or VP8 as it is) and a silent Opus track to the WHIP ``url``."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    sender = pc.addTransceiver(video, direction="sendonly")
    capabilities = RTCRtpSender.getCapabilities("video")
    assert capabilities is not None
    sender.setCodecPreferences(
        [c for c in capabilities.codecs if c.mimeType.lower() in (f"video/{codec}", "video/rtx")]
    )
    pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
    ice.restrict(pc, ["127.0.0.1"], None)
    await pc.setLocalDescription(await pc.createOffer())
    headers = {"Content-Type": "application/sdp", "Authorization": f"Bearer {token}"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=pc.localDescription.sdp, headers=headers) as answer,
    ):
        body = await answer.text()
        if answer.status != 201:
            raise SystemExit(f"WHIP refused: {answer.status} {body}")
    await pc.setRemoteDescription(RTCSessionDescription(sdp=body, type="answer"))
    return pc


async def main(url: str, token: str, path: str) -> None:
    codec, units = file_units(path)  # the decoder's name: "h264" or "vp8"
    pc = await publish(url, token, PacedVideo(units), codec)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await pc.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
