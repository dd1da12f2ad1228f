"""Published 0.1.2 import path ``omgrab.sensors.sensor``: a thin compatibility module.

Re-exports the sensor contract from :mod:`omgrab.sensors.base`. See ``docs/compat.md``.
"""

from omgrab.sensors.base import Item, Sensor, SensorDataUnavailableError

__all__ = ["Item", "Sensor", "SensorDataUnavailableError"]
