"""A software twin of the SSD1306 OLED: the :class:`ScreenWriter` interface over memory.

Holds what a 1-bit display would show (``image``, a copy of the last frame written), counts
frames, and can be switched unavailable (unplugged) or made to fail writes, so screen code is
exercised here without I2C hardware. No thread; ``display`` may be called from one thread at
a time, as on the real writer.
"""

from __future__ import annotations

import PIL.Image


class ScreenTwin:
    """In-memory 1-bit screen with :class:`~omgrab.display.screen_writer.ScreenWriter`'s API.

    Args:
        width: Pixels across (128 on the usual SSD1306).
        height: Pixels down (64, or 32).
        available: Whether the screen is present.
    """

    def __init__(self, width: int = 128, height: int = 64, available: bool = True) -> None:
        if width <= 0 or height <= 0:
            raise ValueError(f"screen size must be positive, got {width}x{height}")
        self._width = width
        self._height = height
        self.available_flag = available
        self.fail_writes = False
        self.image = PIL.Image.new("1", (width, height), 0)
        self.frames_shown = 0
        self.cleaned_up = False

    @property
    def available(self) -> bool:
        """Whether the screen is present (set ``available_flag`` to unplug it)."""
        return self.available_flag

    @property
    def width(self) -> int:
        """Pixels across."""
        return self._width

    @property
    def height(self) -> int:
        """Pixels down."""
        return self._height

    def display(self, image: PIL.Image.Image) -> None:
        """Show ``image`` (converted to 1 bit, it must be the screen's size).

        Raises:
            ValueError: Wrong size.
            OSError: ``fail_writes`` is set (an I2C write error).
        """
        if image.size != (self._width, self._height):
            raise ValueError(f"image is {image.size}, the screen {self._width}x{self._height}")
        if self.fail_writes:
            raise OSError(121, "Remote I/O error (twin)")
        if not self.available_flag:
            return
        self.image = image.convert("1").copy()
        self.frames_shown += 1

    def clear(self) -> None:
        """Blank the screen."""
        self.image = PIL.Image.new("1", (self._width, self._height), 0)

    def cleanup(self) -> None:
        """Blank the screen and release it."""
        self.clear()
        self.cleaned_up = True

    def lit_fraction(self) -> float:
        """Fraction of pixels lit on the screen now."""
        data = self.image.tobytes()
        lit = sum(bin(byte).count("1") for byte in data)
        return lit / (self._width * self._height)
