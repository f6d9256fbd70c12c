"""A thin ctypes binding of libsrt (Haivision's SRT library, Debian's `libsrt1.5-openssl`):
the few calls a listener needs, and nothing of policy.

No maintained Python binding offers a listener callback (the hook that reads a caller's
streamid before the handshake completes), so this is ours. Names and numbers are those of
`srt.h` and `access_control.h` of SRT 1.5. Every call here may block or take libsrt's locks:
call them from the SRT door's own thread, never on the event loop.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import ipaddress
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass

# SRT_SOCKOPT (srt.h)
SRTO_RCVSYN = 2
SRTO_PASSPHRASE = 26
SRTO_PBKEYLEN = 27
SRTO_KMSTATE = 28
SRTO_STREAMID = 46
SRTO_TRANSTYPE = 50
SRTO_ENFORCEDENCRYPTION = 53
SRTO_PEERIDLETIMEO = 55
SRTT_LIVE = 0
# SRT_SOCKSTATUS
SRTS_CONNECTED = 5
SRTS_BROKEN = 6
# SRT_KM_STATE: the connection's encryption is in force
SRT_KM_S_SECURED = 2
# SRT_EPOLL_OPT
SRT_EPOLL_IN = 0x1
SRT_EPOLL_ERR = 0x8
# SRT_ERRNO: the non-blocking call would have to wait
SRT_EASYNCRCV = 6002
SRT_INVALID_SOCK = -1
# Reject reasons a listener callback may give (access_control.h): 1000 + an HTTP-like code.
SRT_REJX_BAD_REQUEST = 1400
SRT_REJX_UNAUTHORIZED = 1401
SRT_REJX_OVERLOAD = 1402
SRT_REJX_FORBIDDEN = 1403
SRT_REJX_CONFLICT = 1409
SRT_REJX_NOTSUP_MEDIA = 1415
SRT_REJX_UNAVAILABLE = 1503
MAX_STREAMID = 512
# Where Debian's packages put it: `libsrt1.5-openssl` and `libsrt1.5-gnutls` ship these names.
_NAMES = ("libsrt.so.1.5", "libsrt-gnutls.so.1.5", "libsrt-openssl.so.1.5", "libsrt.so")
_SOCKADDR_STORAGE = 128

# int (*)(void* opaque, SRTSOCKET ns, int hsversion, const struct sockaddr* peer,
#         const char* streamid)
ListenCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p
)


class Unavailable(Exception):
    """libsrt cannot be loaded: the SRT door stays off (the message says what to install)."""


class SrtError(Exception):
    def __init__(self, call: str, code: int, text: str) -> None:
        super().__init__(f"{call}: {text} ({code})")
        self.code = code


class _EpollEvent(ctypes.Structure):
    _fields_ = [("fd", ctypes.c_int), ("events", ctypes.c_int)]


@dataclass(frozen=True)
class Event:
    sock: int
    readable: bool
    failed: bool


class Srt:
    """libsrt, loaded and started once per process (`load`)."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self._lib = lib
        int_, sock, ptr = ctypes.c_int, ctypes.c_int, ctypes.c_void_p
        for name, restype, argtypes in (
            ("srt_startup", int_, []),
            ("srt_create_socket", sock, []),
            ("srt_setsockflag", int_, [sock, int_, ptr, int_]),
            ("srt_getsockflag", int_, [sock, int_, ptr, ctypes.POINTER(int_)]),
            ("srt_bind", int_, [sock, ptr, int_]),
            ("srt_listen", int_, [sock, int_]),
            ("srt_listen_callback", int_, [sock, ListenCallback, ptr]),
            ("srt_accept", sock, [sock, ptr, ctypes.POINTER(int_)]),
            ("srt_recvmsg", int_, [sock, ctypes.c_char_p, int_]),
            ("srt_close", int_, [sock]),
            ("srt_getsockname", int_, [sock, ptr, ctypes.POINTER(int_)]),
            ("srt_getsockstate", int_, [sock]),
            ("srt_getlasterror", int_, [ctypes.POINTER(int_)]),
            ("srt_getlasterror_str", ctypes.c_char_p, []),
            ("srt_setrejectreason", int_, [sock, int_]),
            ("srt_epoll_create", int_, []),
            ("srt_epoll_add_usock", int_, [int_, sock, ctypes.POINTER(int_)]),
            ("srt_epoll_remove_usock", int_, [int_, sock]),
            ("srt_epoll_uwait", int_, [int_, ctypes.POINTER(_EpollEvent), int_, ctypes.c_int64]),
            ("srt_epoll_release", int_, [int_]),
            ("srt_setloglevel", None, [int_]),
        ):
            function = getattr(lib, name)
            function.restype, function.argtypes = restype, argtypes
        self._check("srt_startup", lib.srt_startup())

    # Errors

    def last_error(self) -> tuple[int, str]:
        code = self._lib.srt_getlasterror(None)
        text = self._lib.srt_getlasterror_str()
        return int(code), text.decode(errors="replace") if text else ""

    def _check(self, call: str, result: int) -> int:
        if result < 0:
            code, text = self.last_error()
            raise SrtError(call, code, text)
        return result

    # Sockets and their options

    def socket(self) -> int:
        return self._check("srt_create_socket", self._lib.srt_create_socket())

    def set_int(self, sock: int, option: int, value: int) -> None:
        data = ctypes.c_int(value)
        self._check(
            "srt_setsockflag",
            self._lib.srt_setsockflag(sock, option, ctypes.byref(data), ctypes.sizeof(data)),
        )

    def set_text(self, sock: int, option: int, value: str) -> None:
        data = value.encode()
        self._check("srt_setsockflag", self._lib.srt_setsockflag(sock, option, data, len(data)))

    def get_int(self, sock: int, option: int) -> int:
        data, size = ctypes.c_int(0), ctypes.c_int(ctypes.sizeof(ctypes.c_int))
        self._check(
            "srt_getsockflag",
            self._lib.srt_getsockflag(sock, option, ctypes.byref(data), ctypes.byref(size)),
        )
        return data.value

    def get_text(self, sock: int, option: int, limit: int = MAX_STREAMID) -> str:
        buffer, size = ctypes.create_string_buffer(limit + 1), ctypes.c_int(limit + 1)
        self._check(
            "srt_getsockflag",
            self._lib.srt_getsockflag(sock, option, buffer, ctypes.byref(size)),
        )
        return buffer.raw[: size.value].decode(errors="replace")

    def state(self, sock: int) -> int:
        return int(self._lib.srt_getsockstate(sock))

    def close(self, sock: int) -> None:
        self._lib.srt_close(sock)  # a socket already gone is no error worth raising

    # The listener

    def bind(self, sock: int, host: str, port: int) -> None:
        address = sockaddr(host, port)
        self._check("srt_bind", self._lib.srt_bind(sock, address, len(address)))

    def local_port(self, sock: int) -> int:
        buffer = ctypes.create_string_buffer(_SOCKADDR_STORAGE)
        size = ctypes.c_int(_SOCKADDR_STORAGE)
        self._check("srt_getsockname", self._lib.srt_getsockname(sock, buffer, ctypes.byref(size)))
        return peer(ctypes.addressof(buffer))[1]

    def listen(self, sock: int, backlog: int) -> None:
        self._check("srt_listen", self._lib.srt_listen(sock, backlog))

    def on_caller(self, sock: int, callback: Callable[[int, int, str], int]) -> object:
        """Have ``callback(new socket, peer sockaddr address, streamid)`` decide each caller
        (0 accepts, -1 refuses). Returns the C wrapper: keep it as long as the listener."""

        def hook(
            _opaque: int | None, ns: int, _hs: int, addr: int | None, sid: bytes | None
        ) -> int:
            try:
                return callback(ns, addr or 0, (sid or b"").decode(errors="replace"))
            except BaseException:  # an exception must not escape into C: refuse instead
                return -1

        wrapper = ListenCallback(hook)
        self._check("srt_listen_callback", self._lib.srt_listen_callback(sock, wrapper, None))
        return wrapper

    def reject(self, sock: int, reason: int) -> None:
        self._lib.srt_setrejectreason(sock, reason)

    def accept(self, sock: int) -> tuple[int, tuple[str, int]] | None:
        """A caller whose handshake completed, or None when none waits (non-blocking)."""
        buffer = ctypes.create_string_buffer(_SOCKADDR_STORAGE)
        size = ctypes.c_int(_SOCKADDR_STORAGE)
        new = self._lib.srt_accept(sock, buffer, ctypes.byref(size))
        if new == SRT_INVALID_SOCK:
            code, text = self.last_error()
            if code == SRT_EASYNCRCV:
                return None
            raise SrtError("srt_accept", code, text)
        return int(new), peer(ctypes.addressof(buffer))

    def receive(self, sock: int, buffer: ctypes.Array[ctypes.c_char]) -> int:
        """One message into ``buffer``: its size; 0 when nothing waits (non-blocking); -1 when
        the connection is over."""
        got = self._lib.srt_recvmsg(sock, buffer, len(buffer))
        if got >= 0:
            return int(got)
        code, _ = self.last_error()
        return 0 if code == SRT_EASYNCRCV else -1

    # Readiness

    def epoll(self) -> int:
        return self._check("srt_epoll_create", self._lib.srt_epoll_create())

    def watch(self, eid: int, sock: int) -> None:
        events = ctypes.c_int(SRT_EPOLL_IN | SRT_EPOLL_ERR)
        self._check(
            "srt_epoll_add_usock", self._lib.srt_epoll_add_usock(eid, sock, ctypes.byref(events))
        )

    def unwatch(self, eid: int, sock: int) -> None:
        self._lib.srt_epoll_remove_usock(eid, sock)

    def wait(self, eid: int, limit: int, timeout_ms: int) -> list[Event]:
        found = (_EpollEvent * limit)()
        count = self._lib.srt_epoll_uwait(eid, found, limit, timeout_ms)
        return [
            Event(e.fd, bool(e.events & SRT_EPOLL_IN), bool(e.events & SRT_EPOLL_ERR))
            for e in found[: max(count, 0)]
        ]

    def release(self, eid: int) -> None:
        self._lib.srt_epoll_release(eid)

    def log_level(self, level: int) -> None:
        self._lib.srt_setloglevel(level)


