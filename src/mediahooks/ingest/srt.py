"""The SRT door: a listener for callers (ffmpeg, OBS, GStreamer, hardware encoders) sending
MPEG-TS, routed by their streamid. It authenticates the publish token and hands the stream on to
the live path; it knows nothing of timelines.

libsrt does the protocol in its own threads. This door adds one thread of its own (`_io`) that
accepts and reads every caller through one libsrt epoll; the event loop never makes a libsrt
call. Each caller is decided twice:

1. in libsrt's listen callback, before the handshake completes, from what needs no database:
   the streamid (`streamid.parse`), the stream name, and the token as the in-memory copy knows it
   (`known_tokens`): unknown, not allowed this stream, the stream already live here, too many
   publishers. The passphrase the caller must encrypt with is set on its socket there, so a
   caller without it (or with another) fails its handshake. A refusal carries a reject reason
   (SRT_REJX_*, which the caller's libsrt reports) and is logged;
2. after the handshake, on the loop, against the database (`live.authorize`, then
   `LiveIngest.open`), since the copy may be stale: a refusal then closes the connection.

Bytes go from the thread to the loop in batches (one hand-over per round of `ROUND_SECONDS`, not
per packet) and into the session in order. A session that falls behind stops its socket being
read (back-pressure: libsrt's receive buffer holds the stream meanwhile). A caller that stops
sending is dropped by libsrt after `SRTO_PEERIDLETIMEO`, and its broadcast ends. The thread runs
as a loop of the service's supervisor (`run`): a bug in it ends the process.

Over 400 lines on purpose: the callback, the thread and the loop share one set of callers and
hand them over under rules that only read right side by side; split, each file would hold half of
every hand-over.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import queue
import threading
import time
from dataclasses import dataclass, field

from mediahooks.ingest import libsrt, streamid
from mediahooks.ingest.known_tokens import KnownTokens
from mediahooks.ingest.live import LiveIngest, Refused, Session, authorize
from mediahooks.loops import Beat
from mediahooks.media.ingest import STREAM_NAME
from mediahooks.store import tokens

log = logging.getLogger("mediahooks.srt")
# How often the door's loop tells the supervisor it is alive (its thread has no database work).
BEAT_SECONDS = 5.0

ROUND_SECONDS = 0.05  # the thread hands bytes over at most this often
WAIT_MS = 100  # longest wait in libsrt's epoll: how soon the thread sees commands and the stop
PAUSE_AT = 32  # batches handed over but not yet fed: the socket is read no further
RESUME_AT = 8
SILENCE_MS = 5_000  # a caller silent this long is dropped (SRTO_PEERIDLETIMEO, libsrt's default)
# libsrt's own log goes to stderr; keep its errors, not its warnings (each refusal would be one,
# without the stream or the reason, which this door logs itself).
_LIBSRT_LOG_LEVEL = 3  # syslog's LOG_ERR
BACKLOG = 64
# A caller let in by the callback whose handshake has not completed this long after was refused
# by libsrt itself; with the streamid accepted, that is an encryption mismatch.
HANDSHAKE_SECONDS = 4.0
_MESSAGE = 1500  # more than one SRT live payload (1456 at most)
_REFUSED = {
    "token": libsrt.SRT_REJX_UNAUTHORIZED,
    "stream": libsrt.SRT_REJX_FORBIDDEN,
    "access": libsrt.SRT_REJX_FORBIDDEN,
    "live": libsrt.SRT_REJX_CONFLICT,
    "busy": libsrt.SRT_REJX_OVERLOAD,
    "codec": libsrt.SRT_REJX_NOTSUP_MEDIA,
    "spool": libsrt.SRT_REJX_UNAVAILABLE,
}


@dataclass(frozen=True)
class Admission:
    """What the listen callback let in: the caller's stream and token, and the passphrase set
    on its socket (None: no encryption)."""

    stream: str
    token: str
    passphrase: str | None
    remote: str  # host:port, for the log
    host: str  # the caller's address alone


@dataclass
class _Caller:
    """One accepted caller, as the thread sees it (`sent`) and the loop (`fed`)."""

    sock: int
    admission: Admission
    session: Session | None = None
    batches: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)
    task: asyncio.Task[None] | None = None
    sent = 0  # written by the thread only
    fed = 0  # written by the loop only
    watched = False  # the thread reads it (thread only)


class SrtServer:
    """Takes SRT callers on one UDP port; `port` is the bound one (ask for 0 in tests)."""

    def __init__(self, live: LiveIngest, known: KnownTokens) -> None:
        self.live = live
        self.known = known
        self.port = 0
        self._srt: libsrt.Srt | None = None
        self._listener = -1
        self._eid = -1
        self._hook: object = None  # the C callback, alive as long as the listener
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        # Done when the thread ends: with the exception that broke it, if one did.
        self._ended: asyncio.Future[None] | None = None
        self._commands: queue.SimpleQueue[tuple[str, int]] = queue.SimpleQueue()
        # By socket, from the callback to the thread, with when (monotonic).
        self._admitted: dict[int, tuple[Admission, float]] = {}
        self._callers: dict[int, _Caller] = {}  # by socket; created and removed on the loop
        self._reading: dict[int, _Caller] = {}  # the thread's view of the accepted ones

    async def start(self, host: str, port: int) -> None:
        """Listen on ``host``:``port`` (UDP); libsrt.Unavailable without libsrt, OSError when
        the port cannot be had."""
        self._loop = asyncio.get_running_loop()
        await asyncio.to_thread(self._open, host, port)
        self._ended = self._loop.create_future()
        self._thread = threading.Thread(target=self._io, name="srt", daemon=True)
        self._thread.start()

    async def run(self, beat: Beat) -> None:
        """The door's thread as a loop of the service's supervisor: this raises what broke the
        thread, so a broken SRT door ends the process as any broken loop does (it used to be
        logged while SRT silently stopped). Stopped on purpose (`close`), it waits to be
        cancelled with the other loops."""
        ended = self._ended
        assert ended is not None, "start the door first"
        while not ended.done():
            beat()
            await asyncio.wait([ended], timeout=BEAT_SECONDS)
        failure = ended.exception()
        if failure is not None:
            log.error("srt: the door's thread broke", exc_info=failure)
            # A bug, whatever broke it: the thread cannot be started again, so this must not
            # pass for a database outage (an OSError would) and be retried for ever. Raised
            # outside an `except`, nothing chains it to that error.
            raise RuntimeError(
                f"the SRT door's thread broke ({type(failure).__name__}: {failure}); "
                "SRT callers are no longer read"
            )
        await asyncio.Event().wait()

    def _thread_ended(self, failure: Exception | None) -> None:
        if self._ended is not None and not self._ended.done():
            if failure is None:
                self._ended.set_result(None)
            else:
                self._ended.set_exception(failure)

    def _open(self, host: str, port: int) -> None:
        srt = self._srt = libsrt.load()
        srt.log_level(_LIBSRT_LOG_LEVEL)
        sock = srt.socket()
        try:
            srt.set_int(sock, libsrt.SRTO_TRANSTYPE, libsrt.SRTT_LIVE)
            srt.set_int(sock, libsrt.SRTO_RCVSYN, 0)  # accept without blocking; inherited
            srt.set_int(sock, libsrt.SRTO_PEERIDLETIMEO, SILENCE_MS)
            try:
                srt.bind(sock, host, port)
            except libsrt.SrtError as exc:
                raise OSError(str(exc)) from None
            self._hook = srt.on_caller(sock, self._decide)
            srt.listen(sock, BACKLOG)
            self.port = srt.local_port(sock)
            self._eid = srt.epoll()
            srt.watch(self._eid, sock)
        except BaseException:
            srt.close(sock)
            raise
        self._listener = sock

    async def close(self) -> None:
        """Stop listening; disconnect every caller (their broadcasts end)."""
        self._stop.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)
        for caller in list(self._callers.values()):
            caller.batches.put_nowait(None)
        await asyncio.gather(
            *(c.task for c in self._callers.values() if c.task), return_exceptions=True
        )

    # libsrt's thread: the listen callback

    def _decide(self, sock: int, address: int, raw: str) -> int:
        """Accept (0) or refuse (-1) a caller before its handshake completes."""
        assert self._srt is not None
        host, port = libsrt.peer(address)
        remote = f"{host}:{port}"
        stream = raw[:64]
        try:
            found = streamid.parse(raw)
            stream = found.stream
            passphrase = self._check(found)
        except streamid.StreamIdError as exc:
            return self._refuse(sock, remote, stream, str(exc), libsrt.SRT_REJX_BAD_REQUEST)
        except Refused as exc:
            return self._refuse(sock, remote, stream, exc.reason, _REFUSED[exc.kind])
        if passphrase is not None:
            self._srt.set_text(sock, libsrt.SRTO_PASSPHRASE, passphrase)
        self._admitted[sock] = (
            Admission(stream, found.token, passphrase, remote, host),
            time.monotonic(),
        )
        return 0

    def _check(self, found: streamid.StreamId) -> str | None:
        """What the copy of the tokens says of a caller: Refused, or its passphrase."""
        if not STREAM_NAME.fullmatch(found.stream):
            raise Refused(
                "stream",
                f"{found.stream[:64]!r} is not a stream name: 1-128 letters, digits, '.', '_', '-'",
            )
        if not found.token:
            raise Refused("token", "no publish token: send the streamid <streamName>?t=<token>")
        row = self.known.get(found.token)
        if row is None:
            if not self.known.loaded:
                return None  # not read yet: the database decides after the handshake
            raise Refused("token", "unknown publish token (deleted, or mistyped)")
        if not tokens.allows(row, found.stream):
            raise Refused(
                "stream", f"this publish token may not publish the stream {found.stream!r}"
            )
        if self.live.is_live(row.account_id, found.stream):
            raise Refused(
                "live", f"the stream {found.stream!r} is already live; stop that one first"
            )
        if (refusal := self.live.uploads.refusal()) is not None:
            raise Refused("spool", refusal)
        if self.live.publishers >= self.live.max_publishers:
            raise Refused(
                "busy",
                f"this server takes {self.live.max_publishers} publishers at once; try later",
            )
        passphrase: str | None = row.srt_passphrase
        return passphrase

    def _refuse(self, sock: int, remote: str, stream: str, reason: str, code: int) -> int:
        assert self._srt is not None
        log.info("srt: %s refused for %r: %s", remote, stream, reason)
        self._srt.reject(sock, code)
        return -1

    # The door's thread: accept, read, hand over

    def _io(self) -> None:
        srt = self._srt
        assert srt is not None and self._loop is not None
        buffer = ctypes.create_string_buffer(_MESSAGE)
        failure: Exception | None = None
        try:
            while not self._stop.is_set():
                started = time.monotonic()
                self._obey(srt)
                data: list[tuple[_Caller, bytes | None]] = []
                for event in srt.wait(self._eid, 1 + len(self._reading), WAIT_MS):
                    if event.sock == self._listener:
                        self._accept(srt)
                    elif (caller := self._reading.get(event.sock)) is not None:
                        data.append((caller, self._read(srt, caller, buffer)))
                if data:
                    for caller, chunk in data:
                        if chunk is None:
                            self._forget(srt, caller)
                        elif chunk:
                            caller.sent += 1
                            if caller.sent - caller.fed >= PAUSE_AT:
                                srt.unwatch(self._eid, caller.sock)  # until the session catches up
                                caller.watched = False
                    self._hand_over([(c, d) for c, d in data if d != b""])
                rest = ROUND_SECONDS - (time.monotonic() - started)
                if rest > 0:
                    time.sleep(rest)  # let bytes gather: one hand-over carries many packets
        except Exception as exc:
            failure = exc  # `run` raises it on the loop: the supervisor stops the process
        finally:
            for caller in list(self._reading.values()):
                self._forget(srt, caller)
                self._hand_over([(caller, None)])
            srt.close(self._listener)
            srt.release(self._eid)
            with contextlib.suppress(RuntimeError):  # the loop is gone: the process is ending
                self._loop.call_soon_threadsafe(self._thread_ended, failure)

    def _obey(self, srt: libsrt.Srt) -> None:
        """Commands from the loop, and sockets to read again once their session caught up."""
        while True:
            try:
                what, sock = self._commands.get_nowait()
            except queue.Empty:
                break
            caller = self._reading.get(sock)
            if caller is None:
                if what == "close":
                    srt.close(sock)  # refused before it was ever read
                continue
            if what == "read":
                srt.watch(self._eid, sock)
                caller.watched = True
            elif what == "close":
                self._forget(srt, caller)
        self._handshakes_failed()
        for caller in self._reading.values():
            if not caller.watched and caller.session and caller.sent - caller.fed <= RESUME_AT:
                srt.watch(self._eid, caller.sock)
                caller.watched = True

    def _handshakes_failed(self) -> None:
        """Log the callers let in by the callback that never completed their handshake: libsrt
        refused them for their encryption (SRT_REJ_BADSECRET, SRT_REJ_UNSECURE)."""
        if not self._admitted:
            return
        limit = time.monotonic() - HANDSHAKE_SECONDS
        for sock, (admission, at) in list(self._admitted.items()):
            if at < limit:
                del self._admitted[sock]
                reason = (
                    "wrong or missing passphrase: this token's callers must encrypt with its "
                    "srtPassphrase"
                    if admission.passphrase
                    else "the caller encrypts, but this token has no srtPassphrase: connect "
                    "without one"
                )
                log.info(
                    "srt: %s refused for %r: its handshake failed: %s",
                    admission.remote,
                    admission.stream,
                    reason,
                )

    def _accept(self, srt: libsrt.Srt) -> None:
        """One caller per round: the listener stays ready while more wait (asking once too
        often costs an error line in libsrt's log)."""
        accepted = srt.accept(self._listener)
        if accepted is None:
            return
        sock, _ = accepted
        admitted = self._admitted.pop(sock, None)
        if admitted is None:  # let in without a decision: cannot happen, refuse anyway
            srt.close(sock)
            return
        caller = _Caller(sock, admitted[0])
        self._reading[sock] = caller
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # the loop is gone: the process is ending
            self._loop.call_soon_threadsafe(self._admit, caller)

    def _read(
        self, srt: libsrt.Srt, caller: _Caller, buffer: ctypes.Array[ctypes.c_char]
    ) -> bytes | None:
        """Everything waiting on the caller's socket; None once the connection is over."""
        out = bytearray()
        while True:
            got = srt.receive(caller.sock, buffer)
            if got < 0:
                return bytes(out) if out else None
            if got == 0:
                return bytes(out)
            out += buffer.raw[:got]

    def _forget(self, srt: libsrt.Srt, caller: _Caller) -> None:
        if self._reading.pop(caller.sock, None) is not None:
            if caller.watched:
                srt.unwatch(self._eid, caller.sock)
            srt.close(caller.sock)

    def _hand_over(self, batch: list[tuple[_Caller, bytes | None]]) -> None:
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._deliver, batch)

    # The event loop

    def _deliver(self, batch: list[tuple[_Caller, bytes | None]]) -> None:
        for caller, data in batch:
            caller.batches.put_nowait(data)

    def _admit(self, caller: _Caller) -> None:
        self._callers[caller.sock] = caller
        caller.task = asyncio.create_task(self._run(caller), name=f"srt {caller.admission.stream}")

    async def _run(self, caller: _Caller) -> None:
        """One caller: checked against the database, then its bytes fed to its session."""
        admission = caller.admission
        try:
            try:
                caller.session = await self._session(admission)
            except Refused as exc:
                log.info(
                    "srt: %s refused for %r: %s", admission.remote, admission.stream, exc.reason
                )
                self._commands.put(("close", caller.sock))
                return
            except Exception as exc:  # the database away: the caller may try again later
                log.warning(
                    "srt: %s for %r closed: its token could not be checked (%s: %s)",
                    admission.remote,
                    admission.stream,
                    type(exc).__name__,
                    exc,
                )
                self._commands.put(("close", caller.sock))
                return
            self._commands.put(("read", caller.sock))
            while (data := await caller.batches.get()) is not None:
                await caller.session.feed(data)
                caller.fed += 1
                if caller.session.failed:
                    log.info(
                        "srt: %s refused for %r: %s",
                        admission.remote,
                        admission.stream,
                        caller.session.failed,
                    )
                    self._commands.put(("close", caller.sock))
                    return
        finally:
            self._callers.pop(caller.sock, None)
            if caller.session is not None:
                await caller.session.close()

    async def _session(self, admission: Admission) -> Session:
        publisher = await authorize(self.live.db, admission.token, admission.stream, admission.host)
        wanted = publisher.srt_passphrase
        if wanted != admission.passphrase:
            # The copy of the tokens was stale: the caller did not encrypt as the token says.
            self.known.learn(publisher)
            reason = (
                "this token's streams need SRT encryption: set its srtPassphrase on the caller"
                if wanted
                else "this token no longer has an SRT passphrase: connect again without one"
            )
            raise Refused("token", reason)
        return await self.live.open(publisher, admission.stream, "mpegts", admission.remote)
