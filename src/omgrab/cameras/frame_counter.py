"""A frame counter burned into images as big blocks that survive lossy video coding.

The counter is drawn into a strip at the top of the frame: a grid of ``ROWS`` x ``COLUMNS``
cells, each filled with one level. Cell 0 is always the *low* level and cell 1 always the
*high* level; they calibrate the threshold, so the same reader works for RGB (0 / 255), for
depth in millimetres (any two levels) and for frames that went through H.264 and came back a
little blurred and shifted in brightness. The remaining cells carry 24 counter bits and an
8-bit check value, most significant bit first, row by row. The last two cells repeat the
reference levels (high, low).

Cells are at least a few pixels wide, and only the central half of each cell is sampled, so
block edges smeared by the codec do not matter.
"""

from __future__ import annotations

import numpy as np

ROWS = 2
COLUMNS = 18
COUNTER_BITS = 24
CHECK_BITS = 8
COUNTER_MODULUS = 1 << COUNTER_BITS
MIN_WIDTH = COLUMNS * 2
MIN_HEIGHT = 24


class FrameCounterError(ValueError):
    """The image carries no readable frame counter (too small, or the check value is wrong)."""


def cell_height(image_height: int) -> int:
    """Return the height in pixels of one counter cell for an image of this height."""
    return max(4, image_height // 16)


def strip_height(image_height: int) -> int:
    """Return the height in pixels of the whole counter strip at the top of the image."""
    return ROWS * cell_height(image_height)


def _check_value(counter: int) -> int:
    b0 = counter & 0xFF
    b1 = (counter >> 8) & 0xFF
    b2 = (counter >> 16) & 0xFF
    return (b0 * 1 + b1 * 3 + b2 * 7 + 0x5A) & 0xFF


def _bits(counter: int) -> list[bool]:
    """Return the cell levels (True = high) for ``counter``, cell by cell."""
    payload = (counter << CHECK_BITS) | _check_value(counter)
    total = COUNTER_BITS + CHECK_BITS
    data = [bool((payload >> (total - 1 - i)) & 1) for i in range(total)]
    return [False, True, *data, True, False]


def _cell_bounds(width: int, height: int, index: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """Return ``((y0, y1), (x0, x1))`` of counter cell ``index``."""
    cw = width // COLUMNS
    ch = cell_height(height)
    row, col = divmod(index, COLUMNS)
    return (row * ch, (row + 1) * ch), (col * cw, (col + 1) * cw)


def check_size(width: int, height: int) -> None:
    """Raise ``ValueError`` when a frame of this size is too small to carry the counter."""
    if width < MIN_WIDTH or height < MIN_HEIGHT:
        raise ValueError(
            f"frame {width}x{height} is too small for the frame counter "
            f"(needs at least {MIN_WIDTH}x{MIN_HEIGHT})"
        )


def draw_frame_counter(image: np.ndarray, counter: int, low: int, high: int) -> None:
    """Burn ``counter`` (modulo 2**24) into the top strip of ``image`` in place.

    Args:
        image: ``HxW`` or ``HxWxC`` array.
        counter: Frame number; only its low 24 bits are stored.
        low: Level used for 0 bits (and the first reference cell).
        high: Level used for 1 bits (and the second reference cell).
    """
    height, width = image.shape[:2]
    check_size(width, height)
    counter %= COUNTER_MODULUS
    for index, bit in enumerate(_bits(counter)):
        (y0, y1), (x0, x1) = _cell_bounds(width, height, index)
        image[y0:y1, x0:x1] = high if bit else low


def _sample(image: np.ndarray, index: int) -> float:
    height, width = image.shape[:2]
    (y0, y1), (x0, x1) = _cell_bounds(width, height, index)
    dy = (y1 - y0) // 4
    dx = (x1 - x0) // 4
    region = image[y0 + dy : y1 - dy, x0 + dx : x1 - dx]
    return float(region.mean())


def read_frame_counter(image: np.ndarray) -> int:
    """Recover the frame counter drawn by ``draw_frame_counter`` from a (decoded) frame.

    Works on RGB ``HxWx3`` uint8 frames after lossy H.264 coding, on gray frames and on
    ``HxW`` uint16 depth frames.

    Args:
        image: The frame, at the size it was generated.

    Returns:
        The counter value (0 .. 2**24 - 1).

    Raises:
        FrameCounterError: When the image is too small, the reference cells do not differ, or
            the check value does not match (the strip is damaged or absent).
    """
    if image.ndim not in (2, 3):
        raise FrameCounterError(f"expected an HxW or HxWxC image, got shape {image.shape}")
    height, width = image.shape[:2]
    try:
        check_size(width, height)
    except ValueError as exc:
        raise FrameCounterError(str(exc)) from None
    low = _sample(image, 0)
    high = _sample(image, 1)
    if high - low <= 0 or high - low < 0.1 * max(abs(high), abs(low), 1.0):
        raise FrameCounterError(
            f"no frame counter: reference cells are not low/high ({low:.1f}, {high:.1f})"
        )
    threshold = (low + high) / 2.0
    total = COUNTER_BITS + CHECK_BITS
    payload = 0
    for i in range(total):
        payload = (payload << 1) | int(_sample(image, 2 + i) > threshold)
    counter = payload >> CHECK_BITS
    check = payload & ((1 << CHECK_BITS) - 1)
    if check != _check_value(counter):
        raise FrameCounterError(
            f"frame counter check failed (read {counter}, check {check:#04x}, "
            f"expected {_check_value(counter):#04x})"
        )
    return counter
