"""Sensor sources: the ``Sensor`` contract, queue-fed sensors and a synthetic IMU.

Every sensor is a context manager whose ``get_next_item(timeout_s)`` returns
``(payload_bytes, timestamp)`` with a tz-aware UTC datetime from the device clock.
"""

from omgrab.sensors.base import Item, Sensor, SensorDataUnavailableError
from omgrab.sensors.queue_reader import QueueReaderSensor
from omgrab.sensors.synthetic_imu import STANDARD_GRAVITY, SyntheticImu

__all__ = [
    "STANDARD_GRAVITY",
    "Item",
    "QueueReaderSensor",
    "Sensor",
    "SensorDataUnavailableError",
    "SyntheticImu",
]