_loaded: Srt | None = None
_loading = threading.Lock()


def load() -> Srt:
    """libsrt, started; Unavailable when it is not installed."""
    global _loaded
    with _loading:
        if _loaded is None:
            names = [n for n in (ctypes.util.find_library("srt"),) if n] + list(_NAMES)
            problems = []
            for name in names:
                try:
                    _loaded = Srt(ctypes.CDLL(name))
                    break
                except (OSError, AttributeError) as exc:
                    problems.append(f"{name}: {exc}")
            else:
                raise Unavailable(
                    "libsrt 1.5 is not installed (Debian: apt install libsrt1.5-openssl); "
                    + "; ".join(problems[:2])
                )
        return _loaded


def sockaddr(host: str, port: int) -> bytes:
    """A `struct sockaddr_in` or `sockaddr_in6` for ``host`` (an address or a name) and
    ``port``."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        try:
            found = socket.getaddrinfo(host, None, type=socket.SOCK_DGRAM)[0][4][0]
        except OSError as exc:
            raise SrtError("srt_bind", 0, f"cannot resolve {host!r}: {exc}") from None
        address = ipaddress.ip_address(found)
    if address.version == 4:
        return (
            struct.pack("=H", socket.AF_INET) + struct.pack("!H", port) + address.packed + bytes(8)
        )
    return (
        struct.pack("=H", socket.AF_INET6)
        + struct.pack("!HI", port, 0)
        + address.packed
        + struct.pack("=I", 0)
    )


def peer(address: int) -> tuple[str, int]:
    """The host and port in the `struct sockaddr` at ``address`` (0: unknown)."""
    if not address:
        return "?", 0
    family = ctypes.c_uint16.from_address(address).value
    port = struct.unpack("!H", ctypes.string_at(address + 2, 2))[0]
    if family == socket.AF_INET:
        return socket.inet_ntop(socket.AF_INET, ctypes.string_at(address + 4, 4)), port
    if family == socket.AF_INET6:
        return socket.inet_ntop(socket.AF_INET6, ctypes.string_at(address + 8, 16)), port
    return "?", 0
