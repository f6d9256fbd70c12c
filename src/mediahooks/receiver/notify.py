"""`--notify URL`: tell people, through Apprise (e-mail, Slack, Discord, ntfy, Telegram, plain
JSON over HTTP and about a hundred more, each written as one URL)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from mediahooks.receiver.models import FeedsHook, Hook, MediaHook

# How long all targets together may take before the notification counts as failed.
TIMEOUT = 30.0


class NotifyFailed(Exception):
    pass


class Notifier:
    def __init__(self, urls: Sequence[str]) -> None:
        # Apprise loads its plugins on import, which takes a moment: only when asked for.
        import apprise

        self._apprise = apprise.Apprise()
        for url in urls:
            if not self._apprise.add(url):
                raise ValueError(f"not a notification URL Apprise knows: {_redacted(url)}")
        self.count = len(urls)

    async def send(self, title: str, body: str, failure: bool = False) -> None:
        import apprise

        kind = apprise.NotifyType.FAILURE if failure else apprise.NotifyType.INFO
        try:
            async with asyncio.timeout(TIMEOUT):
                result = await self._apprise.async_notify(body=body, title=title, notify_type=kind)
        except TimeoutError:
            raise NotifyFailed(f"notifying took longer than {TIMEOUT:g} s") from None
        if not result:
            raise NotifyFailed("a notification could not be sent (see Apprise's warnings)")


def message(hook: Hook, file: str | None = None, size: int | None = None) -> tuple[str, str]:
    """A title and a body a person reads on a phone."""
    if isinstance(hook, MediaHook):
        data = hook.data
        what = f"{data.type or 'media'} of {data.source or 'an unnamed stream'}"
        title = f"{what}: {hook.event}"
        lines = [f"Media asset {data.media_asset_id} ({what}) is {hook.event}."]
        if file:
            lines.append(f"Downloaded to {file}" + (f" ({size / 1e6:.1f} MB)." if size else "."))
        if data.error:
            lines.append(f"Reason: {data.error}")
        return title, "\n".join(lines)
    if isinstance(hook, FeedsHook):
        name = hook.data.name or hook.data.stream_id or hook.data.feed_id
        return f"stream {name}: {hook.event}", f"Feed {hook.data.feed_id} of {name} {hook.event}."
    return f"{hook.type}: {hook.event}", f"A {hook.type} hook: {hook.event}."


def _redacted(url: str) -> str:
    """A URL fit for a log: notification URLs carry tokens and passwords."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://…" if rest else url[:12] + "…"
