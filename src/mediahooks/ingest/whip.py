"""WebRTC publishing (WHIP, RFC 9725): a publisher's offer in, a broadcast on the live path.

`WhipIngest.publish` checks the offer (H.264 or VP8 video, H.264 preferred; Opus audio if
any), answers with host candidates on the configured addresses (`ice.restrict`), opens the live
`Session` and then receives. H.264 access units pass through untouched (`rtp_frames.tap`), Opus
is decoded by aiortc and re-encoded to AAC, both muxed to MPEG-TS (`rtp_mux`) and fed to the
session like RTMP's FLV: an MP4 timeline. VP8 frames and Opus packets both pass through
untouched into live WebM (`webm_mux`): a WebM timeline (`media.containers`). aiortc receives
neither VP9 nor AV1, so an offer of only those is refused. A keyframe is asked for (PLI)
every `keyframe_interval` so timelines have places to cut, and at once after a loss. The
broadcast ends at `end` (the publisher's DELETE), when ICE fails or closes, or when
no video came for the idle timeout. A DELETE that reaches another API process (behind a load
balancer) marks the broadcast in the database (`stop_elsewhere`); the live session reads the
mark with its token and ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Literal

from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.sdp import SessionDescription
from av.audio.frame import AudioFrame

from mediahooks.clock import now_ms
from mediahooks.config import Settings, addresses, port_range
from mediahooks.ingest import ice, rtp_frames
from mediahooks.ingest.live import LiveIngest, Session
from mediahooks.ingest.remux import Container
from mediahooks.ingest.rtp_mux import TsWriter
from mediahooks.ingest.webm_mux import WebmWriter, is_vp8_keyframe
from mediahooks.store import timelines
from mediahooks.store.schema import DbRow

log = logging.getLogger("mediahooks.ingest")

# After a loss, keyframes are asked for at most this often (s) while none has come.
_PLI_AFTER_LOSS = 0.5
# How long a publisher has to complete ICE and DTLS after the answer.
_CONNECT_SECONDS = 15.0


@dataclass(frozen=True)
class Offer:
    """What a publisher's SDP offer sends."""

    video: bool
    audio: bool
    codec: Literal["h264", "vp8"] = "h264"  # the video codec answered


def read_offer(sdp: str) -> Offer:
    """The offer's media, or ValueError saying what to change."""
    if not sdp.lstrip().startswith("v=0"):
        raise ValueError("the body is not an SDP offer (it starts with 'v=0')")
    try:
        parsed = SessionDescription.parse(sdp)
    except Exception as exc:  # aiortc's parser raises whatever the text trips it on
        raise ValueError(f"the body is not an SDP offer ({type(exc).__name__})") from exc
    video = audio = False
    codec: Literal["h264", "vp8"] = "h264"
    for media in parsed.media:
        names = {c.name.lower() for c in media.rtp.codecs}
        if media.kind == "video" and media.direction in (None, "sendonly", "sendrecv"):
            if "h264" not in names and "vp8" not in names:
                raise ValueError(
                    "the offer's video is "
                    + (", ".join(sorted(names)) or "without codecs")
                    + ": send H.264 (packetization-mode 1) or VP8 (VP9 and AV1 are not taken)"
                )
            codec = "h264" if "h264" in names else "vp8"  # H.264 preferred: MP4 clips
            video = True
        elif media.kind == "audio" and media.direction in (None, "sendonly", "sendrecv"):
            if "opus" not in names:
                raise ValueError(f"the offer's audio is {', '.join(sorted(names))}: send Opus")
            audio = True
    if not video:
        raise ValueError("the offer sends no video: add a video track (H.264 or VP8)")
    return Offer(video, audio, codec)


