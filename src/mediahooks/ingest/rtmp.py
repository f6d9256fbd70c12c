"""The RTMP door: an asyncio server for publishers (OBS, ffmpeg, GStreamer...), RTMPS when given
a certificate. It authenticates the publish token and hands the media, as FLV, to the live path;
it knows nothing of timelines. Section numbers are those of Adobe's RTMP specification (2012).

Time limits: a connection must be publishing within `SETUP_SECONDS` of connecting, and a
publisher silent for `SILENCE_SECONDS` is closed. Bytes that are not RTMP are closed at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mediahooks.ingest import amf0, flv, rtmp_url
from mediahooks.ingest import rtmp_chunks as wire
from mediahooks.ingest.live import LiveIngest, Refused, Session, authorize
from mediahooks.ingest.rtmp_chunks import Message

log = logging.getLogger("mediahooks.rtmp")

SETUP_SECONDS = 10.0
SILENCE_SECONDS = 10.0
LINGER_SECONDS = 1.0
WINDOW = 2_500_000  # §5.4.4/§5.4.5: bytes between acknowledgements, each way
OUT_CHUNK_SIZE = 4096
_READ = 64 * 1024
# §5.3.1.1: chunk stream 2 is for control messages; commands and statuses get their own.
_CONTROL_CSID, _COMMAND_CSID, _STATUS_CSID = 2, 3, 5
_MEDIA_STREAM_ID = 1  # the one message stream `createStream` hands out


class RtmpServer:
    """Accepts publishers on one port; `port` is the bound one (ask for 0 in tests)."""

    def __init__(self, live: LiveIngest) -> None:
        self.live = live
        self.port = 0
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[Any]] = set()

    async def start(self, host: str, port: int, tls: ssl.SSLContext | None = None) -> None:
        self._server = await asyncio.start_server(
            self._accept, host, port, ssl=tls, ssl_handshake_timeout=SETUP_SECONDS if tls else None
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop accepting; disconnect every publisher (their broadcasts end)."""
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        peer = writer.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, Sequence) else None
        remote = f"{peer[0]}:{peer[1]}" if isinstance(peer, Sequence) else str(peer)
        connection = _Connection(self.live, reader, writer, remote, address)
        try:
            await connection.run()
        except TimeoutError:
            what = "silent" if connection.session else "not publishing"
            log.info("rtmp: %s closed: %s after %g s", remote, what, SETUP_SECONDS)
        except (wire.ProtocolError, amf0.AmfError) as exc:
            log.info("rtmp: %s closed: %s", remote, exc)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass  # the publisher went away; whatever it sent is kept
        finally:
            self._connections.discard(task)
            if connection.session is not None:
                await connection.session.close()
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


def tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


