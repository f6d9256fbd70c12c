"""Which ICE candidates a WHIP answer offers: the configured addresses and UDP ports.

aioice offers every address of the host but loopback, on any port. A real deployment needs to
say which (`MEDIAHOOKS_WEBRTC_ADDRESSES`: behind a NAT, its public address, the socket then
bound on every interface) and on which ports (`MEDIAHOOKS_WEBRTC_PORTS`, what the firewall
opens); tests offer 127.0.0.1 only. `restrict` replaces the gathering of one peer connection's
ICE connections with one that binds exactly those host candidates (no STUN, no TURN: the
server is the side with the known address).
"""

from __future__ import annotations

import asyncio
import errno
import functools
import ipaddress
import random
import socket
from typing import Any

from aioice.candidate import Candidate, candidate_foundation, candidate_priority
from aioice.ice import Connection, StunProtocol, get_host_addresses
from aiortc import RTCPeerConnection

_RECEIVE_BUFFER = 1024 * 1024  # a 720p keyframe is a burst of a hundred datagrams or more


def default_addresses() -> list[str]:
    return get_host_addresses(use_ipv4=True, use_ipv6=False)


def restrict(pc: RTCPeerConnection, addresses: list[str], ports: tuple[int, int] | None) -> None:
    """Make ``pc`` (its remote description set, its answer not yet made) gather only host
    candidates on ``addresses`` within ``ports``."""
    for transceiver in pc.getTransceivers():
        connection = transceiver.receiver.transport.transport.iceGatherer._connection
        gather = functools.partial(_gather, connection, addresses, ports)
        connection.gather_candidates = gather  # type: ignore[method-assign]


async def _gather(
    connection: Connection, addresses: list[str], ports: tuple[int, int] | None
) -> None:
    if connection._local_candidates_start:
        return
    connection._local_candidates_start = True
    for component in sorted(connection._components):
        for address in addresses:
            protocol = await _bind(connection, address, ports)
            bound_port = protocol.transport.get_extra_info("sockname")[1]
            protocol.local_candidate = Candidate(
                foundation=candidate_foundation("host", "udp", address),
                component=component,
                transport="udp",
                priority=candidate_priority(component, "host"),
                host=address,
                port=bound_port,
                type="host",
            )
            connection._protocols.append(protocol)
            connection._local_candidates.append(protocol.local_candidate)
    connection._local_candidates_end = True


async def _bind(
    connection: Connection, address: str, ports: tuple[int, int] | None
) -> StunProtocol:
    """A UDP socket for ``address``: on it when it is this host's, else on every interface
    (a NAT's public address forwarded here); on a free port of the range."""
    loop = asyncio.get_running_loop()
    candidates = [0] if ports is None else list(range(ports[0], ports[1] + 1))
    if ports is not None:
        random.shuffle(candidates)  # concurrent publishers do not race for the same first port
    host = address
    last: OSError | None = None
    for port in candidates:
        try:
            transport, protocol = await loop.create_datagram_endpoint(
                lambda: StunProtocol(connection), local_addr=(host, port)
            )
        except OSError as exc:
            if exc.errno == errno.EADDRNOTAVAIL and host == address:
                host = "::" if ipaddress.ip_address(address).version == 6 else "0.0.0.0"
                return await _bind_any(connection, host, candidates)
            last = exc
            continue
        _grow_buffer(transport)
        return protocol
    raise OSError(f"no free UDP port for WebRTC on {address}: {last}")


async def _bind_any(connection: Connection, host: str, ports: list[int]) -> StunProtocol:
    loop = asyncio.get_running_loop()
    last: OSError | None = None
    for port in ports:
        try:
            transport, protocol = await loop.create_datagram_endpoint(
                lambda: StunProtocol(connection), local_addr=(host, port)
            )
        except OSError as exc:
            last = exc
            continue
        _grow_buffer(transport)
        return protocol
    raise OSError(f"no free UDP port for WebRTC on {host}: {last}")


def _grow_buffer(transport: Any) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RECEIVE_BUFFER)
