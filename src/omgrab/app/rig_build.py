"""Building the device runtime a :class:`~omgrab.app.rig_config.RigConfig` describes.

:func:`build_app` turns the validated file into a :class:`~omgrab.app.device_app.DeviceApp`:
the :class:`~omgrab.app.config.AppConfig`, the capture device (simulated, USB/V4L2 camera,
video file or OAK-D), the GPIO controller (simulated or gpiod, with the trigger file ORed in)
and the battery gauge (none or INA219). Hardware modules are passed in by tests (the gpiod twin, the
INA219 twin); on a rig the real ones are imported when needed.
"""

from __future__ import annotations

import json
import os
import pathlib
import stat
from collections.abc import Callable
from typing import Any

from omgrab import clock as clock_mod
from omgrab import devices, gpio, storage
from omgrab.app import config as config_mod
from omgrab.app import device_app, rig_config
from omgrab.cameras import base as camera_base
from omgrab.cameras import calibration as calibration_mod
from omgrab.cameras import usb as usb_camera
from omgrab.devices import oakd
from omgrab.devices import video_file as video_file_device
from omgrab.gpio import controller as gpio_contract
from omgrab.hardware import ina219


def app_config(rig: rig_config.RigConfig) -> config_mod.AppConfig:
    """The :class:`AppConfig` part of ``rig`` (everything but the hardware objects)."""
    device = rig.device
    calibration = (
        {"rgb": json.dumps(calibration_mod.load_intrinsics(device.calibration), sort_keys=True)}
        if device.calibration
        else {}
    )
    return config_mod.AppConfig(
        data_dir=pathlib.Path(rig.rig.data_dir),
        device_id=rig.device_id,
        rgb_size=(device.rgb.width, device.rgb.height),
        depth_size=(device.depth.width, device.depth.height) if device.depth.enabled else None,
        fps=device.rgb.fps,
        imu_rate_hz=device.imu_rate_hz or None,
        rgb_preset=device.rgb.preset,
        rgb_bitrate=device.rgb.bitrate,
        rgb_options=dict(device.rgb.options),
        intrinsics=calibration,
        chunk_length_s=rig.recording.chunk_length_s,
        faults=device.faults or None,
        dashboard_port=rig.dashboard.port if rig.dashboard.enabled else None,
        dashboard_host=rig.dashboard.host,
        dashboard_token=rig.dashboard.token or None,
        mqtt_host=rig.mqtt.host or None,
        mqtt_port=rig.mqtt.port,
        mqtt_topic=rig.mqtt.topic,
        mqtt_username=rig.mqtt.username or None,
        mqtt_password=rig.mqtt.password or None,
        mqtt_tls=rig.mqtt.tls,
        mqtt_ca_file=rig.mqtt.ca_file or None,
        network_check_host=rig.network.probe_host,
        network_check_port=rig.network.probe_port,
        trigger_file=pathlib.Path(rig.gpio.trigger_file) if rig.gpio.trigger_file else None,
        battery=config_mod.BatteryConfig(
            rig.battery.i2c_bus,
            rig.battery.i2c_address,
            rig.battery.min_voltage,
            rig.battery.max_voltage,
        )
        if rig.battery.type == "ina219"
        else None,
        upload=rig.upload,
        storage_thresholds=storage.StorageThresholds(
            reduce_below=rig.storage.reduce_below,
            detection_only_below=rig.storage.detection_only_below,
            recorder_floor=rig.storage.recorder_floor,
            recorder_floor_bytes=rig.storage.recorder_floor_bytes,
        ),
    )


def _usb_source(source: int | str) -> tuple[int | str, bool]:
    """Return (what OpenCV opens, whether it is a V4L2 device rather than a file or FIFO)."""
    if isinstance(source, int):
        return source, True
    if source.isdigit():
        return int(source), True
    try:
        mode = os.stat(source).st_mode
    except OSError:
        return source, source.startswith("/dev/")
    return source, stat.S_ISCHR(mode)


def build_device(rig: rig_config.RigConfig, clock: clock_mod.DeviceClock) -> Any:
    """The capture device ``rig.device`` describes."""
    device = rig.device
    rgb = camera_base.CameraConfig(device.rgb.fps, device.rgb.width, device.rgb.height)
    depth = (
        camera_base.CameraConfig(device.depth.fps, device.depth.width, device.depth.height)
        if device.depth.enabled
        else None
    )
    imu = device.imu_rate_hz or None
    if device.type == "usb":
        source, is_v4l2 = _usb_source(device.source)
        camera = usb_camera.USBCamera(
            source,
            rgb,
            clock=clock,
            api_preference=None if is_v4l2 else usb_camera.cv2.CAP_FFMPEG,
            fourcc="MJPG" if is_v4l2 else None,
        )
        return devices.USBCaptureDevice(rig.device_label, {"rgb": camera})
    if device.type == "video_file":
        return video_file_device.VideoFileCaptureDevice(
            rig.device_label, str(device.source), rgb, clock
        )
    if device.type == "oakd":
        return oakd.OakDCaptureDevice(rig.device_label, rgb, depth, imu, clock)
    return devices.SimulatedCaptureDevice(
        label=rig.device_label,
        rgb=rgb,
        depth=depth,
        imu_rate_hz=imu,
        clock=clock,
        faults=device.faults or None,
    )


def build_gpio(rig: rig_config.RigConfig, gpiod_module: Any = None) -> gpio_contract.GPIOController:
    """The GPIO controller ``rig.gpio`` describes (``gpiod_module``: a twin in tests)."""
    section = rig.gpio
    trigger = section.trigger_file or None
    if section.backend == "simulated":
        return gpio.SimulatedGPIOController(trigger_path=trigger)
    pins = gpio.GPIOPins(
        chip_path=section.chip,
        status_led=section.status_led,
        recording_led=section.recording_led,
        network_led=section.network_led,
        buzzer=section.buzzer,
        button=section.button,
        button_active_low=section.button_active_low,
    )
    controller: gpio_contract.GPIOController = gpio.GpiodController(pins, gpiod_module=gpiod_module)
    return gpio.RemoteButton(controller, trigger) if trigger else controller


def build_app(
    rig: rig_config.RigConfig,
    *,
    gpiod_module: Any = None,
    i2c_bus_factory: Callable[[int], ina219.SMBusLike] | None = None,
    perception: bool = True,
) -> device_app.DeviceApp:
    """The :class:`DeviceApp` running exactly what ``rig`` says.

    Args:
        rig: The validated configuration.
        gpiod_module: The ``gpiod`` module to use (tests: :class:`omgrab.gpio.GpiodTwin`).
        i2c_bus_factory: Opens an I2C bus by number (tests: the INA219 twin's bus).
        perception: Run the perception loop (``omgrab record`` does not).
    """
    config = app_config(rig)
    config.perception = perception
    clock = device_app.clock_for(config)  # steppable when a clock_step fault is configured
    battery = device_app.build_battery(config.battery, i2c_bus_factory)
    return device_app.DeviceApp(
        config,
        gpio_controller=build_gpio(rig, gpiod_module),
        device=build_device(rig, clock),
        clock=clock,
        battery=battery,
    )