class _Connection:
    """One client connection: handshake, commands, then media into a live session."""

    def __init__(
        self,
        live: LiveIngest,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        remote: str,
        address: str | None,
    ) -> None:
        self.live = live
        self.reader = reader
        self.writer = writer
        self.remote = remote  # address and port, for the log
        self.address = address  # the IP address a token's allowedIpAddresses are checked on
        self.chunks = wire.ChunkReader()
        self.session: Session | None = None
        self.app = ""
        self.tc_url = ""
        self.received = 0
        self.acknowledged = 0
        self.peer_window = 0  # §5.4.4: the client asks for an acknowledgement every this many
        self.closing = False
        self.deadline = 0.0
        self.chunk_size = wire.DEFAULT_CHUNK_SIZE  # ours, until our Set Chunk Size is sent
        self.media = bytearray()  # FLV tags read but not yet handed to the session

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self.deadline = loop.time() + SETUP_SECONDS
        await self._handshake()
        while not self.closing:
            wait = SILENCE_SECONDS if self.session else self.deadline - loop.time()
            data = await asyncio.wait_for(self.reader.read(_READ), max(wait, 0))
            if not data:
                return
            self.received += len(data)
            for message in self.chunks.feed(data):
                await self._message(message, self.media)
                if self.closing:
                    return
            if self.peer_window and self.received - self.acknowledged >= self.peer_window:
                self.acknowledged = self.received  # §5.4.3
                self._send(_CONTROL_CSID, wire.acknowledgement(self.received))
            # One hand-over per read, not per message: the queue to the demuxer costs per item.
            await self._flush()
            if self.session is not None and self.session.failed:
                reason, stream = self.session.failed, self.session.stream
                log.info("rtmp: %s refused for %r: %s", self.remote, stream, reason)
                await self._refuse("NetStream.Publish.Rejected", reason)
                await self._linger()
            await self.writer.drain()

    async def _flush(self) -> None:
        if self.media and self.session is not None:
            await self.session.feed(bytes(self.media))
        self.media.clear()

    async def _handshake(self) -> None:
        """§5.2: C0 must say version 3; anything else is not (plain) RTMP and is closed."""
        c0 = await self._read_exactly(1)
        if c0[0] != wire.VERSION:
            raise wire.ProtocolError(f"not RTMP (first byte {c0[0]:#04x})")
        c1 = await self._read_exactly(wire.HANDSHAKE_SIZE)
        self.writer.write(wire.server_hello(c1))
        await self.writer.drain()
        await self._read_exactly(wire.HANDSHAKE_SIZE)  # C2: our S1 echoed, nothing to check

    async def _read_exactly(self, count: int) -> bytes:
        left = self.deadline - asyncio.get_running_loop().time()
        return await asyncio.wait_for(self.reader.readexactly(count), max(left, 0))

    async def _message(self, message: Message, media: bytearray) -> None:
        kind = message.type_id
        if kind in (wire.AUDIO, wire.VIDEO):
            if self.session is not None and message.payload:
                media += flv.tag(kind, message.timestamp, message.payload)
        elif kind == wire.AGGREGATE:  # §7.1.6: FLV tags, one after another
            if self.session is not None:
                media += _unaggregate(message)
        elif kind in (wire.DATA_AMF0, wire.DATA_AMF3):
            self._data(message, media)
        elif kind in (wire.COMMAND_AMF0, wire.COMMAND_AMF3):
            payload = message.payload[1:] if kind == wire.COMMAND_AMF3 else message.payload
            await self._command(amf0.decode_all(payload), message.stream_id)
        elif kind == wire.WINDOW_ACK_SIZE and len(message.payload) >= 4:
            self.peer_window = int.from_bytes(message.payload[:4], "big")
        # Acknowledgements, user control (pings, buffer lengths) and peer bandwidth need nothing.

    def _data(self, message: Message, media: bytearray) -> None:
        """`@setDataFrame` (§7.1.2) carries the stream's metadata: it goes in as the FLV's
        `onMetaData` script tag, as a recording tool would write it."""
        payload = message.payload[1:] if message.type_id == wire.DATA_AMF3 else message.payload
        prefix = amf0.encode("@setDataFrame")
        if self.session is not None and payload.startswith(prefix):
            media += flv.tag(flv.SCRIPT, message.timestamp, payload[len(prefix) :])

    async def _command(self, values: list[Any], stream_id: int) -> None:
        """§7.2: the NetConnection and NetStream commands a publisher sends."""
        if len(values) < 2 or not isinstance(values[0], str):
            raise wire.ProtocolError("a command without a name and transaction id")
        name, txid, args = values[0], values[1], values[2:]
        if name == "connect":  # §7.2.1.1
            await self._connect(txid, args[0] if args and isinstance(args[0], dict) else {})
        elif name == "createStream":  # §7.2.1.3
            self._result(txid, None, float(_MEDIA_STREAM_ID))
        elif name == "publish":  # §7.2.2.6
            publish_name = args[1] if len(args) > 1 and isinstance(args[1], str) else ""
            await self._publish(publish_name, stream_id or _MEDIA_STREAM_ID)
        elif name in ("FCUnpublish", "deleteStream", "closeStream"):
            if self.session is not None:
                await self._flush()  # the media read before the command still counts
                session, self.session = self.session, None
                await session.close()
                self._status("status", "NetStream.Unpublish.Success", "Stopped publishing.")
            self._reply_if_asked(txid)
        elif name in ("play", "play2"):
            await self._refuse("NetStream.Play.Failed", "this server takes publishers only")
        else:  # releaseStream, FCPublish, getStreamLength...: nothing to do
            self._reply_if_asked(txid)

    async def _connect(self, txid: Any, command: dict[str, Any]) -> None:
        self.app = str(command.get("app", ""))
        self.tc_url = str(command.get("tcUrl", ""))
        if rtmp_url.app_name(self.app) != rtmp_url.APP:
            reason = f"unknown application {self.app!r}: publish to rtmp://HOST:PORT/v2/pub"
            log.info("rtmp: %s refused: %s", self.remote, reason)
            self._send_command(
                "_error", txid, None, _info("error", "NetConnection.Connect.Rejected", reason)
            )
            self.closing = True
            return
        self._send(_CONTROL_CSID, wire.window_ack_size(WINDOW))
        self._send(_CONTROL_CSID, wire.set_peer_bandwidth(WINDOW))
        self._send(_CONTROL_CSID, wire.set_chunk_size(OUT_CHUNK_SIZE))
        self._result(
            txid,
            {"fmsVer": "FMS/3,0,1,123", "capabilities": 31.0},
            {
                **_info("status", "NetConnection.Connect.Success", "Connection succeeded."),
                "objectEncoding": 0.0,
            },
        )

    async def _publish(self, publish_name: str, stream_id: int) -> None:
        if self.session is not None:
            raise wire.ProtocolError("publish twice on one connection")
        found = rtmp_url.target(self.app, self.tc_url, publish_name)
        try:
            publisher = await authorize(self.live.db, found.token, found.stream, self.address)
            self.session = await self.live.open(publisher, found.stream, "flv", self.remote)
        except Refused as exc:
            log.info("rtmp: %s refused for %r: %s", self.remote, found.stream, exc.reason)
            await self._refuse("NetStream.Publish.BadName", exc.reason)
            return
        self._send(_CONTROL_CSID, wire.stream_begin(stream_id))
        self._status("status", "NetStream.Publish.Start", f"{found.stream} is now published.")
        await self.session.feed(flv.header())

    async def _refuse(self, code: str, reason: str) -> None:
        """Tell the client why (it shows the description), then hang up."""
        self._status("error", code, reason)
        self.closing = True
        with contextlib.suppress(ConnectionError):
            await self.writer.drain()

    async def _linger(self) -> None:
        """A publisher in full flow reads what the server says only between writes: keep
        reading (and dropping) its media a moment, so it sees the reason, not a broken pipe."""
        with contextlib.suppress(TimeoutError, ConnectionError):
            async with asyncio.timeout(LINGER_SECONDS):
                while await self.reader.read(_READ):
                    pass

    def _status(self, level: str, code: str, description: str) -> None:
        """§7.2.2: onStatus on the media stream."""
        info = _info(level, code, description)
        message = Message(
            wire.COMMAND_AMF0, _MEDIA_STREAM_ID, 0, amf0.encode("onStatus", 0.0, None, info)
        )
        self._send(_STATUS_CSID, message)

    def _reply_if_asked(self, txid: Any) -> None:
        if isinstance(txid, float) and txid > 0:
            self._result(txid, None, amf0.UNDEFINED)

    def _result(self, txid: Any, *values: Any) -> None:
        self._send_command("_result", txid, *values)

    def _send_command(self, name: str, txid: Any, *values: Any) -> None:
        payload = amf0.encode(name, txid, *values)
        self._send(_COMMAND_CSID, Message(wire.COMMAND_AMF0, 0, 0, payload))

    def _send(self, csid: int, message: Message) -> None:
        self.writer.write(wire.chunks(csid, message, self.chunk_size))
        if message.type_id == wire.SET_CHUNK_SIZE:  # §5.4.1: from the next chunk on
            self.chunk_size = int.from_bytes(message.payload, "big")


def _info(level: str, code: str, description: str) -> dict[str, Any]:
    return {"level": level, "code": code, "description": description}


def _unaggregate(message: Message) -> bytes:
    """§7.1.6: the FLV tags of an aggregate message, their timestamps moved so the first one
    falls on the message's own."""
    body, out, pos, first = message.payload, bytearray(), 0, None
    while pos + 11 <= len(body):
        kind, size = body[pos], int.from_bytes(body[pos + 1 : pos + 4], "big")
        stamp = int.from_bytes(body[pos + 4 : pos + 7], "big") | body[pos + 7] << 24
        if pos + 11 + size > len(body):
            break
        first = stamp if first is None else first
        if kind in (flv.AUDIO, flv.VIDEO):
            out += flv.tag(
                kind, message.timestamp + stamp - first, body[pos + 11 : pos + 11 + size]
            )
        pos += 11 + size + 4  # the tag, then its PreviousTagSize
    return bytes(out)
