"""A configured rig end to end: a USB camera fed in real time from a video file, the gpiod twin
for the button and LEDs, the INA219 twin for the battery, a calibration file for intrinsics.

The camera is the real USB backend (OpenCV ``VideoCapture`` with FFmpeg) reading a FIFO that
``ffmpeg -re`` fills from a real video file at its frame rate, as a camera would.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import threading
import time

import av
import pytest

from omgrab import gpio
from omgrab.app import rig_build, rig_config
from omgrab.testing import ina219_twin
from omgrab.workflows import states

WIDTH, HEIGHT, FPS = 320, 240, 25
FFMPEG = ("ffmpeg", "-loglevel", "error")
BUTTON, STATUS, RECORDING, NETWORK, BUZZER = 5, 6, 13, 19, 26


@pytest.fixture
def camera_fifo(tmp_path: pathlib.Path) -> pathlib.Path:
    video = tmp_path / "source.mkv"
    subprocess.run(
        [
            *FFMPEG,
            "-f",
            "lavfi",
            "-i",
            f"testsrc=size={WIDTH}x{HEIGHT}:rate={FPS}",
            "-t",
            "30",
            "-c:v",
            "mjpeg",
            str(video),
        ],
        check=True,
        timeout=120,
    )
    fifo = tmp_path / "video-usb0"
    os.mkfifo(fifo)
    feeder = subprocess.Popen(
        [*FFMPEG, "-re", "-i", str(video), "-c", "copy", "-f", "matroska", "-y", str(fifo)],
    )
    yield fifo
    feeder.kill()
    feeder.wait(30)


def _press(chip: gpio.SimulatedChip) -> None:
    chip.drive(BUTTON, False)  # active low
    threading.Event().wait(0.15)
    chip.drive(BUTTON, None)  # released: the pull-up takes it high


def _wait(predicate: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        threading.Event().wait(0.05)
    return False


def test_run_exactly_what_the_file_says(tmp_path: pathlib.Path, camera_fifo: pathlib.Path) -> None:
    calibration = {"fx": 301.5, "fy": 300.25, "cx": 160.0, "cy": 120.0, "distortion": [0.1, 0]}
    (tmp_path / "calib.json").write_text(json.dumps(calibration))
    data = tmp_path / "data"
    (tmp_path / "rig.toml").write_text(
        f"""
[rig]
id = "rig-under-test"
data_dir = "{data}"
[recording]
chunk_length_s = 1
[device]
type = "usb"
label = "usb-cam"
source = "{camera_fifo}"
calibration = "{tmp_path / "calib.json"}"
[device.rgb]
width = {WIDTH}
height = {HEIGHT}
fps = {FPS}
bitrate = 500000
preset = "ultrafast"
[gpio]
backend = "gpiod"
chip = "/dev/gpiochip3"
button = {BUTTON}
status_led = {STATUS}
recording_led = {RECORDING}
network_led = {NETWORK}
buzzer = {BUZZER}
[battery]
type = "ina219"
i2c_bus = 3
i2c_address = 0x41
[network]
probe_host = "localhost"
probe_port = 9
[dashboard]
enabled = false
"""
    )
    rig = rig_config.load(tmp_path / "rig.toml", env={})
    twin = gpio.GpiodTwin(chip_paths=["/dev/gpiochip3"])
    adapter, _ = ina219_twin.ups_hat_b(bus_voltage_v=7.8, address=0x41, bus_number=3)
    opened: list[int] = []

    def open_bus(number: int) -> object:
        opened.append(number)
        return adapter.open(number)

    app = rig_build.build_app(rig, gpiod_module=twin, i2c_bus_factory=open_bus)  # type: ignore[arg-type]
    chip = twin.chip("/dev/gpiochip3")
    app.start()
    try:
        assert sorted(chip.requested_offsets()) == sorted(
            [BUTTON, STATUS, RECORDING, NETWORK, BUZZER]
        )
        _press(chip)
        assert _wait(lambda: app.state_machine.state is states.WorkflowState.RECORDING, 30)
        assert _wait(lambda: chip.physical_level(RECORDING), 5)  # red LED on the configured line
        threading.Event().wait(2.5)
        _press(chip)
        assert app.wait_for_recordings(1, timeout=120), app.recorder.last_error
        status = app.status.get_status_dict()
    finally:
        app.stop()
    assert opened and set(opened) == {3}
    assert status["device_id"] == "rig-under-test"
    assert status["battery"] is not None and 7.7 < status["battery"]["voltage_v"] < 7.9
    [merged] = sorted((data / "recordings").glob("*.mkv"))
    with av.open(str(merged)) as container:
        [stream] = container.streams
        assert (stream.codec_context.name, stream.codec_context.width) == ("h264", WIDTH)
        frames = sum(1 for p in container.demux(stream) if p.size)
    assert frames >= 2 * FPS  # about 2.5 s at the file's real-time rate
    manifest = json.loads(merged.with_suffix(".json").read_text())
    assert manifest["devices"][0]["label"] == "usb-cam"
    tags = manifest["streams"]["rgb"]["config"]["metadata"]
    assert json.loads(tags["intrinsics"]) == calibration
    final = json.loads((data / "status.json").read_text())
    assert final["state_machine_state"] == "stopped"
