"""Configuration of the device application (what `omgrab run` and `omgrab demo` start)."""

from __future__ import annotations

import dataclasses
import pathlib
import socket

from omgrab import storage
from omgrab.upload import config as upload_config


@dataclasses.dataclass
class BatteryConfig:
    """The INA219 battery gauge of a UPS HAT.

    Attributes:
        i2c_bus: I2C bus number (``/dev/i2c-<n>``).
        i2c_address: 7-bit I2C address of the INA219.
        min_voltage: Pack voltage read as 0 %.
        max_voltage: Pack voltage read as 100 %.
    """

    i2c_bus: int = 1
    i2c_address: int = 0x42
    min_voltage: float = 6.0
    max_voltage: float = 8.4


@dataclasses.dataclass
class AppConfig:
    """Everything the device application is built from.

    Attributes:
        data_dir: Root of all data: ``spool/`` (chunks while recording), ``recordings/`` (merged
            MKV + manifest), ``output/`` (perception output sessions), ``status.json``.
        device_id: Identifier written into status and health logs.
        rgb_size: RGB stream ``(width, height)``.
        depth_size: Depth stream ``(width, height)``, or None for no depth.
        fps: Video frame rate.
        imu_rate_hz: IMU sample rate, or None for no IMU.
        rgb_preset: libx264 preset for RGB.
        rgb_bitrate: RGB bitrate in bits/s.
        rgb_options: Extra libx264 options of the RGB stream.
        intrinsics: Per stream name, camera intrinsics as JSON, written to the stream's
            ``intrinsics`` tag (and so to the manifest).
        chunk_length_s: Recording chunk length.
        faults: Fault-injection spec for the simulated device (see ``omgrab.devices``).
        perception: Run the perception loop feeding the OutputManager.
        perception_rate_hz: Perception loop rate.
        dashboard_port: Port of the web dashboard on ``dashboard_host``; None disables it,
            0 picks a free port.
        dashboard_host: Address the dashboard listens on.
        dashboard_token: Access token of the dashboard (required off loopback).
        dashboard_token_file: Where a generated dashboard token is kept (mode 0600) when
            ``dashboard_token`` is None; defaults to ``<data_dir>/dashboard-token`` off loopback.
        mqtt_host: MQTT broker for operator delivery, or None.
        mqtt_port: MQTT broker port.
        mqtt_topic: Topic detections are published on.
        mqtt_username: MQTT user name, or None for anonymous.
        mqtt_password: MQTT password.
        mqtt_tls: Connect to the broker with TLS.
        mqtt_ca_file: CA bundle for TLS, or None for the system's.
        mqtt_base_topic: Prefix of the status/availability/events/command topics
            (``<base>/<device_id>/...``).
        storage_thresholds: Free-space thresholds of the recorder and the perception output.
        mqtt_keepalive: MQTT keep-alive in seconds; the broker publishes the device's last
            will (``offline``) about 1.5 keep-alives after the device vanished.
        network_check_host: Host used for the internet reachability probe.
        network_check_port: Port used for the internet reachability probe.
        trigger_file: A file whose creation presses the button remotely, or None.
        battery: The UPS's INA219 battery gauge, or None for no battery (then no battery
            status and no warning about a missing I2C bus).
        upload: Where completed recordings are uploaded (S3), or None for no upload.
    """

    data_dir: pathlib.Path = pathlib.Path("omgrab-data")
    device_id: str = dataclasses.field(default_factory=socket.gethostname)
    rgb_size: tuple[int, int] = (1280, 800)
    depth_size: tuple[int, int] | None = (640, 400)
    fps: float = 25.0
    imu_rate_hz: float | None = 100.0
    rgb_preset: str = "superfast"
    rgb_bitrate: int = 4_000_000
    rgb_options: dict[str, str] = dataclasses.field(default_factory=dict)
    intrinsics: dict[str, str] = dataclasses.field(default_factory=dict)
    chunk_length_s: float = 60.0
    faults: str | None = None
    perception: bool = True
    perception_rate_hz: float = 10.0
    dashboard_port: int | None = None
    dashboard_host: str = "127.0.0.1"
    dashboard_token: str | None = None
    dashboard_token_file: pathlib.Path | None = None
    mqtt_host: str | None = None
    mqtt_port: int = 1883
    mqtt_topic: str = "omgrab/detections"
    mqtt_username: str | None = None
    mqtt_password: str | None = None
    mqtt_tls: bool = False
    mqtt_ca_file: str | None = None
    mqtt_base_topic: str = "omgrab"
    storage_thresholds: storage.StorageThresholds = dataclasses.field(
        default_factory=storage.StorageThresholds
    )
    mqtt_keepalive: int = 30
    network_check_host: str = "dns.google"
    network_check_port: int = 443
    trigger_file: pathlib.Path | None = None
    battery: BatteryConfig | None = None
    upload: upload_config.UploadConfig | None = None

    @property
    def spool_dir(self) -> pathlib.Path:
        """Where chunks are written while recording."""
        return self.data_dir / "spool"

    @property
    def recordings_dir(self) -> pathlib.Path:
        """Where merged recordings and their manifests go."""
        return self.data_dir / "recordings"

    @property
    def output_dir(self) -> pathlib.Path:
        """Where OutputManager sessions go."""
        return self.data_dir / "output"

    @property
    def status_file(self) -> pathlib.Path:
        """The device status JSON file for external readers."""
        return self.data_dir / "status.json"
