"""The publish token as the platform's API has it: request bodies (create, update with the v1
and v2 names of each field), the rules that span fields, and the token object answered.

A token is handled as its API view, a dict keyed by the platform's names: a create fills the
defaults in, an update lays its changes over the stored view, the rules that span fields are
checked on the result, and `columns` turns it into the row. Settings we accept and echo but
do not act on (see the README) live in one JSON column under their API names.

Over 400 lines on purpose: the platform's token has some thirty fields, each with its v1 and
v2 name, its rule and its place in the row; split, a field's names and its rule would sit in
different files, and adding one would mean editing several.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    WithJsonSchema,
    model_validator,
)

from mediahooks import admission, patterns
from mediahooks.actions.bodies import Body
from mediahooks.clock import from_iso, iso, now_ms
from mediahooks.errors import Invalid
from mediahooks.store.schema import DbRow

MAX_LIST = 100
# What libsrt takes as a passphrase (SRTO_PASSPHRASE), in characters that survive a URL query.
PASSPHRASE = r"^[\x21-\x7e]{10,79}$"
INT32 = 2**31 - 1


def _country(value: str) -> str:
    if len(value) != 2 or not value.isascii() or not value.isalpha():
        raise ValueError(f"{value[:16]!r} is not an ISO 3166-1 two-letter country code (e.g. US)")
    return value.upper()


def _network(value: str) -> str:
    reason = admission.network_problem(value)
    if reason:
        raise ValueError(reason)
    return value


def _origin(value: str) -> str:
    reason = admission.origin_problem(value)
    if reason:
        raise ValueError(reason)
    return value


Country = Annotated[StrictStr, AfterValidator(_country)]
Network = Annotated[StrictStr, Field(min_length=1, max_length=64), AfterValidator(_network)]
Origin = Annotated[StrictStr, Field(min_length=1, max_length=256), AfterValidator(_origin)]
Cluster = Annotated[StrictStr, Field(min_length=1, max_length=64)]


class StreamRule(Body):
    model_config = ConfigDict(extra="ignore")
    streamName: StrictStr = Field(..., min_length=1, max_length=128)
    isRegex: StrictBool = False

    @model_validator(mode="after")
    def _regex_compiles(self) -> StreamRule:
        if self.isRegex:
            # The engine that runs the rule at ingest (`store.tokens.allows`).
            reason = patterns.problem(self.streamName)
            if reason:
                raise ValueError(f"streamName {reason}")
        return self


class RemovedStream(Body):
    """A stream rule to remove, as the platform's clients send it (the documented form is the
    bare name): ``isRegex`` given, only the rule of that kind goes."""

    model_config = ConfigDict(extra="ignore")
    streamName: StrictStr = Field(..., min_length=1, max_length=128)
    isRegex: StrictBool | None = None

    def removes(self, rule: dict[str, Any]) -> bool:
        if rule["streamName"] != self.streamName:
            return False
        return self.isRegex is None or rule["isRegex"] == self.isRegex


def _as_rule(value: Any) -> Any:
    return {"streamName": value} if isinstance(value, str) else value


_NAME = {"type": "string", "minLength": 1, "maxLength": 128}
# A name (the documented form) or a rule: one model validates both, so an error names the field.
Removal = Annotated[
    RemovedStream,
    BeforeValidator(_as_rule),
    WithJsonSchema(
        {
            "anyOf": [
                _NAME,
                {
                    "type": "object",
                    "properties": {"streamName": _NAME, "isRegex": {"type": "boolean"}},
                    "required": ["streamName"],
                },
            ]
        }
    ),
]


class GeoCascade(Body):
    model_config = ConfigDict(extra="ignore")
    isEnabled: StrictBool | None = None
    clusters: list[Cluster] | None = Field(None, max_length=MAX_LIST)

    @model_validator(mode="after")
    def _clusters_when_enabled(self) -> GeoCascade:
        if self.isEnabled and self.clusters == []:
            raise ValueError("clusters cannot be empty when isEnabled is true")
        return self

    def view(self) -> dict[str, Any]:
        clusters = self.clusters if self.clusters is not None else ["all"]
        return {"isEnabled": self.isEnabled, "clusters": clusters}


class Restream(Body):
    model_config = ConfigDict(extra="ignore")
    url: StrictStr = Field(..., min_length=1, max_length=2048)
    key: StrictStr = Field(..., min_length=5, max_length=512)
    label: StrictStr | None = Field(None, max_length=2048)
    enabled: StrictBool | None = True


# The settings kept and echoed but not acted on, with what a new token has.
STORED_ONLY: dict[str, Any] = {
    "lowLatencyRtmp": True,
    "enableUTCInsertion": None,
    "drm": False,
    "priority": None,
    "encoderProfileId": None,
    "geoCascade": None,
    "restream": [],
    "originCluster": "auto",
    "allowedCountries": [],
    "deniedCountries": [],
    "bindIpsOnUsage": None,
}
# A new token's view, beside its label and streams.
DEFAULTS: dict[str, Any] = {
    "record": False,
    "clip": False,
    "subscribeRequiresAuth": False,
    "isActive": True,
    "expiresOn": None,
    "allowedOrigins": [],
    "allowedIpAddresses": [],
    "multisource": True,
    "enableThumbnails": False,
    "srtPassphrase": None,
    **STORED_ONLY,
}
# A null sent for these clears them (the platform's "set to null to clear"); for any other
# field a null is the same as leaving it out.
NULL_CLEARS = {
    "enableUTCInsertion",
    "priority",
    "encoderProfileId",
    "expiresOn",
    "geoCascade",
    "srtPassphrase",
}


class TokenSettings(Body):
    """What both create and update take, by the platform's (v2) names."""

    model_config = ConfigDict(extra="ignore")
    record: StrictBool | None = None
    clip: StrictBool | None = None
    # Viewers need a subscribe token (or a signed playback link) to watch.
    subscribeRequiresAuth: StrictBool | None = None
    multisource: StrictBool | None = None
    enableThumbnails: StrictBool | None = None
    # SRT callers must encrypt with this passphrase; null removes it.
    srtPassphrase: StrictStr | None = Field(
        None,
        pattern=PASSPHRASE,
        description="10-79 printable ASCII characters, no spaces; null removes it",
    )
    # The platform's switch: true makes a passphrase when the token has none, false removes it.
    displaySrtPassphrase: StrictBool | None = None
    allowedOrigins: list[Origin] | None = Field(None, max_length=MAX_LIST)
    allowedIpAddresses: list[Network] | None = Field(None, max_length=MAX_LIST)
    expiresOn: datetime | None = Field(
        None, description="When the token stops working (ISO 8601); null: never."
    )
    lowLatencyRtmp: StrictBool | None = None
    enableUTCInsertion: StrictBool | None = None
    drm: StrictBool | None = None
    priority: StrictInt | None = Field(None, ge=-INT32 - 1, le=INT32)
    encoderProfileId: StrictStr | None = Field(None, min_length=1, max_length=256)
    geoCascade: GeoCascade | None = None
    restream: list[Restream] | None = Field(None, max_length=10)
    originCluster: Cluster | None = None
    allowedCountries: list[Country] | None = Field(None, max_length=300)
    deniedCountries: list[Country] | None = Field(None, max_length=300)
    bindIpsOnUsage: StrictInt | None = Field(None, ge=0, le=2**32 - 1)

    def changes(self) -> dict[str, Any]:
        """The fields given, by their API names, as the view holds them."""
        given: dict[str, Any] = {}
        for name in TokenSettings.model_fields:
            if name not in self.model_fields_set or name == "displaySrtPassphrase":
                continue
            value = getattr(self, name)
            if value is None and name not in NULL_CLEARS:
                continue
            given[name] = _viewed(name, value)
        if self.displaySrtPassphrase is False:
            if self.srtPassphrase is not None:
                raise Invalid(
                    "displaySrtPassphrase false removes the passphrase: send one or the other.",
                    {"displaySrtPassphrase": ["cannot be false with an srtPassphrase"]},
                )
            given["srtPassphrase"] = None
        return given

    def passphrase_made(self, view: dict[str, Any]) -> dict[str, Any]:
        """``view`` with a passphrase made when displaySrtPassphrase asks for one and the token
        would have none."""
        if self.displaySrtPassphrase and not view["srtPassphrase"]:
            view["srtPassphrase"] = secrets.token_urlsafe(24)
        return view


