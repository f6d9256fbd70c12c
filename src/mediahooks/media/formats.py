"""What a pushed segment body is, judged from its first bytes (pure).

Ingest calls this before storing a body, so a publisher that pushes garbage (an HTML error page,
a truncated upload, the wrong file) is refused at the door with a reason, instead of surfacing
hours later as a clip that cannot be cut.
"""

from __future__ import annotations

from typing import Literal

TS_PACKET = 188
TS_SYNC = 0x47
# Eight TS sync bytes: random data passes with odds of 2^-64. The same span holds the ftyp box
# of any real init segment plus the header of the box after it.
HEAD_BYTES = 8 * TS_PACKET
# PAT, PMT and at least one packet of media: the least a playable TS segment holds.
TS_MIN_PACKETS = 3

Kind = Literal["ts", "init", "fragment", "webm", "cluster"]

# Matroska element IDs a WebM timeline starts its files with: its header, and each cluster.
EBML_ID = bytes.fromhex("1a45dfa3")
CLUSTER_ID = bytes.fromhex("1f43b675")

# The boxes a CMAF/fMP4 media segment may start with, and the ones that may follow at top level.
_FRAGMENT_FIRST = frozenset({"styp", "sidx", "moof"})
_FRAGMENT_BOXES = _FRAGMENT_FIRST | {"ssix", "mdat", "prft", "emsg", "free", "skip"}


def sniff(head: bytes) -> Kind | None:
    """ "ts" (an MPEG-TS segment), "init" (an fMP4 init segment), "fragment" (an fMP4 media
    segment), "webm" (a WebM header), "cluster" (a Matroska cluster) or None (anything else).

    `head` is the body's first HEAD_BYTES bytes, or the whole body when it is shorter; a shorter
    head is taken to be the whole body, which must then end on a packet or box boundary.
    """
    head = head[:HEAD_BYTES]
    whole = len(head) < HEAD_BYTES
    if _is_ts(head, whole):
        return "ts"
    if head.startswith(EBML_ID):
        return "webm"
    if head.startswith(CLUSTER_ID):
        return "cluster"
    boxes = _boxes(head, whole)
    if not boxes:
        return None
    if boxes[0] == ("ftyp", True):
        return "init" if len(boxes) > 1 and boxes[1][0] == "moov" else None
    types = [box_type for box_type, _ in boxes]
    if types[0] not in _FRAGMENT_FIRST or not _FRAGMENT_BOXES.issuperset(types):
        return None
    if boxes[0] == ("styp", False):
        return None
    # A complete body has to carry the media itself, not only the boxes that announce it.
    if whole and not {"moof", "mdat"}.issubset(types):
        return None
    return "fragment"


def _is_ts(head: bytes, whole: bool) -> bool:
    if len(head) < TS_MIN_PACKETS * TS_PACKET or (whole and len(head) % TS_PACKET):
        return False
    return set(head[::TS_PACKET]) == {TS_SYNC}


def _boxes(head: bytes, whole: bool) -> list[tuple[str, bool]] | None:
    """The top-level ISO BMFF boxes whose headers lie in `head`: (type, well-formed brand list)
    each, or None when a header is malformed or, for a whole body, a box runs past its end.
    """
    boxes: list[tuple[str, bool]] = []
    position = 0
    while position + 8 <= len(head):
        size = int.from_bytes(head[position : position + 4], "big")
        raw_type = head[position + 4 : position + 8]
        if not all(0x20 <= byte <= 0x7E for byte in raw_type):
            return None
        header = 8
        if size == 1:  # a 64-bit size follows the type
            if position + 16 > len(head):
                break
            size, header = int.from_bytes(head[position + 8 : position + 16], "big"), 16
        elif size == 0:  # the box runs to the end of the file
            boxes.append((raw_type.decode("ascii"), False))
            return boxes
        if size < header:
            return None
        # ftyp and styp: major brand, minor version, then whole 4-byte compatible brands.
        branded = size >= 16 and (size - 16) % 4 == 0
        boxes.append((raw_type.decode("ascii"), branded))
        position += size
    if whole and position != len(head):
        return None
    return boxes
