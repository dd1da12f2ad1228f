"""OLED status screen (omgrab 0.1.2's ``omgrab.display``; ``pip install 'omgrab[display]'``).

:class:`ScreenManager` renders status, notifications and a camera preview to a 1-bit screen;
:class:`~omgrab.display.screen_writer.ScreenWriter` drives an SSD1306 over I2C (``luma.oled``,
imported lazily), and :class:`~omgrab.display.screen_twin.ScreenTwin` is its software twin.
"""

from omgrab.display.screen_manager import Notification, ScreenManager
from omgrab.display.screen_twin import ScreenTwin
from omgrab.display.screen_writer import ScreenWriter

__all__ = ["Notification", "ScreenManager", "ScreenTwin", "ScreenWriter"]
