"""Who is watching: viewer sessions per stream and the `viewerConnection` events they cause
(pure; times are seconds on any monotonic clock).

- `ViewerAttempt`: someone asked for a stream that is not live; at most one per interval
  (10 s on the platform) per stream while attempts keep coming.
- `FirstViewerConnection`: a live stream without an audience got a viewer.
- `NoActiveViewers`: the last viewer left (stopped fetching for the session timeout) and none
  came back within the delay (60 s on the platform), which spares hooks for a viewer who only
  reloaded. A later viewer makes a new `FirstViewerConnection`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ATTEMPT = "ViewerAttempt"
FIRST = "FirstViewerConnection"
NONE_LEFT = "NoActiveViewers"

StreamKey = tuple[str, str]  # (account id, stream name)


@dataclass
class _Stream:
    sessions: dict[str, float] = field(default_factory=dict)  # session id -> last fetch
    announced: bool = False  # FirstViewerConnection sent, NoActiveViewers not yet
    empty_since: float | None = None
    last_attempt: float | None = None


@dataclass
class Audience:
    session_timeout: float = 10.0
    no_viewers_delay: float = 60.0
    attempt_interval: float = 10.0
    _streams: dict[StreamKey, _Stream] = field(default_factory=dict)

    def _stream(self, key: StreamKey) -> _Stream:
        return self._streams.setdefault(key, _Stream())

    def seen(self, key: StreamKey, session: str, now: float) -> list[str]:
        """A live stream's playlist or segment was fetched by ``session``."""
        stream = self._stream(key)
        stream.sessions[session] = now
        stream.empty_since = None
        if stream.announced:
            return []
        stream.announced = True
        return [FIRST]

    def attempted(self, key: StreamKey, now: float) -> list[str]:
        """Someone asked to watch the stream while it is not live."""
        stream = self._stream(key)
        if stream.last_attempt is not None and now - stream.last_attempt < self.attempt_interval:
            return []
        stream.last_attempt = now
        return [ATTEMPT]

    def count(self, key: StreamKey) -> int:
        stream = self._streams.get(key)
        return 0 if stream is None else len(stream.sessions)

    def tick(self, now: float) -> list[tuple[StreamKey, str]]:
        """End the sessions that stopped fetching; the events that are now due."""
        due: list[tuple[StreamKey, str]] = []
        for key, stream in list(self._streams.items()):
            gone = [s for s, last in stream.sessions.items() if now - last > self.session_timeout]
            for session in gone:
                # It left when it last fetched: the delay counts from there.
                left = stream.sessions.pop(session) + self.session_timeout
                if not stream.sessions:
                    stream.empty_since = max(stream.empty_since or left, left)
            if (
                stream.announced
                and not stream.sessions
                and stream.empty_since is not None
                and now - stream.empty_since >= self.no_viewers_delay
            ):
                stream.announced = False
                stream.empty_since = None
                due.append((key, NONE_LEFT))
            quiet = (
                stream.last_attempt is None or now - stream.last_attempt >= self.attempt_interval
            )
            if not stream.sessions and not stream.announced and quiet:
                del self._streams[key]  # nothing left to remember
        return due