class TokenCreate(TokenSettings):
    label: StrictStr = Field(..., min_length=1, max_length=256)
    streams: list[StreamRule] = Field(..., min_length=1, max_length=MAX_LIST)
    expires: StrictInt | None = Field(
        None, ge=1, le=INT32, description="Seconds until the token expires (or expiresOn)."
    )

    def view(self) -> dict[str, Any]:
        if self.expires is not None and self.expiresOn is not None:
            raise Invalid(
                "Give expires (seconds from now) or expiresOn (a date), not both.",
                {"expires": ["cannot be given with expiresOn"]},
            )
        view = {**DEFAULTS, **self.changes(), "label": self.label}
        view["streams"] = [rule.model_dump() for rule in self.streams]
        if self.expires is not None:
            view["expiresOn"] = now_ms() + self.expires * 1000
        _future(view["expiresOn"], "expires" if self.expires is not None else "expiresOn")
        return self.passphrase_made(view)


# The v1 update's names for fields the v2 update (and create) name plainly.
V1_NAMES = {
    "updateAllowedOrigins": "allowedOrigins",
    "updateAllowedIpAddresses": "allowedIpAddresses",
    "updateGeoCascade": "geoCascade",
    "updateRestream": "restream",
    "updateBindIpsOnUsage": "bindIpsOnUsage",
    "updateOriginCluster": "originCluster",
    "updateAllowedCountries": "allowedCountries",
    "updateDeniedCountries": "deniedCountries",
}


