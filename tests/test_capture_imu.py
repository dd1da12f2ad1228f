"""QueueReaderSensor and SyntheticImu."""

from __future__ import annotations

import datetime
import itertools
import math
import queue

import numpy as np
import orjson
import pytest

from omgrab import sensors


def test_public_names_reexported() -> None:
    for name in ("Sensor", "SensorDataUnavailableError", "QueueReaderSensor", "SyntheticImu"):
        assert hasattr(sensors, name), name


def test_queue_reader_sensor() -> None:
    q: queue.Queue = queue.Queue()
    ts = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    with sensors.QueueReaderSensor(q) as sensor:
        q.put((b"{}", ts))
        assert sensor.get_next_item(timeout_s=1.0) == (b"{}", ts)
        with pytest.raises(sensors.SensorDataUnavailableError, match="within"):
            sensor.get_next_item(timeout_s=0.05)
        q.put((b"x", ts))
        q.put((b"y", ts))
        assert sensor.flush_queue() == 2
    with pytest.raises(sensors.SensorDataUnavailableError, match="not open"):
        sensor.get_next_item(timeout_s=0.01)


def test_imu_item_schema(manual_clock) -> None:
    imu = sensors.SyntheticImu(rate_hz=100, batch_size=10, clock=manual_clock)
    with imu:
        payload, timestamp = imu.get_next_item(timeout_s=1.0)
    item = orjson.loads(payload)
    assert set(item) == {"seq", "t0", "rate_hz", "readings"}
    assert item["seq"] == 0 and item["rate_hz"] == 100.0
    assert datetime.datetime.fromisoformat(item["t0"]) == timestamp
    assert timestamp.tzinfo is not None
    readings = item["readings"]
    assert len(readings) == 10
    assert [r["dt_ms"] for r in readings] == pytest.approx([10.0 * i for i in range(10)])
    for reading in readings:
        assert set(reading) == {"dt_ms", "accel", "gyro"}
        assert len(reading["accel"]) == 3 and len(reading["gyro"]) == 3
    assert b" " not in payload  # compact JSON


def test_imu_physics_gravity_rotation_noise(manual_clock) -> None:
    imu = sensors.SyntheticImu(
        rate_hz=100, batch_size=10, clock=manual_clock, pace=False, gravity_axis=2
    )
    with imu:
        items = [orjson.loads(imu.get_next_item(1.0)[0]) for _ in range(40)]  # 4 s of data
    accel = np.array([r["accel"] for it in items for r in it["readings"]])
    gyro = np.array([r["gyro"] for it in items for r in it["readings"]])
    norms = np.linalg.norm(accel, axis=1)
    assert norms.mean() == pytest.approx(sensors.STANDARD_GRAVITY, abs=0.01)
    assert accel[:, 2].mean() > 9.7  # gravity on z
    assert abs(accel[:, 1].mean()) < 0.05
    assert gyro[:, 2].mean() == pytest.approx(0.2, abs=0.005)  # slow yaw
    assert 0.0 < accel[:, 2].std() < 0.1  # noisy, not constant
    assert np.ptp(accel[:, 0]) > 0.5  # the roll sway tilts gravity into x ...
    assert np.ptp(gyro[:, 1]) > 0.1  # ... and shows as a rate about y


def test_imu_is_deterministic_for_a_seed(manual_clock) -> None:
    def first_payload(seed: int) -> bytes:
        imu = sensors.SyntheticImu(clock=manual_clock, pace=False, seed=seed)
        with imu:
            payload = imu.get_next_item(1.0)[0]
        return orjson.dumps(orjson.loads(payload)["readings"])

    assert first_payload(1) == first_payload(1)
    assert first_payload(1) != first_payload(2)


def test_imu_paced_at_real_rate(manual_clock) -> None:
    source = manual_clock.source
    imu = sensors.SyntheticImu(rate_hz=100, batch_size=10, clock=manual_clock)
    with imu:
        start = source.monotonic()
        stamps = [imu.get_next_item(1.0)[1] for _ in range(5)]
        # Batch k is complete when its last reading (k*10 + 9) / 100 s after start is due.
        assert source.monotonic() - start == pytest.approx(0.49)
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(stamps)]
    assert gaps == pytest.approx([0.1] * 4, abs=1e-6)


def test_imu_restarts_schedule_when_behind(manual_clock) -> None:
    source = manual_clock.source
    imu = sensors.SyntheticImu(rate_hz=100, batch_size=10, clock=manual_clock)
    with imu:
        _, first = imu.get_next_item(1.0)
        source.advance(5.0)  # consumer stalls
        now = source.monotonic()
        _, late = imu.get_next_item(1.0)
        assert source.monotonic() == pytest.approx(now)  # delivered at once
        # Fresh data ending now, not the first of 50 stale batches.
        assert late == manual_clock.to_datetime(now - 0.09)
        assert (late - first).total_seconds() >= 5.0
        imu.get_next_item(1.0)
        assert source.monotonic() == pytest.approx(now + 0.1)  # then real rate again


def test_imu_timeout(manual_clock) -> None:
    imu = sensors.SyntheticImu(rate_hz=10, batch_size=10, clock=manual_clock)  # 1 item/s
    with imu:
        with pytest.raises(sensors.SensorDataUnavailableError, match="timeout"):
            imu.get_next_item(timeout_s=0.1)
        payload, _ = imu.get_next_item(timeout_s=2.0)
        assert orjson.loads(payload)["seq"] == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rate_hz": 0}, "rate_hz"),
        ({"rate_hz": math.nan}, "rate_hz"),
        ({"batch_size": 0}, "batch_size"),
        ({"gravity_axis": 3}, "gravity_axis"),
    ],
)
def test_imu_rejects_bad_arguments(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        sensors.SyntheticImu(**kwargs)