class WhipIngest:
    """The process's WHIP publishers, by resource id."""

    def __init__(self, live: LiveIngest, settings: Settings) -> None:
        self.live = live
        self.keyframe_interval = settings.keyframe_interval
        self.idle_timeout = settings.idle_timeout
        self.addresses = addresses(settings.webrtc_addresses) or ice.default_addresses()
        self.ports = port_range(settings.webrtc_ports)
        self.sessions: dict[str, WhipSession] = {}

    async def publish(self, publisher: DbRow, stream: str, sdp: str, remote: str) -> WhipSession:
        """Answer ``sdp``, start the broadcast and receive; ValueError for an offer that
        cannot be taken, Refused as `live.open` refuses.

        The offer is answered first: an offer refused is no broadcast (no `feeds` hooks)."""
        offer = read_offer(sdp)
        whip = WhipSession(self, stream, offer)
        try:
            await whip.answer(sdp)
        except Exception as exc:
            await whip.end("the offer could not be answered")
            # aiortc says what it could not take (no ICE credentials, no fingerprint, ...).
            raise ValueError(f"the offer cannot be answered: {exc}") from exc
        try:
            container: Container = "mpegts" if offer.codec == "h264" else "webm"
            session = await self.live.open(publisher, stream, container, remote)
        except BaseException:
            await whip.end("refused")
            raise
        whip.start(session)
        self.sessions[whip.id] = whip
        try:  # so that a DELETE reaching another process finds it (`stop_elsewhere`)
            async with self.live.db.transaction() as conn:
                await timelines.set_whip_resource(conn, session.broadcast.id, whip.id)
        except BaseException:
            await whip.end("the session could not be recorded")
            raise
        return whip

    async def stop_elsewhere(self, stream: str, resource: str) -> bool:
        """End a session another process receives: mark its broadcast, which that process
        reads within `live.TOKEN_CHECK_SECONDS`. False when no live session has that id."""
        async with self.live.db.transaction() as conn:
            return await timelines.request_stop(conn, stream, resource, now_ms())

    def get(self, resource: str) -> WhipSession | None:
        return self.sessions.get(resource)

    async def close(self) -> None:
        await asyncio.gather(
            *(s.end("the server is stopping") for s in list(self.sessions.values()))
        )


