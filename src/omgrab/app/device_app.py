"""The device application: every part of omgrab wired together on one clock.

:class:`DeviceApp` builds, from an :class:`~omgrab.app.config.AppConfig`:

* the capture device (simulated here; a real rig swaps in its own device) and the recorder
  (:class:`~omgrab.runtime.recording_manager.RecordingManager`), after salvaging any recording a
  crash left in the spool;
* the workflow (:class:`~omgrab.workflows.StateMachine`) driven by the button loop, with LEDs and
  buzzer on the GPIO controller (simulated unless one is given);
* the network monitor and the device status manager, whose status is written to
  ``status.json`` and, every second, to the OutputManager's health log;
* the OutputManager with operator sinks (an NDJSON hub for the dashboard, MQTT if configured)
  and the perception loop feeding it;
* optionally the web dashboard;
* optionally the S3 uploader (:mod:`omgrab.app.upload_service`, when ``config.upload`` is set),
  whose progress appears as ``upload`` in ``status.json`` and which frees space by deleting
  uploaded, remotely verified recordings when the storage ladder runs low.

Start with :meth:`DeviceApp.start`, stop with :meth:`DeviceApp.stop` (stops and merges an
active recording, drains every writer, leaves ``status.json`` saying ``stopped``).

One instance per data directory: :meth:`DeviceApp.start` takes the spool's
:class:`~omgrab.app.instance_lock.InstanceLock` before it recovers anything (a second instance
would otherwise take the first one's live recording for a crash leftover) and raises
:class:`~omgrab.app.instance_lock.InstanceLockedError` naming the holder's pid; :meth:`stop`
releases it last.
"""

from __future__ import annotations

import json
import logging
import pathlib
import threading
from collections.abc import Callable
from typing import Any

import omgrab
from omgrab import clock as clock_mod
from omgrab import devices, gpio, output, recorder_events, recording, storage
from omgrab.app import config as config_mod
from omgrab.app import dashboard, instance_lock, mqtt_console, perception, upload_service
from omgrab.app.web import security
from omgrab.cameras import base as camera_base
from omgrab.devices import faults as device_faults
from omgrab.gpio import controller as gpio_contract
from omgrab.hardware import ina219, system_metrics
from omgrab.recording import recovery
from omgrab.runtime import (
    battery_monitor,
    device_status,
    gpio_manager,
    merge_retry,
    network_monitor,
    recording_manager,
    wifi_connect,
)
from omgrab.workflows import state_machine

logger = logging.getLogger(__name__)


def build_battery(
    battery: config_mod.BatteryConfig | None,
    bus_factory: Callable[[int], ina219.SMBusLike] | None = None,
) -> battery_monitor.BatteryMonitor | None:
    """The INA219 battery monitor ``battery`` describes, or None for no battery.

    Args:
        battery: The gauge's bus, address and voltage range.
        bus_factory: Opens an I2C bus by number (tests: the INA219 twin's adapter).
    """
    if battery is None:
        return None
    return battery_monitor.BatteryMonitor(
        i2c_bus=battery.i2c_bus,
        i2c_addr=battery.i2c_address,
        min_voltage=battery.min_voltage,
        max_voltage=battery.max_voltage,
        bus_factory=bus_factory,
    )


def clock_for(config: config_mod.AppConfig) -> clock_mod.DeviceClock:
    """The process clock, or one whose wall time a ``clock_step`` fault can step."""
    if config.faults and any(
        f.kind is device_faults.FaultKind.CLOCK_STEP
        for f in device_faults.parse_faults(config.faults)
    ):
        return clock_mod.DeviceClock(clock_mod.SteppableSystemTimeSource())
    return clock_mod.default_clock()


