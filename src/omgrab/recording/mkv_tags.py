"""Read and rewrite the Matroska ``Tags`` element of a finished file in place.

libavformat writes the Tags element into the file header, before any cluster, so values that
are only known once every packet has been muxed (the number of frames actually copied, say) are
written as placeholders and filled in here afterwards. libavformat also forces the global
``ENCODER`` tag to its own name; :func:`rewrite_tags` lets the merge put the real producer there.

The rewrite never moves any other element: the new Tags element occupies exactly the bytes of
the old one and any slack becomes an EBML ``Void`` element, which every Matroska reader skips.
To leave room for longer values, reserve space with a global tag named :data:`RESERVED_TAG`
before muxing; the rewrite drops that tag.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from collections.abc import Callable

from omgrab.recording import ebml

RESERVED_TAG = "OMGRAB_RESERVED"
"""Name of a throw-away global tag whose bytes :func:`rewrite_tags` may reuse."""

_EBML_HEADER = 0x1A45DFA3
_SEGMENT = 0x18538067
_CLUSTER = 0x1F43B675
_TAGS = 0x1254C367
_TAG = 0x7373
_TARGETS = 0x63C0
_TAG_TRACK_UID = 0x63C5
_SIMPLE_TAG = 0x67C8
_TAG_NAME = 0x45A3
_TAG_STRING = 0x4487


class MkvTagsError(ebml.EbmlError):
    """The file is not Matroska, has no Tags element, or the new tags do not fit."""


@dataclasses.dataclass
class SimpleTag:
    """One ``SimpleTag``: a name, its string value and any other child elements verbatim."""

    name: str
    value: str | None
    other_children: bytes = b""


@dataclasses.dataclass
class Tag:
    """One ``Tag``: its ``Targets`` element verbatim plus its simple tags.

    ``track_uid`` is the ``TagTrackUID`` target (``None`` for global tags).
    """

    targets: bytes
    track_uid: int | None
    simple_tags: list[SimpleTag]

    def get(self, name: str) -> str | None:
        """Return the value of the first simple tag called ``name`` (case-insensitive)."""
        for simple in self.simple_tags:
            if simple.name.upper() == name.upper():
                return simple.value
        return None


def _find_tags(path: pathlib.Path) -> tuple[int, int, int, bytes, int]:
    """Locate the Tags element.

    Returns:
        (element start, size-field width, payload start, payload, bytes available), where the
        bytes available include a Void element directly after the Tags element.
    """
    with path.open("rb") as f:
        head = f.read(64)
        if len(head) < 4 or int.from_bytes(head[:4], "big") != _EBML_HEADER:
            raise MkvTagsError(f"{path} is not a Matroska file (no EBML header)")
        _, after_id = ebml.read_id(head, 0)
        size, payload, _ = ebml.read_size(head, after_id)
        pos = payload + size
        f.seek(pos)
        head = f.read(16)
        element_id, after_id = ebml.read_id(head, 0)
        if element_id != _SEGMENT:
            raise MkvTagsError(f"{path} has no Segment after its EBML header")
        _, seg_payload, _ = ebml.read_size(head, after_id - 0)
        pos += seg_payload
        file_size = os.fstat(f.fileno()).st_size
        while pos < file_size:
            f.seek(pos)
            head = f.read(16)
            if len(head) < 2:
                break
            element_id, after_id = ebml.read_id(head, 0)
            size, payload_off, width = ebml.read_size(head, after_id)
            if size == ebml.UNKNOWN_SIZE:
                break
            if element_id == _TAGS:
                f.seek(pos + payload_off)
                tags_payload = f.read(size)
                available = payload_off + size
                after = f.read(16)
                if len(after) >= 2 and after[0] == ebml.VOID:
                    void_size, void_payload, _ = ebml.read_size(after, 1)
                    if void_size != ebml.UNKNOWN_SIZE:
                        available += void_payload + void_size
                return pos, width, pos + payload_off, tags_payload, available
            pos += payload_off + size
    raise MkvTagsError(f"{path} has no Tags element")


def _parse_tags(payload: bytes) -> list[Tag]:
    tags = []
    for element_id, _, start, end in ebml.children(payload, 0, len(payload)):
        if element_id != _TAG:
            continue
        targets = b""
        track_uid = None
        simple_tags = []
        for child_id, child_start, child_payload, child_end in ebml.children(payload, start, end):
            if child_id == _TARGETS:
                targets = payload[child_start:child_end]
                for t_id, _, t_start, t_end in ebml.children(payload, child_payload, child_end):
                    if t_id == _TAG_TRACK_UID:
                        track_uid = int.from_bytes(payload[t_start:t_end], "big")
            elif child_id == _SIMPLE_TAG:
                name = ""
                value = None
                other = b""
                for s_id, s_el, s_start, s_end in ebml.children(payload, child_payload, child_end):
                    if s_id == _TAG_NAME:
                        name = payload[s_start:s_end].decode("utf-8", "replace")
                    elif s_id == _TAG_STRING:
                        value = payload[s_start:s_end].decode("utf-8", "replace")
                    else:
                        other += payload[s_el:s_end]
                simple_tags.append(SimpleTag(name, value, other))
        tags.append(Tag(targets, track_uid, simple_tags))
    return tags


def _serialize(tags: list[Tag]) -> bytes:
    out = bytearray()
    for tag in tags:
        body = bytearray(tag.targets or ebml.element(_TARGETS, b""))
        for simple in tag.simple_tags:
            inner = ebml.element(_TAG_NAME, simple.name.encode())
            if simple.value is not None:
                inner += ebml.element(_TAG_STRING, simple.value.encode())
            inner += simple.other_children
            body += ebml.element(_SIMPLE_TAG, inner)
        out += ebml.element(_TAG, bytes(body))
    return bytes(out)


def segment_is_complete(path: str | os.PathLike[str]) -> bool:
    """Return whether the Matroska file at ``path`` was finalised by its muxer.

    A finished file has a Segment of known size that ends within the file. A file cut short by
    a crash or power loss either still has the unknown-size marker or ends before its Segment.
    """
    file = pathlib.Path(path)
    try:
        with file.open("rb") as f:
            head = f.read(64)
            size_total = os.fstat(f.fileno()).st_size
    except OSError:
        return False
    try:
        if len(head) < 8 or int.from_bytes(head[:4], "big") != _EBML_HEADER:
            return False
        _, after_id = ebml.read_id(head, 0)
        size, payload, _ = ebml.read_size(head, after_id)
        pos = payload + size
        if pos + 12 > len(head):
            return False
        element_id, after_id = ebml.read_id(head, pos)
        if element_id != _SEGMENT:
            return False
        seg_size, seg_payload, _ = ebml.read_size(head, after_id)
    except (IndexError, ebml.EbmlError):
        return False
    return seg_size != ebml.UNKNOWN_SIZE and seg_payload + seg_size <= size_total


def parse_tags_element(data: bytes) -> list[Tag]:
    """Return the tags of the first level-1 Tags element of a Matroska file held in ``data``.

    Raises:
        MkvTagsError: ``data`` holds no complete Tags element.
    """
    pos = data.find(_TAGS.to_bytes(4, "big"))
    while pos >= 0:
        try:
            size, payload, _ = ebml.read_size(data, pos + 4)
        except (IndexError, ebml.EbmlError):
            size = ebml.UNKNOWN_SIZE
        if size != ebml.UNKNOWN_SIZE and payload + size <= len(data):
            return _parse_tags(data[payload : payload + size])
        pos = data.find(_TAGS.to_bytes(4, "big"), pos + 1)
    raise MkvTagsError("no Tags element")


def read_tags(path: str | os.PathLike[str]) -> list[Tag]:
    """Return every Tag of the Matroska file at ``path``.

    Raises:
        MkvTagsError: the file is not Matroska or has no Tags element.
    """
    payload = _find_tags(pathlib.Path(path))[3]
    return _parse_tags(payload)


def rewrite_tags(path: str | os.PathLike[str], edit: Callable[[list[Tag]], None]) -> None:
    """Let ``edit`` change the file's tags in place, then write them back without moving data.

    ``edit`` receives the tag list (global tags have ``track_uid`` ``None``) and mutates it.
    The :data:`RESERVED_TAG` simple tag is removed before writing, so its bytes are free for
    longer values; so is a Void element directly after the Tags element (where an earlier
    rewrite left its slack).

    Raises:
        MkvTagsError: the file has no Tags element or the edited tags are larger than the
            original element.
    """
    file = pathlib.Path(path)
    start, width, _, payload, old_total = _find_tags(file)
    tags = _parse_tags(payload)
    edit(tags)
    for tag in tags:
        tag.simple_tags = [s for s in tag.simple_tags if s.name != RESERVED_TAG]
    tags = [t for t in tags if t.simple_tags]
    new_payload = _serialize(tags)
    id_bytes = _TAGS.to_bytes(4, "big")
    for size_width in range(width, 9):
        try:
            header = id_bytes + ebml.encode_size(len(new_payload), size_width)
        except ebml.EbmlError:
            continue
        gap = old_total - len(header) - len(new_payload)
        if gap != 1:  # a 1-byte hole cannot hold a Void element: widen the size field
            break
    else:
        raise MkvTagsError(f"edited tags of {file} do not fit in the original Tags element")
    if gap < 0:
        raise MkvTagsError(
            f"edited tags of {file} need {-gap} more bytes than the original Tags element"
        )
    block = header + new_payload + (ebml.void(gap) if gap else b"")
    with file.open("r+b") as f:
        f.seek(start)
        f.write(block)