class WhipSession:
    """One WHIP publisher: its peer connection and its broadcast."""

    def __init__(self, ingest: WhipIngest, stream: str, offer: Offer) -> None:
        self.ingest = ingest
        self.stream = stream
        self.session: Session | None = None
        self.offer = offer
        self.id = secrets.token_urlsafe(18)
        self.etag = f'"{secrets.token_hex(8)}"'
        self.answer_sdp = ""
        self.ended: str | None = None
        self._pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        # H.264 into MPEG-TS (Opus to AAC); VP8 and Opus as they came into WebM.
        self._writer: TsWriter | WebmWriter = (
            TsWriter(audio=offer.audio) if offer.codec == "h264" else WebmWriter(offer.audio)
        )
        self._keyframe = rtp_frames.is_keyframe if offer.codec == "h264" else is_vp8_keyframe
        self._continuity = rtp_frames.Continuity(self._keyframe)
        self._media: asyncio.Queue[tuple[Literal["video", "audio"], object, float] | None] = (
            asyncio.Queue()
        )
        self._video: RTCRtpReceiver | None = None
        self._audio_tapped = False
        self._last_video = time.monotonic()
        self._last_pli = 0.0
        self._tasks: list[asyncio.Task[None]] = []
        self._ending: asyncio.Task[None] | None = None

    async def answer(self, sdp: str) -> None:
        pc = self._pc
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        for transceiver in pc.getTransceivers():
            self._prefer(transceiver)
        ice.restrict(pc, self.ingest.addresses, self.ingest.ports)
        pc.on("connectionstatechange", self._state_changed)
        await pc.setLocalDescription(await pc.createAnswer())
        self.answer_sdp = pc.localDescription.sdp

    def start(self, session: Session) -> None:
        """Receive into ``session``."""
        pc = self._pc
        self.session = session
        self._tasks = [
            asyncio.create_task(self._mux(), name=f"whip mux {self.stream}"),
            asyncio.create_task(self._watch(), name=f"whip watch {self.stream}"),
        ]
        audio = [t for t in pc.getTransceivers() if t.kind == "audio"]
        if audio and self.offer.audio and isinstance(self._writer, TsWriter):
            track = audio[0].receiver.track  # decoded by aiortc, for AAC
            self._tasks.append(asyncio.create_task(self._audio(track)))

    def _prefer(self, transceiver: RTCRtpTransceiver) -> None:
        """Receive only: the offer's video codec (then its retransmissions), Opus for audio.
        One audio track goes into the stream: the first."""
        transceiver.direction = "recvonly"
        kind = transceiver.kind
        wanted = (f"video/{self.offer.codec}", "video/rtx") if kind == "video" else ("audio/opus",)
        codecs = RTCRtpReceiver.getCapabilities(kind)
        assert codecs is not None
        transceiver.setCodecPreferences([c for c in codecs.codecs if c.mimeType.lower() in wanted])
        if kind == "video" and self._video is None:
            self._video = transceiver.receiver
            rtp_frames.tap(transceiver.receiver, self._on_video)
        elif kind == "audio" and not self._audio_tapped and isinstance(self._writer, WebmWriter):
            self._audio_tapped = True  # Opus packets as they came, for WebM
            rtp_frames.tap(transceiver.receiver, self._on_opus, video=False)

    def _on_video(self, frame: rtp_frames.Frame | None) -> None:
        """In the loop, from the receiver: a reassembled frame, or None at the end."""
        self._media.put_nowait(None if frame is None else ("video", frame, time.monotonic()))

    def _on_opus(self, frame: JitterFrame | None) -> None:
        """In the loop, from the audio receiver: an Opus packet (None at the end: the video's
        end ends the stream)."""
        if frame is not None:
            self._media.put_nowait(("audio", frame, time.monotonic()))

    async def _audio(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if isinstance(frame, AudioFrame):
                self._media.put_nowait(("audio", frame, time.monotonic()))

    async def _mux(self) -> None:
        """Frames into the writer, its bytes into the session, in arrival order."""
        writer, session = self._writer, self.session
        assert session is not None
        while True:
            item = await self._media.get()
            if item is None:
                break
            kind, frame, arrived = item
            if kind == "video":
                assert isinstance(frame, rtp_frames.Frame)
                self._last_video = time.monotonic()
                if not self._continuity.accept(frame):
                    await self._ask_keyframe(_PLI_AFTER_LOSS)
                    continue
                writer.video(frame.data, frame.timestamp, self._keyframe(frame.data), arrived)
            elif isinstance(writer, WebmWriter):
                assert isinstance(frame, JitterFrame)
                writer.audio(frame.data, frame.timestamp, arrived)
            else:
                assert isinstance(frame, AudioFrame)
                writer.audio(frame, arrived)
            data = writer.take()
            if data:
                await session.feed(data)
            if session.failed:
                self._end_soon(session.failed)
                return
        await session.feed(writer.close())
        self._end_soon("the publisher's video ended")

    async def _watch(self) -> None:
        """Keyframes every interval; the end when ICE never connects or video stops."""
        started = time.monotonic()
        while True:
            await asyncio.sleep(min(self.ingest.keyframe_interval, 1.0))
            now = time.monotonic()
            if self._pc.connectionState != "connected":
                if now - started > _CONNECT_SECONDS:
                    self._end_soon("ICE and DTLS did not connect")
                    return
                continue
            if self.session is not None and self.session.failed:
                self._end_soon(self.session.failed)  # e.g. a DELETE on another process
                return
            if now - self._last_video > self.ingest.idle_timeout:
                self._end_soon(f"no video for {self.ingest.idle_timeout:g} s")
                return
            await self._ask_keyframe(self.ingest.keyframe_interval)

    async def _ask_keyframe(self, unless_within: float) -> None:
        now = time.monotonic()
        if self._video is None or now - self._last_pli < unless_within:
            return
        self._last_pli = now
        for source in self._video.getSynchronizationSources():
            with contextlib.suppress(ConnectionError):
                await self._video._send_rtcp_pli(source.source)

    def _state_changed(self) -> None:
        if self._pc.connectionState in ("failed", "closed"):
            self._end_soon(f"the WebRTC connection {self._pc.connectionState}")

    def _end_soon(self, reason: str) -> None:
        if self._ending is None:
            self._ending = asyncio.create_task(self.end(reason))

    async def end(self, reason: str) -> None:
        """Stop receiving and end the broadcast (idempotent)."""
        if self.ended is not None:
            return
        self.ended = reason
        self.ingest.sessions.pop(self.id, None)
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current and task is not self._ending:
                task.cancel()
        with contextlib.suppress(Exception):
            await self._pc.close()
        if self.session is None:
            return  # refused: no broadcast was started
        try:
            with contextlib.suppress(Exception):
                await self.session.feed(self._writer.close())
        finally:
            await self.session.close()
        log.info("whip: %s ended: %s (%d gaps)", self.stream, reason, self._continuity.gaps)
