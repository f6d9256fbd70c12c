"""The receiving side: verify and parse hooks (ours and the platform's own), a ready ASGI app, a
framework-neutral helper, and `mediahooks listen`, which downloads finished media by itself.

Importing this package needs only the standard library; `listen` needs aiohttp, Rich and Apprise.
"""

from mediahooks.receiver.asgi import WebhookApp
from mediahooks.receiver.handler import Delivery, Receiver, Rejected
from mediahooks.receiver.models import (
    FeedsData,
    FeedsHook,
    Hook,
    MalformedHook,
    MediaData,
    MediaHook,
    OtherHook,
    ThumbnailHook,
    parse,
    parse_thumbnail,
)
from mediahooks.receiver.verify import (
    DEFAULT_TOLERANCE,
    BadSignature,
    InvalidTimestamp,
    MissingHeaders,
    StaleTimestamp,
    TimestampInFuture,
    TimestampTooOld,
    VerificationError,
    Verified,
    verify,
)

__all__ = [
    "DEFAULT_TOLERANCE",
    "BadSignature",
    "Delivery",
    "FeedsData",
    "FeedsHook",
    "Hook",
    "InvalidTimestamp",
    "MalformedHook",
    "MediaData",
    "MediaHook",
    "MissingHeaders",
    "OtherHook",
    "Receiver",
    "Rejected",
    "StaleTimestamp",
    "ThumbnailHook",
    "TimestampInFuture",
    "TimestampTooOld",
    "VerificationError",
    "Verified",
    "WebhookApp",
    "parse",
    "parse_thumbnail",
    "verify",
]
