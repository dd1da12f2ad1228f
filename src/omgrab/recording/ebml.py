"""Minimal EBML (Matroska's binary format) reading and writing helpers.

Only what the merge needs to edit files libavformat wrote: element ids and sizes, child
iteration, unsigned integers, floats and ``Void`` padding. Everything works on ``bytes`` (or a
``memoryview``) already in memory; callers read and write the file regions themselves.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

UNKNOWN_SIZE = -1
"""Size returned by :func:`read_size` for an element of unknown size (all value bits set)."""

VOID = 0xEC


class EbmlError(ValueError):
    """Bytes that are not the EBML expected (bad id or size, an element overrunning its parent)."""


def read_id(data: bytes | memoryview, pos: int) -> tuple[int, int]:
    """Return (element id, position after the id) of the element starting at ``pos``."""
    first = data[pos]
    length = 1
    mask = 0x80
    while length <= 4 and not first & mask:
        mask >>= 1
        length += 1
    if length > 4:
        raise EbmlError(f"invalid EBML element id at byte {pos}")
    return int.from_bytes(data[pos : pos + length], "big"), pos + length


def read_size(data: bytes | memoryview, pos: int) -> tuple[int, int, int]:
    """Return (size, position after the size field, width of the size field)."""
    first = data[pos]
    length = 1
    mask = 0x80
    while length <= 8 and not first & mask:
        mask >>= 1
        length += 1
    if length > 8:
        raise EbmlError(f"invalid EBML size at byte {pos}")
    value = first & (mask - 1)
    for byte in data[pos + 1 : pos + length]:
        value = (value << 8) | byte
    if value == (1 << (7 * length)) - 1:
        value = UNKNOWN_SIZE
    return value, pos + length, length


def encode_size(value: int, width: int | None = None) -> bytes:
    """Encode an element size, in ``width`` bytes if given (else the fewest possible)."""
    minimal = 1
    while value >= (1 << (7 * minimal)) - 1:
        minimal += 1
    if width is None:
        width = minimal
    if width < minimal or width > 8:
        raise EbmlError(f"EBML size {value} does not fit in {width} bytes")
    return (value | (1 << (7 * width))).to_bytes(width, "big")


def unknown_size(width: int = 8) -> bytes:
    """The size field meaning "unknown" (used for a Segment still being written)."""
    return (0xFF >> (width - 1)).to_bytes(1, "big") + b"\xff" * (width - 1)


def element(element_id: int, payload: bytes) -> bytes:
    """Return a whole element: id, minimal size field and ``payload``."""
    id_len = (element_id.bit_length() + 7) // 8
    return element_id.to_bytes(id_len, "big") + encode_size(len(payload)) + payload


def uint_element(element_id: int, value: int) -> bytes:
    """Return an unsigned-integer element holding ``value`` in as few bytes as it needs."""
    return element(element_id, value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big"))


def read_uint(data: bytes | memoryview) -> int:
    """Decode an unsigned-integer element payload."""
    return int.from_bytes(data, "big")


def float_payload(value: float, width: int) -> bytes:
    """Encode a float element payload of ``width`` (4 or 8) bytes."""
    if width == 8:
        return struct.pack(">d", value)
    if width == 4:
        return struct.pack(">f", value)
    raise EbmlError(f"a float element is 4 or 8 bytes, not {width}")


def void(total: int) -> bytes:
    """Return a Void element exactly ``total`` (>= 2) bytes long."""
    if total < 2:
        raise EbmlError(f"cannot make a Void element of {total} bytes")
    if total - 2 <= 126:
        return bytes([VOID]) + encode_size(total - 2, 1) + bytes(total - 2)
    return bytes([VOID]) + encode_size(total - 9, 8) + bytes(total - 9)


def children(data: bytes | memoryview, start: int, end: int) -> list[tuple[int, int, int, int]]:
    """Return (id, element start, payload start, payload end) for each child in [start, end)."""
    return list(iter_children(data, start, end))


def iter_children(
    data: bytes | memoryview, start: int, end: int
) -> Iterator[tuple[int, int, int, int]]:
    """Iterate (id, element start, payload start, payload end) of the children in [start, end).

    Raises:
        EbmlError: a child has an unknown size or overruns ``end``.
    """
    pos = start
    while pos < end:
        element_id, after_id = read_id(data, pos)
        size, payload, _ = read_size(data, after_id)
        if size == UNKNOWN_SIZE or payload + size > end:
            raise EbmlError(f"element 0x{element_id:X} at byte {pos} overruns its parent")
        yield element_id, pos, payload, payload + size
        pos = payload + size
