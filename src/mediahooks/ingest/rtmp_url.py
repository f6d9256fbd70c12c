"""Where an RTMP publisher says what it publishes, and with which token. Pure.

The platform's URL is `rtmp://HOST:PORT/v2/pub/<streamName>?token=<token>`: clients split it
into the application `v2/pub` (sent in `connect`, with the whole URL as `tcUrl`) and the publish
name `<streamName>?token=<token>` (sent in `publish`). OBS asks for the same two halves as
"server" and "stream key". Some tools move the query to the application or the tcUrl instead,
so the token is looked for in all three.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

APP = "v2/pub"


@dataclass(frozen=True)
class Target:
    stream: str
    token: str


def app_name(app: str) -> str:
    """The application without its query and surrounding slashes."""
    return app.partition("?")[0].strip("/")


def target(app: str, tc_url: str, publish_name: str) -> Target:
    name, _, query = publish_name.partition("?")
    token = _token(query) or _token(app.partition("?")[2]) or _token(urlsplit(tc_url).query)
    return Target(name.strip("/"), token)


def _token(query: str) -> str:
    values = parse_qs(query, keep_blank_values=True).get("token")
    return values[0] if values else ""
