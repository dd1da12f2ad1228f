"""The SSD1306 OLED over I2C (``luma.oled``, optional extra ``omgrab[display]``).

``ScreenWriter`` opens the display at construction; when ``luma.oled`` is missing or nothing
answers at the I2C address it is ``available`` False and drawing is a no-op. A write that fails
makes it unavailable (the error is counted in ``errors``, logged once per outage), and it tries
to reopen the display at most every ``RETRY_INTERVAL_S`` seconds when asked to draw. Single
threaded: the screen manager's worker is its only caller.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable
from typing import Any

import PIL.Image

logger = logging.getLogger(__name__)

RETRY_INTERVAL_S = 30.0


def _luma_device(bus: int, address: int, width: int, height: int) -> Any:
    serial = importlib.import_module("luma.core.interface.serial")
    oled = importlib.import_module("luma.oled.device")
    return oled.ssd1306(serial.i2c(port=bus, address=address), width=width, height=height)


class ScreenWriter:
    """Draws 1-bit images on an SSD1306 OLED (omgrab 0.1.2 constructor).

    Args:
        i2c_bus: I2C bus number.
        i2c_address: The display's I2C address.
        width: Pixels across.
        height: Pixels down.
        device_factory: ``(bus, address, width, height) -> luma device``; ``luma.oled``'s
            ``ssd1306`` when None.
    """

    def __init__(
        self,
        i2c_bus: int = 1,
        i2c_address: int = 0x3C,
        width: int = 128,
        height: int = 64,
        *,
        device_factory: Callable[[int, int, int, int], Any] | None = None,
    ) -> None:
        self._bus = i2c_bus
        self._address = i2c_address
        self._width = width
        self._height = height
        self._factory = device_factory or _luma_device
        self._device: Any = None
        self._last_attempt = 0.0
        self.errors = 0
        self._open()

    def _open(self) -> None:
        self._last_attempt = time.monotonic()
        try:
            self._device = self._factory(self._bus, self._address, self._width, self._height)
        except Exception as exc:  # ImportError (no luma), OSError 121 (nothing at the address)
            self._device = None
            logger.info(
                "OLED screen not available on I2C bus %d address 0x%02x: %s",
                self._bus,
                self._address,
                exc,
            )
            return
        logger.info("OLED screen %dx%d on I2C bus %d", self._width, self._height, self._bus)

    @property
    def available(self) -> bool:
        """Whether the display is open."""
        return self._device is not None

    @property
    def width(self) -> int:
        """Pixels across."""
        return self._width

    @property
    def height(self) -> int:
        """Pixels down."""
        return self._height

    def display(self, image: PIL.Image.Image) -> None:
        """Draw ``image``; reopens an unavailable display at most every ``RETRY_INTERVAL_S``."""
        if self._device is None:
            if time.monotonic() - self._last_attempt < RETRY_INTERVAL_S:
                return
            self._open()
            if self._device is None:
                return
        try:
            self._device.display(image.convert("1"))
        except Exception as exc:
            self.errors += 1
            logger.warning("OLED screen write failed (%s); retrying later", exc)
            self._device = None
            self._last_attempt = time.monotonic()

    def clear(self) -> None:
        """Blank the display."""
        self.display(PIL.Image.new("1", (self._width, self._height), 0))

    def cleanup(self) -> None:
        """Blank and release the display."""
        device, self._device = self._device, None
        if device is not None:
            try:
                device.cleanup()
            except Exception as exc:
                logger.warning("OLED screen cleanup failed: %s", exc)
