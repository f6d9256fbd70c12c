"""One settings object, from ``MEDIAHOOKS_*`` environment variables and command-line flags."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from mediahooks import retry

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class IceServer(BaseModel):
    urls: str | list[str]
    username: str | None = None
    credential: str | None = None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MEDIAHOOKS_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    data_dir: Path = Path("data")
    database_url: str | None = None
    # SQLite only: NORMAL survives process crashes, FULL also power cuts (and costs a disk
    # flush per commit).
    sqlite_synchronous: Literal["NORMAL", "FULL"] = "NORMAL"
    api_secret: SecretStr | None = None
    # "true" allows every address; a comma-separated list of CIDRs allows just those.
    allow_private_targets: str = ""
    retry_schedule: str = ",".join(f"{g:g}" for g in retry.DEFAULT_SCHEDULE)
    retry_jitter: float = Field(0.2, ge=0, le=1)
    retry_after_cap: float = Field(3600.0, ge=0)
    attempt_timeout: float = Field(15.0, gt=0)
    disable_after: float = Field(5 * 86400.0, gt=0)
    disable_for: float = Field(86400.0, gt=0)
    secret_grace: float = Field(86400.0, ge=0)
    concurrency: int = Field(128, ge=1)
    per_webhook_concurrency: int = Field(16, ge=1)
    claim_batch: int = Field(128, ge=1)
    poll_interval: float = Field(1.0, gt=0)
    max_body_bytes: int = Field(64 * 1024, ge=1024)
    max_segment_bytes: int = Field(64 * 1024 * 1024, ge=1024)
    # A broadcast with no file for this long has ended.
    idle_timeout: float = Field(10.0, gt=0)
    # A publisher's EXT-X-PROGRAM-DATE-TIME farther than this (seconds) from when the segment
    # arrived is not believed: the arrival times the segment.
    max_clock_skew: float = Field(60.0, gt=0)
    download_ttl: float = Field(3600.0, gt=0)
    media_processes: int = Field(1, ge=1)
    # Playback: how long a signed playback link is valid; segments in a live playlist.
    playback_ttl: float = Field(3600.0, gt=0)
    live_window: int = Field(6, ge=3, le=100)
    # Viewer hooks: a viewer who fetched nothing for `viewer_timeout` s has left;
    # NoActiveViewers waits `no_viewers_delay` s after the last one left; ViewerAttempt is sent
    # at most every `viewer_attempt_interval` s per stream (the platform's 60 s and 10 s).
    viewer_timeout: float = Field(10.0, gt=0)
    no_viewers_delay: float = Field(60.0, ge=0)
    viewer_attempt_interval: float = Field(10.0, ge=0)
    sweep_interval: float = Field(1.0, gt=0)
    # Seconds between two thumbnails of a live stream whose token has `enableThumbnails`.
    thumbnail_interval: float = Field(30.0, gt=0)
    # Finished deliveries, their attempts and their events are forgotten this many days after
    # the event and the delivery's last change; 0 keeps them forever.
    history_days: float = Field(30.0, ge=0)
    # INFO logs one line per delivery attempt; WARNING keeps only what needs attention.
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # RTMP ingest: the port (0: any free one; "off": no RTMP), the address (default: the API's),
    # and a certificate and key for RTMPS (TLS on the same port).
    rtmp_port: int | None = Field(1935, ge=0, le=65535)
    rtmp_host: str | None = None
    rtmp_cert: Path | None = None
    rtmp_key: Path | None = None
    # SRT ingest (UDP): the port (0: any free one; "off": no SRT), the address (default: the
    # API's).
    srt_port: int | None = Field(10000, ge=0, le=65535)
    srt_host: str | None = None
    # How often the SRT door's in-memory copy of the publish tokens is read again.
    srt_token_refresh: float = Field(2.0, gt=0)
    # Live publishers (RTMP, SRT and other packet-stream doors) one process takes at once.
    max_publishers: int = Field(100, ge=1)
    # Where clips, recordings and posters are kept: empty for the data directory, or
    # s3://bucket/prefix for an S3-compatible bucket (credentials, region and endpoint from the
    # standard AWS_* variables). With storage_proxy, downloads are served through the service
    # rather than by presigned bucket links (for a bucket the public cannot reach).
    storage_url: str = ""
    storage_proxy: bool = False
    # With a bucket: the most bytes of timeline segments a node holds that the bucket does not
    # have yet; past it, HLS ingest answers 503.
    storage_spool_bytes: int = Field(1024**3, ge=1)
    # WebRTC (WHIP): a keyframe is asked of the publisher this often (s), so timelines can be
    # cut; the addresses offered as ICE candidates (comma-separated; default: this host's own,
    # loopback excepted; an address not on this host, a NAT's public one, is offered and the
    # socket bound on every interface); the UDP ports ("40000-40099"; default: any free one);
    # STUN/TURN servers told to publishers (`Link` headers), as JSON like a browser's
    # RTCIceServer list: [{"urls": "turn:turn.example.net", "username": "u", "credential": "p"}].
    keyframe_interval: float = Field(2.0, gt=0)
    webrtc_addresses: str = ""
    webrtc_ports: str = ""
    webrtc_ice_servers: list[IceServer] = []

    @field_validator("retry_schedule")
    @classmethod
    def _schedule_parses(cls, value: str) -> str:
        retry.parse_schedule(value)
        return value

    @field_validator("rtmp_port", "srt_port", mode="before")
    @classmethod
    def _port_or_off(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().lower() in ("off", "false", "no", ""):
            return None
        return value

    @field_validator("storage_url")
    @classmethod
    def _storage_parses(cls, value: str) -> str:
        value = value.strip()
        if value and not value.startswith("s3://"):
            raise ValueError(
                f"MEDIAHOOKS_STORAGE_URL must be empty (the data directory) or "
                f"s3://bucket/prefix, got {value!r}"
            )
        if value and not value[len("s3://") :].split("/")[0]:
            raise ValueError("MEDIAHOOKS_STORAGE_URL names no bucket: s3://bucket/prefix")
        return value

    @field_validator("webrtc_ports")
    @classmethod
    def _ports_parse(cls, value: str) -> str:
        port_range(value)
        return value

    @field_validator("webrtc_addresses")
    @classmethod
    def _addresses_parse(cls, value: str) -> str:
        addresses(value)
        return value

    @field_validator("allow_private_targets")
    @classmethod
    def _targets_parse(cls, value: str) -> str:
        allowed_networks(value)
        return value

    @property
    def sqlalchemy_url(self) -> str:
        url = self.database_url or f"sqlite:///{(self.data_dir / 'mediahooks.db').resolve()}"
        for plain, driver in (
            ("postgresql://", "postgresql+asyncpg://"),
            ("postgres://", "postgresql+asyncpg://"),
            ("sqlite://", "sqlite+aiosqlite://"),
        ):
            if url.startswith(plain):
                return driver + url[len(plain) :]
        return url

    @property
    def policy(self) -> retry.Policy:
        return retry.Policy(
            schedule=retry.parse_schedule(self.retry_schedule),
            jitter=self.retry_jitter,
            retry_after_cap=self.retry_after_cap,
            disable_after=self.disable_after,
            disable_for=self.disable_for,
        )

    @property
    def private_networks(self) -> list[Network]:
        return allowed_networks(self.allow_private_targets)


def allowed_networks(value: str) -> list[Network]:
    """``"true"``: every address; ``"10.0.0.0/8,::1/128"``: those; ``""`` or ``"false"``: none."""
    text = value.strip().lower()
    if text in ("", "false", "0", "no"):
        return []
    if text in ("true", "1", "yes"):
        return [ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0")]
    try:
        return [ipaddress.ip_network(p.strip(), strict=False) for p in text.split(",") if p.strip()]
    except ValueError as exc:
        raise ValueError(
            f"MEDIAHOOKS_ALLOW_PRIVATE_TARGETS must be true, false or CIDRs, got {value!r}"
        ) from exc


def port_range(value: str) -> tuple[int, int] | None:
    """``"40000-40099"`` or ``"40000"``: the first and last port; ``""``: any (None)."""
    text = value.strip()
    if not text or text == "0":
        return None
    first, _, last = text.partition("-")
    try:
        low, high = int(first), int(last or first)
    except ValueError:
        low, high = 0, -1
    if not 1 <= low <= high <= 65535:
        raise ValueError(
            f"MEDIAHOOKS_WEBRTC_PORTS must be a UDP port or range like 40000-40099, got {value!r}"
        )
    return low, high


def addresses(value: str) -> list[str]:
    """Comma-separated IP addresses, each checked."""
    found = []
    for part in value.split(","):
        if part.strip():
            try:
                found.append(str(ipaddress.ip_address(part.strip())))
            except ValueError as exc:
                raise ValueError(
                    f"MEDIAHOOKS_WEBRTC_ADDRESSES must be IP addresses, got {part.strip()!r}"
                ) from exc
    return found
