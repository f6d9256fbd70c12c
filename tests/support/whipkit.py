"""A WHIP publisher made with aiortc: a test card (H.264, encoded by aiortc's x264 encoder, or
VP8 by its libvpx one) and a tone (Opus), host candidates on 127.0.0.1 only; and the test
server the WHIP tests publish to."""

from __future__ import annotations

import asyncio
import math
from fractions import Fraction
from typing import Any

import aiohttp
import av
from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack

from mediahooks.ingest import ice
from mediahooks.media.synthetic import _TestCard

from .server import Api, ApiFactory


class Card(VideoStreamTrack):
    """aiortc's paced video clock (30 fps) showing the test card."""

    def __init__(self, width: int = 640, height: int = 360) -> None:
        super().__init__()
        self.card = _TestCard(width, height)
        self.count = 0

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = self.card.frame(self.count, 30)
        self.count += 1
        frame.pts, frame.time_base = pts, time_base
        return frame


class Tone(AudioStreamTrack):
    """A 440 Hz tone at aiortc's audio pacing (20 ms, 48 kHz stereo s16)."""

    async def recv(self) -> av.AudioFrame:
        silent = await super().recv()
        assert isinstance(silent, av.AudioFrame) and silent.pts is not None
        samples = silent.samples
        data = bytearray()
        for i in range(samples):
            value = int(8000 * math.sin(2 * math.pi * 440 * (silent.pts + i) / 48000))
            data += value.to_bytes(2, "little", signed=True) * 2
        frame = av.AudioFrame(format="s16", layout="stereo", samples=samples)
        frame.planes[0].update(bytes(data))
        frame.sample_rate, frame.pts = 48000, silent.pts
        frame.time_base = Fraction(1, 48000)
        return frame


class WhipClient:
    """One publisher: `publish` posts the offer, `delete` ends the session, `drop` vanishes
    without a word (a killed browser)."""

    def __init__(self, url: str, audio: bool = True, codec: str = "h264") -> None:
        self.url = url
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.location: str | None = None
        self.headers: Any = None
        video = self.pc.addTransceiver(Card(), direction="sendonly")
        capabilities = RTCRtpSender.getCapabilities("video")
        assert capabilities is not None
        video.setCodecPreferences(
            [
                c
                for c in capabilities.codecs
                if c.mimeType.lower() in (f"video/{codec}", "video/rtx")
            ]
        )
        if audio:
            self.pc.addTransceiver(Tone(), direction="sendonly")
        ice.restrict(self.pc, ["127.0.0.1"], None)

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return str(self.pc.localDescription.sdp)

    async def publish(self, token: str, **headers: str) -> tuple[int, str]:
        sdp = await self.offer()
        headers = {"Content-Type": "application/sdp", "Authorization": f"Bearer {token}", **headers}
        async with (
            aiohttp.ClientSession() as session,
            session.post(self.url, data=sdp, headers=headers) as resp,
        ):
            body = await resp.text()
            self.headers = resp.headers
            if resp.status == 201:
                self.location = resp.headers["Location"]
                answer = RTCSessionDescription(sdp=body, type="answer")
                await self.pc.setRemoteDescription(answer)
            return resp.status, body

    async def connected(self, timeout: float = 15) -> None:
        async with asyncio.timeout(timeout):
            while self.pc.connectionState != "connected":
                await asyncio.sleep(0.1)

    async def delete(self, base: str) -> int:
        assert self.location is not None
        async with aiohttp.ClientSession() as session, session.delete(base + self.location) as r:
            status = r.status
        await self.pc.close()
        return status

    def lose_packets(self, every: int) -> None:
        """From now on, lose each ``every``-th video RTP packet (0: none), and every
        retransmission from now on, so that what is lost stays lost; `lost` counts."""
        self.lose_every = every
        if getattr(self, "_tapped", False):
            return
        self._tapped = True
        self.lost = 0
        sender = next(s for s in self.pc.getSenders() if s.track and s.track.kind == "video")
        transport = sender.transport
        send = transport._send_rtp
        video, rtx = sender._ssrc, sender._rtx_ssrc

        async def lossy(data: bytes) -> None:
            if len(data) >= 12 and not 192 <= data[1] <= 223:  # RTP, not RTCP
                ssrc = int.from_bytes(data[8:12], "big")
                seq = int.from_bytes(data[2:4], "big")
                lose = self.lose_every and seq % self.lose_every == 0
                if ssrc == rtx or (ssrc == video and lose):
                    self.lost += ssrc == video
                    return
            await send(data)

        transport._send_rtp = lossy  # type: ignore[method-assign]

    async def drop(self) -> None:
        """Fall silent without DELETE, RTCP BYE or a DTLS close, as a killed browser does:
        the server only sees the media stop."""
        for transceiver in self.pc.getTransceivers():
            connection = transceiver.sender.transport.transport.iceGatherer._connection
            for protocol in connection._protocols:
                protocol.transport.close()


KEYFRAMES = 1.0  # MEDIAHOOKS_KEYFRAME_INTERVAL in these tests: a PLI a second


async def start(api_factory: ApiFactory, **overrides: Any) -> Api:
    return await api_factory(webrtc_addresses="127.0.0.1", keyframe_interval=KEYFRAMES, **overrides)


def whip_url(api: Api, stream: str) -> str:
    return f"{api.url}/api/whip/{stream}"
