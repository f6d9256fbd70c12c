"""AMF0, the encoding of RTMP's commands and metadata (Adobe's "Action Message Format -- AMF 0"
specification; section numbers below are that document's). Pure.

Values map to Python: number -> float, boolean -> bool, string and long string -> str,
object, ECMA array and typed object -> dict, strict array -> list, null -> None,
undefined -> UNDEFINED, date -> float (ms since the epoch).
"""

from __future__ import annotations

import struct
from typing import Any, Final


class AmfError(ValueError):
    """Bytes that are not the AMF0 they claim to be."""


class _Undefined:
    def __repr__(self) -> str:
        return "UNDEFINED"


UNDEFINED: Final = _Undefined()

# §2.1 type markers
NUMBER, BOOLEAN, STRING, OBJECT, NULL, UNDEFINED_MARKER = 0x00, 0x01, 0x02, 0x03, 0x05, 0x06
ECMA_ARRAY, OBJECT_END, STRICT_ARRAY, DATE, LONG_STRING = 0x08, 0x09, 0x0A, 0x0B, 0x0C
UNSUPPORTED, XML_DOCUMENT, TYPED_OBJECT = 0x0D, 0x0F, 0x10
_MAX_DEPTH = 32  # nesting a publisher can make us follow


def decode_all(data: bytes) -> list[Any]:
    """Every value in ``data``, in order."""
    reader = _Reader(data)
    values = []
    while reader.pos < len(data):
        values.append(reader.value(0))
    return values


def encode(*values: Any) -> bytes:
    return b"".join(_encode(value) for value in values)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, count: int) -> bytes:
        end = self.pos + count
        if end > len(self.data):
            raise AmfError(f"AMF0 value cut short at byte {self.pos} (needs {count} more)")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def utf8(self, length_bytes: int) -> str:
        length = int.from_bytes(self.take(length_bytes), "big")
        return self.take(length).decode("utf-8", errors="replace")

    def value(self, depth: int) -> Any:
        if depth > _MAX_DEPTH:
            raise AmfError("AMF0 values nested too deep")
        marker = self.take(1)[0]
        if marker == NUMBER:  # §2.2
            return struct.unpack(">d", self.take(8))[0]
        if marker == BOOLEAN:  # §2.3
            return self.take(1) != b"\0"
        if marker == STRING:  # §2.4
            return self.utf8(2)
        if marker == OBJECT:  # §2.5
            return self.pairs(depth)
        if marker == NULL:  # §2.7
            return None
        if marker in (UNDEFINED_MARKER, UNSUPPORTED):  # §2.8, §2.14
            return UNDEFINED
        if marker == ECMA_ARRAY:  # §2.10: a count (advisory), then pairs as an object's
            self.take(4)
            return self.pairs(depth)
        if marker == STRICT_ARRAY:  # §2.12
            count = int.from_bytes(self.take(4), "big")
            if count > len(self.data) - self.pos:  # each value takes at least a byte
                raise AmfError(f"AMF0 strict array of {count} values in fewer bytes")
            return [self.value(depth + 1) for _ in range(count)]
        if marker == DATE:  # §2.13: ms since the epoch, then a time zone nobody uses
            (ms,) = struct.unpack(">d", self.take(8))
            self.take(2)
            return ms
        if marker in (LONG_STRING, XML_DOCUMENT):  # §2.14, §2.17
            return self.utf8(4)
        if marker == TYPED_OBJECT:  # §2.18: a class name, then an object's pairs
            self.utf8(2)
            return self.pairs(depth)
        raise AmfError(f"AMF0 type marker {marker:#04x} is not supported")

    def pairs(self, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        while True:
            key = self.utf8(2)
            if not key and self.data[self.pos : self.pos + 1] == bytes([OBJECT_END]):
                self.pos += 1
                return out
            out[key] = self.value(depth + 1)


def _encode(value: Any) -> bytes:
    if value is None:
        return bytes([NULL])
    if value is UNDEFINED:
        return bytes([UNDEFINED_MARKER])
    if isinstance(value, bool):
        return bytes([BOOLEAN, int(value)])
    if isinstance(value, int | float):
        return bytes([NUMBER]) + struct.pack(">d", float(value))
    if isinstance(value, str):
        raw = value.encode()
        if len(raw) <= 0xFFFF:
            return bytes([STRING]) + len(raw).to_bytes(2, "big") + raw
        return bytes([LONG_STRING]) + len(raw).to_bytes(4, "big") + raw
    if isinstance(value, dict):
        body = b"".join(_key(str(k)) + _encode(v) for k, v in value.items())
        return bytes([OBJECT]) + body + b"\0\0" + bytes([OBJECT_END])
    if isinstance(value, list | tuple):
        items = b"".join(_encode(v) for v in value)
        return bytes([STRICT_ARRAY]) + len(value).to_bytes(4, "big") + items
    raise TypeError(f"AMF0 cannot encode {type(value).__name__}")


def _key(key: str) -> bytes:
    raw = key.encode()
    return len(raw).to_bytes(2, "big") + raw