class TokenUpdate(TokenSettings):
    """`PUT /api/publish_token/{id}` and `/api/v2/publish_token/{id}`: every field optional, by
    its v2 name or (v1) its `update...` name."""

    model_config = ConfigDict(extra="ignore", json_schema_extra={"minProperties": 1})
    label: StrictStr | None = Field(None, min_length=1, max_length=256)
    isActive: StrictBool | None = None
    refreshToken: StrictBool | None = Field(
        None, description="true: a new token value; the old one stops working at once."
    )
    streams: list[StreamRule] | None = Field(
        None, min_length=1, max_length=MAX_LIST, description="Replaces every stream rule."
    )
    addTokenStreams: list[StreamRule] | None = Field(None, max_length=MAX_LIST)
    removeTokenStreams: list[Removal] | None = Field(
        None,
        max_length=MAX_LIST,
        description="Stream names (or patterns) to remove, or {streamName, isRegex} objects.",
    )
    updateAllowedOrigins: list[Origin] | None = Field(None, max_length=MAX_LIST)
    updateAllowedIpAddresses: list[Network] | None = Field(None, max_length=MAX_LIST)
    updateGeoCascade: GeoCascade | None = None
    updateRestream: list[Restream] | None = Field(None, max_length=10)
    updateBindIpsOnUsage: StrictInt | None = Field(None, ge=0, le=2**32 - 1)
    updateOriginCluster: Cluster | None = None
    updateAllowedCountries: list[Country] | None = Field(None, max_length=300)
    updateDeniedCountries: list[Country] | None = Field(None, max_length=300)

    def apply(self, current: dict[str, Any]) -> dict[str, Any]:
        """The view after this update of ``current``."""
        if not self.model_fields_set:
            raise Invalid(
                "No properties specified to update: send at least one of the token's fields "
                "(label, isActive, refreshToken, addTokenStreams, removeTokenStreams, ...).",
                {"body": ["no known field given"]},
            )
        changes = self.changes()
        for old, new in V1_NAMES.items():
            if old not in self.model_fields_set:
                continue
            if new in self.model_fields_set:
                raise Invalid(f"Give {new} or {old}, not both.", {old: [f"given with {new}"]})
            value = getattr(self, old)
            if value is not None or new in NULL_CLEARS:
                changes[new] = _viewed(new, value)
        view = {**current, **changes}
        if self.label is not None:
            view["label"] = self.label
        if self.isActive is not None:
            view["isActive"] = self.isActive
        if "expiresOn" in changes:
            _future(view["expiresOn"], "expiresOn")
        view["streams"] = self._streams(current["streams"])
        return self.passphrase_made(view)

    def _streams(self, current: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if self.streams is not None:
            current = [rule.model_dump() for rule in self.streams]
        removals = self.removeTokenStreams or []
        unknown = [r.streamName for r in removals if not any(map(r.removes, current))]
        if unknown:
            raise Invalid(
                f"removeTokenStreams names streams the token does not have: {unknown}.",
                {"removeTokenStreams": [f"not in the token's streams: {name}" for name in unknown]},
            )
        streams = [rule for rule in current if not any(r.removes(rule) for r in removals)]
        for rule in self.addTokenStreams or []:
            if rule.model_dump() not in streams:
                streams.append(rule.model_dump())
        if not streams:
            raise Invalid(
                "A publish token needs at least one stream: add one or delete the token.",
                {"removeTokenStreams": ["would leave no stream"]},
            )
        if len(streams) > MAX_LIST:
            raise Invalid(
                f"A publish token has at most {MAX_LIST} streams.",
                {"addTokenStreams": [f"would make more than {MAX_LIST} streams"]},
            )
        return streams


def _viewed(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name == "expiresOn":
        return from_iso(value)
    if name == "geoCascade":
        return value.view()
    if name == "restream":
        return [item.model_dump() for item in value]
    return value


def _future(expires_ms: int | None, field: str) -> None:
    if expires_ms is not None and expires_ms <= now_ms():
        raise Invalid(f"{field} must be in the future.", {field: ["in the past"]})


def check(view: dict[str, Any]) -> None:
    """The rules that span fields, on the token as it would be."""
    if view["record"] and view["clip"]:
        raise Invalid(
            "A token cannot both record and clip: make one token for each.",
            {"record": ["cannot be true together with clip"]},
        )
    if view["allowedCountries"] and view["deniedCountries"]:
        raise Invalid(
            "Give allowedCountries or deniedCountries, not both.",
            {"allowedCountries": ["cannot be given with deniedCountries"]},
        )
    if view["bindIpsOnUsage"] and view["allowedIpAddresses"]:
        raise Invalid(
            "bindIpsOnUsage and allowedIpAddresses exclude each other: give one.",
            {"bindIpsOnUsage": ["cannot be given with allowedIpAddresses"]},
        )


def view_of(row: DbRow) -> dict[str, Any]:
    """The stored token by its API names (without id, token value and dates of record)."""
    return {
        "label": row.label,
        "streams": json.loads(row.streams),
        "record": bool(row.record),
        "clip": bool(row.clip),
        "subscribeRequiresAuth": bool(row.subscribe_requires_auth),
        "isActive": bool(row.is_active),
        "expiresOn": row.expires_at,
        "allowedOrigins": json.loads(row.allowed_origins),
        "allowedIpAddresses": json.loads(row.allowed_ip_addresses),
        "multisource": bool(row.multisource),
        "enableThumbnails": bool(row.enable_thumbnails),
        "srtPassphrase": row.srt_passphrase,
        **STORED_ONLY,
        **json.loads(row.settings),
    }


def columns(view: dict[str, Any]) -> dict[str, Any]:
    """The row's values for a view."""
    return {
        "label": view["label"],
        "streams": json.dumps(view["streams"]),
        "record": view["record"],
        "clip": view["clip"],
        "subscribe_requires_auth": view["subscribeRequiresAuth"],
        "is_active": view["isActive"],
        "expires_at": view["expiresOn"],
        "allowed_origins": json.dumps(view["allowedOrigins"]),
        "allowed_ip_addresses": json.dumps(view["allowedIpAddresses"]),
        "multisource": view["multisource"],
        "enable_thumbnails": view["enableThumbnails"],
        "srt_passphrase": view["srtPassphrase"],
        "settings": json.dumps({name: view[name] for name in STORED_ONLY}),
    }


def token_object(row: DbRow) -> dict[str, Any]:
    """The token as the platform answers it (`publish`, how to publish, is added beside)."""
    view = view_of(row)
    return {
        "id": row.id,
        "label": row.label,
        "name": row.label,  # the platform's deprecated twin of label
        "token": row.token,
        "addedOn": iso(row.created_at),
        **view,
        "expiresOn": iso(row.expires_at),
        "displaySrtPassphrase": view["srtPassphrase"] is not None,
        "integrationId": "None",
        "effectiveSettings": {
            "originCluster": view["originCluster"],
            "allowedCountries": view["allowedCountries"],
            "deniedCountries": view["deniedCountries"],
            "geoCascade": view["geoCascade"],
            "enableUTCInsertion": view["enableUTCInsertion"],
        },
    }