class DeviceApp:
    """The whole device runtime.

    Args:
        config: What to build.
        gpio_controller: LEDs/buzzer/button; a simulated controller (with the config's trigger
            file) by default.
        device: The capture device; a simulated one built from the config by default.
        clock: Device clock shared by every part.
        wifi_manager: WiFi provisioning for the long press; none by default (a long press then
            returns to IDLE).
        button_config: Button gesture timings.
        battery: Battery monitor to use instead of one built from ``config.battery`` (tests
            pass one on the INA219 twin).
    """

    def __init__(
        self,
        config: config_mod.AppConfig,
        *,
        gpio_controller: gpio_contract.GPIOController | None = None,
        device: devices.CaptureDevice | None = None,
        clock: clock_mod.DeviceClock | None = None,
        wifi_manager: wifi_connect.WifiManager | None = None,
        button_config: gpio_manager.ButtonConfig | None = None,
        battery: device_status.BatteryReader | None = None,
    ) -> None:
        self.config = config
        self.wifi_manager = wifi_manager
        self.button_config = button_config
        self.clock = clock if clock is not None else clock_for(config)
        for directory in (config.data_dir, config.spool_dir, config.recordings_dir):
            directory.mkdir(parents=True, exist_ok=True)
        self.gpio: gpio_contract.GPIOController = (
            gpio_controller
            if gpio_controller is not None
            else gpio.SimulatedGPIOController(trigger_path=config.trigger_file)
        )
        self.device: devices.CaptureDevice = device if device is not None else self._build_device()
        # One storage monitor for both halves: the recorder's floor and the frame logger's
        # ladder read the same filesystem through the same cache.
        self.storage = storage.StorageMonitor(config.data_dir, thresholds=config.storage_thresholds)
        self.recovered: list[pathlib.Path] = []
        self.completed: list[pathlib.Path] = []
        self._completed_event = threading.Condition()
        self.recorder = self._build_recorder()
        self.state_machine = state_machine.StateMachine(self.gpio, self.recorder, stay_in_boot=True)
        # The preview is the dashboard's live view, which follows the state (app/web/live.py).
        self.state_machine.set_preview_callbacks(lambda: True, _nothing, _nothing)
        self.recorder.set_on_device_unhealthy(self.state_machine.on_device_unhealthy)
        # A failed merge keeps its spool; it is merged again while the app runs (status.json
        # lists it under ``merge_retry``) rather than only at the next start.
        self.merge_retry = merge_retry.MergeRetry(
            config.spool_dir, config.recordings_dir, on_merged=self._on_complete
        )
        self.recorder.set_on_recording_error(self._on_recording_error)
        self.ndjson = output.NdjsonHub()
        sinks: list[output.OperatorSink] = [self.ndjson]
        if config.mqtt_host is not None:
            sinks.append(
                output.MqttSink(
                    config.mqtt_host,
                    config.mqtt_port,
                    config.mqtt_topic,
                    username=config.mqtt_username,
                    password=config.mqtt_password,
                    tls=config.mqtt_tls,
                    ca_file=config.mqtt_ca_file,
                )
            )
        self.output = output.OutputManager(output.OutputConfig(), sinks=sinks, monitor=self.storage)
        self.network = network_monitor.NetworkMonitor(
            network_monitor.Config(
                internet_check_host=config.network_check_host,
                internet_check_port=config.network_check_port,
            )
        )
        self.network.register_on_change_callback(self.state_machine.on_network_change)
        self.status = device_status.DeviceStatusManager(
            config.device_id,
            omgrab.__version__,
            config.data_dir,
            system_metrics.LinuxSystemMetrics(),
            enable_battery_monitor=battery is not None or config.battery is not None,
            battery_monitor=battery if battery is not None else build_battery(config.battery),
            status_file=config.status_file,
            devices=[self.device],
            on_status=self._on_status,
            clock=self.clock,  # the recorder's: a recording's duration is on its time line
        )
        self.status.set_state_machine(self.state_machine)
        self.status.set_recording_manager(self.recorder)
        self.status.set_network_monitor(self.network)
        self.status.set_section("merge_retry", self.merge_retry.progress)
        self.status.set_section("clock", self._clock_info)
        # Built here so missing credentials fail before anything starts.
        self.upload: upload_service.UploadService | None = (
            upload_service.UploadService.build(
                config.upload,
                config.recordings_dir,
                config.output_dir,
                self.recorder,
                self.network,
                self.storage,
            )
            if config.upload is not None
            else None
        )
        if self.upload is not None:
            self.status.set_upload_progress(self.upload.progress)
        self.scan = perception.ScanLoop(
            self.device.preview, self.output, rate_hz=config.perception_rate_hz
        )
        self._stop = threading.Event()
        self._button_thread: threading.Thread | None = None
        self._dashboard: Any = None
        self.console: dashboard.Console | None = None
        self.mqtt_console: mqtt_console.MqttConsole | None = None
        self._started = False
        self.health_log_errors = 0
        self.lock = instance_lock.InstanceLock(config.spool_dir)

    # -- construction --------------------------------------------------------------------

    def _build_device(self) -> devices.SimulatedCaptureDevice:
        cfg = self.config
        depth = (
            camera_base.CameraConfig(cfg.fps, cfg.depth_size[0], cfg.depth_size[1])
            if cfg.depth_size is not None
            else None
        )
        return devices.SimulatedCaptureDevice(
            label="sim-0",
            rgb=camera_base.CameraConfig(cfg.fps, cfg.rgb_size[0], cfg.rgb_size[1]),
            depth=depth,
            imu_rate_hz=cfg.imu_rate_hz,
            clock=self.clock,
            faults=cfg.faults,
        )

    def _device_intrinsics(self) -> dict[str, Any]:
        """Intrinsics the device reports itself (an OAK-D's calibration), or none."""
        read = getattr(self.device, "intrinsics", None)
        if not callable(read):
            return {}
        try:
            return dict(read())
        except Exception:
            logger.warning("could not read the camera calibration; recording without intrinsics")
            return {}

    def _build_recorder(self) -> recording_manager.RecordingManager:
        cfg = self.config
        cameras = self.device.cameras
        names = list(cameras)
        intrinsics = dict(cfg.intrinsics)
        for name, values in self._device_intrinsics().items():
            intrinsics.setdefault(name, json.dumps(values, sort_keys=True))
        video: dict[str, recording.VideoStreamConfig] = {}
        for name, camera in cameras.items():
            size = camera.config
            tags = {"intrinsics": intrinsics[name]} if name in intrinsics else None
            if name == "depth":
                video[name] = recording.depth_stream_config(
                    width=size.width, height=size.height, fps=size.fps, metadata=tags
                )
            else:
                video[name] = recording.rgb_stream_config(
                    width=size.width,
                    height=size.height,
                    fps=size.fps,
                    bitrate=cfg.rgb_bitrate,
                    preset=cfg.rgb_preset,
                    stream_options=cfg.rgb_options,
                    metadata=tags,
                )
        sensors = self.device.sensors
        data = {name: recording.imu_stream_config() for name in sensors}
        return recording_manager.RecordingManager(
            [self.device],
            [cameras[name] for name in names],
            names,
            video,
            cfg.spool_dir,
            cfg.recordings_dir,
            recording_manager.RecordingConfig(chunk_length_s=cfg.chunk_length_s),
            on_recording_complete=self._on_complete,
            storage_monitor=self.storage,
            sensors=list(sensors.values()),
            sensor_stream_names=list(sensors),
            sensor_stream_configs=data,
            clock=self.clock,
        )

    def _dashboard_options(self) -> dashboard.DashboardOptions:
        cfg = self.config
        token_file = cfg.dashboard_token_file
        if token_file is None and not security.is_loopback(cfg.dashboard_host):
            token_file = cfg.data_dir / "dashboard-token"
        return dashboard.DashboardOptions(
            host=cfg.dashboard_host,
            port=cfg.dashboard_port or 0,
            token=cfg.dashboard_token,
            token_file=token_file,
        )

    def _mqtt_options(self) -> mqtt_console.MqttOptions:
        cfg = self.config
        assert cfg.mqtt_host is not None
        return mqtt_console.MqttOptions(
            host=cfg.mqtt_host,
            port=cfg.mqtt_port,
            base_topic=f"{cfg.mqtt_base_topic}/{cfg.device_id}",
            username=cfg.mqtt_username,
            password=cfg.mqtt_password,
            tls=cfg.mqtt_tls,
            ca_file=pathlib.Path(cfg.mqtt_ca_file) if cfg.mqtt_ca_file else None,
            keepalive=cfg.mqtt_keepalive,
        )

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Lock the data directory, recover orphans, start every part; the device is then IDLE.

        Raises:
            InstanceLockedError: Another process runs on this data directory.
        """
        if self._started:
            raise RuntimeError("DeviceApp already started")
        self.lock.acquire()
        self._started = True
        # Settings errors (an off-loopback dashboard without a token, bad MQTT options) are
        # raised here, before any part starts.
        if self.config.dashboard_port is not None:
            self.console = dashboard.Console(self, self._dashboard_options())
        mqtt_options = self._mqtt_options() if self.config.mqtt_host is not None else None
        self.recovered = recovery.merge_orphaned_chunks(
            self.config.spool_dir,
            self.config.recordings_dir,
            cleanup=True,
            on_error=lambda directory, exc: self.merge_retry.add(directory.name, exc),
        )
        for path in self.recovered:
            logger.warning("recovered a recording interrupted by a crash: %s", path)
        self.merge_retry.start()
        self.output.init(self.config.output_dir)
        self.network.start()
        if self.upload is not None:
            self.upload.start()
        self.status.start()
        if self.config.perception:
            self.scan.start()
        self._button_thread = threading.Thread(
            target=gpio_manager.button_monitor_loop,
            args=(self.gpio, self.state_machine, self.button_config),
            kwargs={"stop_event": self._stop, "wifi_manager": self.wifi_manager},
            name="button-loop",
            daemon=True,
        )
        self._button_thread.start()
        if self.console is not None:
            self.console.start()
            self._dashboard = dashboard.DashboardServer(
                self.console.asgi(), self.console.options.host, self.console.options.port
            )
            self._dashboard.start()
        if mqtt_options is not None:
            self.mqtt_console = mqtt_console.MqttConsole(self, mqtt_options)
            self.mqtt_console.start()
        self.state_machine.boot_complete()
        if self.console is not None:
            self.console.snapshot.refresh()  # the console shows IDLE from the first request

    def stop(self) -> None:
        """Stop recording (merging it), stop every thread, drain and close every writer."""
        self._stop.set()
        if self.upload is not None:
            self.upload.stop(timeout=10.0)
        self.state_machine.shutdown()
        if self._button_thread is not None:
            self._button_thread.join(5)
            if self._button_thread.is_alive():
                logger.error("button loop still running 5 s after stop; left behind")
        self.recorder.shutdown()
        self.merge_retry.stop()
        if self.config.perception and self._started:
            try:
                self.scan.stop()
            except RuntimeError:
                logger.exception("perception loop had failed")
        self.status.shutdown()
        self.network.shutdown()
        if self.mqtt_console is not None:
            self.mqtt_console.stop()
        if self._dashboard is not None:
            self._dashboard.stop()
        if self.console is not None:
            self.console.stop()
        self.output.close()
        close = getattr(self.device, "close", None)
        if close is not None:
            close()
        self.gpio.close()
        self.lock.release()

    @property
    def dashboard_url(self) -> str | None:
        """Where the dashboard listens, once started."""
        return self._dashboard.url if self._dashboard is not None else None

    def wait_for_recordings(self, count: int, timeout: float) -> bool:
        """Wait until ``count`` recordings were merged since start."""
        with self._completed_event:
            return self._completed_event.wait_for(lambda: len(self.completed) >= count, timeout)

    # -- callbacks -----------------------------------------------------------------------

    def _on_complete(self, path: pathlib.Path) -> None:
        with self._completed_event:
            self.completed.append(path)
            self._completed_event.notify_all()

    def _on_recording_error(self, event: recorder_events.RecorderEvent) -> None:
        if event.kind is recorder_events.EventKind.MERGE_FAILED:
            self.merge_retry.add(event.recording_id, event.message)
        self.state_machine.on_recording_error(event)

    def _clock_info(self) -> dict[str, Any]:
        """``status.json``'s ``clock``: how far the wall clock moved since the last anchor."""
        return {"wall_step_s": round(self.clock.wall_step_s(), 3)}

    def _on_status(self, status: device_status.DeviceStatus) -> None:
        try:
            self.output.log_health(status)
        except output.WriteError:
            self.health_log_errors += 1
            logger.exception("health log rejected a status")


def _nothing() -> None:
    """A preview start/stop callback with nothing to do."""
