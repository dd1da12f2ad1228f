"""The rig configuration file: one TOML file says what ``omgrab run --config FILE`` runs.

The file is a tree of typed sections (:class:`RigConfig`); every key has a default, so an empty
file is the simulated rig. ``omgrab config --print-default`` prints the whole file with
comments, ``omgrab config --check FILE`` validates one.

Environment overrides: ``OMGRAB_<SECTION>_<KEY>`` sets ``<key>`` of ``[<section>]`` (nested
sections join with ``_``: ``OMGRAB_DEVICE_RGB_WIDTH`` is ``[device.rgb] width``). The value is
read as a TOML value (``9000``, ``true``, ``"x"``) and as a plain string when it is not one
(``OMGRAB_MQTT_PASSWORD=s3cret``). Overrides apply after the file and are validated like it.
Other ``OMGRAB_*`` variables are ignored unless they start with a section name.

Validation happens before anything starts: :func:`load` raises :class:`ConfigError` listing
every problem as ``<where>: <section>.<key> = <value>: <what is allowed>``.

Extension point: each section is a dataclass registered in :data:`SECTIONS`; a field's
``metadata["check"]`` is a :class:`Check` (predicate + description of what is allowed).
Unknown sections and keys are rejected, except the sections named in :data:`RESERVED` (kept
as raw tables in :attr:`RigConfig.extensions` for the components that will own them).

``[upload]`` is owned by :class:`omgrab.upload.config.UploadConfig`: its table (file, then
environment, then command line) is validated by ``UploadConfig.from_mapping`` and lands in
:attr:`RigConfig.upload`; ``enabled = false`` keeps the section but turns the uploader off, and
``device_id`` defaults to the rig's id.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import re
import socket
import tomllib
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

from omgrab.cameras import calibration
from omgrab.devices import faults as faults_mod
from omgrab.upload import config as upload_config

#: Top-level sections accepted as raw tables and kept for their future owners.
RESERVED: tuple[str, ...] = ()

UPLOAD = "upload"
"""The section validated by :meth:`omgrab.upload.config.UploadConfig.from_mapping`."""

ENV_PREFIX = "OMGRAB_"


class ConfigError(ValueError):
    """The configuration is invalid; ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


@dataclasses.dataclass(frozen=True)
class Check:
    """A constraint on one key: ``test(value)`` must hold; ``allowed`` says what is allowed."""

    test: Callable[[Any], bool]
    allowed: str


def _field(default: Any, check: Check | None = None, doc: str = "") -> Any:
    return dataclasses.field(default=default, metadata={"check": check, "doc": doc})


def _range(lo: float, hi: float, what: str = "a number") -> Check:
    return Check(lambda v: lo <= v <= hi, f"{what} from {lo:.10g} to {hi:.10g}")


def _one_of(*choices: str) -> Check:
    return Check(lambda v: v in choices, "one of " + ", ".join(repr(c) for c in choices))


_POSITIVE = Check(lambda v: v > 0, "a number > 0")
_PORT = Check(lambda v: 0 <= v <= 65535, "a TCP port 0..65535")
_LINE = Check(lambda v: v >= 0, "a GPIO line offset >= 0")
_NON_EMPTY = Check(lambda v: bool(v.strip()), "a non-empty string")
_EVEN_SIZE = Check(lambda v: 16 <= v <= 8192 and v % 2 == 0, "an even number of pixels 16..8192")
_CAMERA_SOURCE = Check(
    lambda v: (
        (isinstance(v, int) and v >= 0)
        or (isinstance(v, str) and (v.startswith("/") or re.fullmatch(r"\d+", v) is not None))
    ),
    "a camera index >= 0, /dev/videoN, /dev/v4l/by-id/... or a file path",
)


@dataclasses.dataclass
class RigSection:
    """``[rig]``: who this rig is and where its data goes."""

    id: str = _field("", doc="Device id in status and health logs (empty: the host name).")
    data_dir: str = _field("omgrab-data", _NON_EMPTY, "spool/, recordings/, output/, status.json")


@dataclasses.dataclass
class RecordingSection:
    """``[recording]``."""

    chunk_length_s: float = _field(60.0, _range(0.5, 3600, "seconds"), "Length of one chunk.")


@dataclasses.dataclass
class StorageSection:
    """``[storage]``: free-space thresholds (fractions of the filesystem, 0..1)."""

    reduce_below: float = _field(0.20, _range(0, 1), "Perception output reduced below this.")
    detection_only_below: float = _field(0.10, _range(0, 1), "Detections only below this.")
    recorder_floor: float = _field(0.05, _range(0, 1), "Recording refused/stopped below this.")
    recorder_floor_bytes: int = _field(0, Check(lambda v: v >= 0, "bytes >= 0"), "...or bytes.")


@dataclasses.dataclass
class StreamSection:
    """``[device.rgb]`` / ``[device.depth]``: one camera stream."""

    enabled: bool = _field(True, doc="Record this stream.")
    width: int = _field(1280, _EVEN_SIZE, "Frame width.")
    height: int = _field(800, _EVEN_SIZE, "Frame height.")
    fps: float = _field(25.0, _range(1, 120, "frames/s"), "Frame rate.")
    codec: str = _field("h264", _one_of("h264", "ffv1"), "rgb: h264; depth: ffv1 (lossless).")
    bitrate: int = _field(4_000_000, _range(100_000, 100_000_000, "bits/s"), "H.264 bitrate.")
    preset: str = _field(
        "superfast",
        _one_of("ultrafast", "superfast", "veryfast", "faster", "fast", "medium"),
        "libx264 preset.",
    )
    options: dict[str, str] = dataclasses.field(
        default_factory=dict, metadata={"check": None, "doc": "Extra encoder options (strings)."}
    )


def _depth_default() -> StreamSection:
    return StreamSection(width=640, height=400, codec="ffv1")


@dataclasses.dataclass
class DeviceSection:
    """``[device]``: the capture device."""

    type: str = _field(
        "simulated", _one_of("simulated", "usb", "video_file", "oakd"), "Which device."
    )
    label: str = _field("", doc="Device label in status and manifests (empty: <type>-0).")
    source: int | str = _field(
        0,
        _CAMERA_SOURCE,
        "usb: index, /dev/videoN, /dev/v4l/by-id/..., a file/FIFO; video_file: a file.",
    )
    calibration: str = _field("", doc="usb: intrinsics JSON file (fx, fy, cx, cy, ...).")
    imu_rate_hz: float = _field(100.0, _range(0, 1000, "Hz"), "simulated/oakd IMU; 0: none.")
    faults: str = _field("", doc="simulated: fault spec, e.g. 'stall:depth@2+1'.")
    rgb: StreamSection = dataclasses.field(default_factory=StreamSection)
    depth: StreamSection = dataclasses.field(default_factory=_depth_default)


@dataclasses.dataclass
class GpioSection:
    """``[gpio]``: button, LEDs and buzzer."""

    backend: str = _field("simulated", _one_of("simulated", "gpiod"), "gpiod on a real rig.")
    chip: str = _field("/dev/gpiochip0", _NON_EMPTY, "GPIO character device.")
    button: int = _field(23, _LINE, "Button line (BCM).")
    status_led: int = _field(17, _LINE, "Green status LED line.")
    recording_led: int = _field(27, _LINE, "Red recording LED line.")
    network_led: int = _field(22, _LINE, "Blue network LED line.")
    buzzer: int = _field(18, _LINE, "Buzzer line.")
    button_active_low: bool = _field(True, doc="Button pulls the line low when pressed.")
    trigger_file: str = _field("", doc="Touching this file presses the button (any backend).")


@dataclasses.dataclass
class BatterySection:
    """``[battery]``: the UPS battery gauge."""

    type: str = _field("none", _one_of("none", "ina219"), "none: no battery, no warning.")
    i2c_bus: int = _field(1, _range(0, 255, "a bus number"), "/dev/i2c-<bus>.")
    i2c_address: int = _field(0x42, _range(0x03, 0x77, "a 7-bit address"), "INA219 address.")
    min_voltage: float = _field(6.0, _POSITIVE, "Pack voltage read as 0 %.")
    max_voltage: float = _field(8.4, _POSITIVE, "Pack voltage read as 100 %.")


@dataclasses.dataclass
class NetworkSection:
    """``[network]``: the internet reachability probe."""

    probe_host: str = _field("dns.google", _NON_EMPTY, "Host the probe connects to.")
    probe_port: int = _field(443, _range(1, 65535, "a TCP port"), "Port the probe connects to.")


@dataclasses.dataclass
class DashboardSection:
    """``[dashboard]``: the web dashboard."""

    enabled: bool = _field(True, doc="Serve the dashboard.")
    host: str = _field("127.0.0.1", _NON_EMPTY, "Bind address (0.0.0.0: every interface).")
    port: int = _field(8080, _PORT, "Port (0: any free port).")
    token: str = _field("", doc="Access token for the dashboard (empty: none).")


@dataclasses.dataclass
class MqttSection:
    """``[mqtt]``: the broker detections are published to."""

    host: str = _field("", doc="Broker host (empty: no MQTT).")
    port: int = _field(1883, _range(1, 65535, "a TCP port"), "Broker port.")
    topic: str = _field("omgrab/detections", _NON_EMPTY, "Topic for detections.")
    username: str = _field("", doc="User name (empty: anonymous).")
    password: str = _field("", doc="Password.")
    tls: bool = _field(False, doc="Connect with TLS.")
    ca_file: str = _field("", doc="CA bundle for TLS (empty: the system's).")


#: The typed top-level sections, by name (add a section here to extend the file).
SECTIONS: dict[str, type] = {
    "rig": RigSection,
    "recording": RecordingSection,
    "storage": StorageSection,
    "device": DeviceSection,
    "gpio": GpioSection,
    "battery": BatterySection,
    "network": NetworkSection,
    "dashboard": DashboardSection,
    "mqtt": MqttSection,
}


@dataclasses.dataclass
class RigConfig:
    """The whole file. Each attribute is the section of the same name."""

    rig: RigSection = dataclasses.field(default_factory=RigSection)
    recording: RecordingSection = dataclasses.field(default_factory=RecordingSection)
    storage: StorageSection = dataclasses.field(default_factory=StorageSection)
    device: DeviceSection = dataclasses.field(default_factory=DeviceSection)
    gpio: GpioSection = dataclasses.field(default_factory=GpioSection)
    battery: BatterySection = dataclasses.field(default_factory=BatterySection)
    network: NetworkSection = dataclasses.field(default_factory=NetworkSection)
    dashboard: DashboardSection = dataclasses.field(default_factory=DashboardSection)
    mqtt: MqttSection = dataclasses.field(default_factory=MqttSection)
    upload: upload_config.UploadConfig | None = None
    extensions: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)

    @property
    def device_label(self) -> str:
        """The device label, or ``<type>-0`` when none is set."""
        return self.device.label or f"{self.device.type}-0"

    @property
    def device_id(self) -> str:
        """The rig id, or the host name when none is set."""
        return self.rig.id or socket.gethostname()


# -- loading ---------------------------------------------------------------------------------


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _type_ok(value: Any, hint: Any) -> bool:
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if isinstance(hint, types.UnionType):
        return any(_type_ok(value, h) for h in typing.get_args(hint))
    if typing.get_origin(hint) is dict:
        return isinstance(value, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        )
    return False


def _type_name(hint: Any) -> str:
    if isinstance(hint, types.UnionType):
        return " or ".join(_type_name(h) for h in typing.get_args(hint))
    if typing.get_origin(hint) is dict:
        return "a table of strings"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(
        hint, str(hint)
    )


def _build(cls: type, table: Mapping[str, Any], path: str, where: str, problems: list[str]) -> Any:
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{path}.{key}"
        if key not in fields:
            problems.append(f"{where}: unknown key {name} (allowed: {', '.join(sorted(fields))})")
            continue
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            if not isinstance(value, dict):
                problems.append(f"{where}: {name} = {value!r}: must be a table [{name}]")
                continue
            base = _depth_default() if name == "device.depth" else typing.cast(Any, hint)()
            values[key] = _merge_table(base, value, name, where, problems)
            continue
        if not _type_ok(value, hint):
            problems.append(f"{where}: {name} = {value!r}: must be {_type_name(hint)}")
            continue
        check: Check | None = fields[key].metadata.get("check")
        if check is not None and not check.test(value):
            problems.append(f"{where}: {name} = {value!r}: must be {check.allowed}")
            continue
        values[key] = float(value) if hint is float else value
    return values


def _merge_table(
    base: Any, table: Mapping[str, Any], path: str, where: str, problems: list[str]
) -> Any:
    return dataclasses.replace(base, **_build(type(base), table, path, where, problems))


def _cross_checks(config: RigConfig, depth_asked: bool, problems: list[str]) -> None:
    storage = config.storage
    if storage.detection_only_below > storage.reduce_below:
        problems.append(
            f"storage.detection_only_below = {storage.detection_only_below:g}: must not exceed "
            f"storage.reduce_below ({storage.reduce_below:g})"
        )
    battery = config.battery
    if battery.max_voltage <= battery.min_voltage:
        problems.append(
            f"battery.max_voltage = {battery.max_voltage:g}: must be greater than "
            f"battery.min_voltage ({battery.min_voltage:g})"
        )
    gpio = config.gpio
    lines: dict[int, str] = {}
    for key in ("button", "status_led", "recording_led", "network_led", "buzzer"):
        line = getattr(gpio, key)
        if line in lines:
            problems.append(f"gpio.{key} = {line}: line already used by gpio.{lines[line]}")
        lines[line] = key
    device = config.device
    if device.type in ("usb", "video_file") and device.depth.enabled:
        if depth_asked:
            problems.append(
                f"device.depth.enabled = true: a {device.type} device has no depth stream "
                "(allowed: false)"
            )
        device.depth = dataclasses.replace(device.depth, enabled=False)
    if device.type == "video_file" and not (
        isinstance(device.source, str) and pathlib.Path(device.source).is_file()
    ):
        problems.append(
            f"device.source = {device.source!r}: a video_file device needs an existing file"
        )
    for stream, codec in (("rgb", "h264"), ("depth", "ffv1")):
        value = getattr(device, stream).codec
        if value != codec:
            problems.append(
                f"device.{stream}.codec = {value!r}: must be {codec!r} for the {stream} stream"
            )
    if device.calibration:
        try:
            calibration.load_intrinsics(device.calibration)
        except ValueError as exc:
            problems.append(f"device.calibration = {device.calibration!r}: {exc}")
    if device.faults and device.type != "simulated":
        problems.append(f"device.faults = {device.faults!r}: only a simulated device takes faults")
    if device.faults:
        try:
            faults_mod.parse_faults(device.faults)
        except ValueError as exc:
            problems.append(f"device.faults = {device.faults!r}: {exc}")
    if config.mqtt.ca_file and not pathlib.Path(config.mqtt.ca_file).is_file():
        problems.append(f"mqtt.ca_file = {config.mqtt.ca_file!r}: no such file")


def _env_overrides(env: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """Return ``{section path: {key: value}}`` from ``OMGRAB_<SECTION>_<KEY>`` variables."""
    paths = [*SECTIONS, UPLOAD, "device.rgb", "device.depth"]
    # Longest section first, so OMGRAB_DEVICE_RGB_WIDTH is [device.rgb], not [device].
    paths.sort(key=len, reverse=True)
    out: dict[str, dict[str, Any]] = {}
    for var in sorted(env):
        if not var.startswith(ENV_PREFIX):
            continue
        rest = var[len(ENV_PREFIX) :].lower()
        for path in paths:
            prefix = path.replace(".", "_") + "_"
            if rest.startswith(prefix):
                key = rest[len(prefix) :]
                out.setdefault(path, {})[key] = _env_value(env[var])
                break
    return out


def _env_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _nest(flat: dict[str, dict[str, Any]], problems: list[str]) -> dict[str, Any]:
    """The nested document of ``flat``; a table also set as a plain value is a problem."""
    tree: dict[str, Any] = {}
    for path, values in flat.items():
        node = tree
        for part in path.split("."):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                problems.append(
                    f"environment (OMGRAB_*): {path} = {child!r}: must be a table [{path}] "
                    f"(other OMGRAB_{path.replace('.', '_').upper()}_* variables set keys in it)"
                )
                child = node[part] = {}
            node = child
        node.update(values)
    return tree


def from_dict(
    doc: Mapping[str, Any],
    where: str = "config",
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> RigConfig:
    """Validate a document, then environment overrides, then ``overrides`` into a RigConfig.

    ``overrides`` is a nested document applied last (command-line options).

    Raises:
        ConfigError: Listing every problem.
    """
    problems: list[str] = []
    config = RigConfig()
    layers: list[tuple[str, Mapping[str, Any]]] = [(where, doc)]
    if env is not None:
        layers.append(("environment (OMGRAB_*)", _nest(_env_overrides(env), problems)))
    if overrides:
        layers.append(("command line", overrides))
    depth_asked = False
    upload_table: dict[str, Any] | None = None
    for source, layer in layers:
        for section, table in layer.items():
            if section == UPLOAD:
                if not isinstance(table, dict):
                    problems.append(f"{source}: [{section}] must be a table")
                else:
                    upload_table = {**(upload_table or {}), **table}
                continue
            if section in RESERVED:
                if not isinstance(table, dict):
                    problems.append(f"{source}: [{section}] must be a table")
                else:
                    config.extensions[section] = dict(table)
                continue
            if section not in SECTIONS:
                allowed = ", ".join([*SECTIONS, UPLOAD, *RESERVED])
                problems.append(f"{source}: unknown section [{section}] (allowed: {allowed})")
                continue
            if not isinstance(table, dict):
                problems.append(f"{source}: {section} = {table!r}: must be a table")
                continue
            depth = table.get("depth") if section == "device" else None
            if isinstance(depth, dict) and depth.get("enabled") is True:
                depth_asked = True
            current = getattr(config, section)
            setattr(config, section, _merge_table(current, table, section, source, problems))
    if upload_table is not None:
        config.upload = _upload(upload_table, config, where, problems)
    cross: list[str] = []
    _cross_checks(config, depth_asked, cross)
    problems += [f"{where}: {p}" for p in cross]
    if problems:
        raise ConfigError(problems)
    return config


def _upload(
    table: dict[str, Any], config: RigConfig, where: str, problems: list[str]
) -> upload_config.UploadConfig | None:
    """The validated ``[upload]`` section, or None when it is disabled (or invalid)."""
    settings = dict(table)
    enabled = settings.pop("enabled", True)
    if not isinstance(enabled, bool):
        problems.append(f"{where}: upload.enabled = {enabled!r}: must be true or false")
        return None
    settings.setdefault("device_id", config.device_id)
    try:
        upload = upload_config.UploadConfig.from_mapping(settings)
    except upload_config.UploadConfigError as exc:
        problems.append(f"{where}: {exc}")
        return None
    return upload if enabled else None


def load(
    path: str | os.PathLike[str] | None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> RigConfig:
    """Read, override from ``env`` (``os.environ`` by default) and validate a config file.

    Args:
        path: The TOML file, or None for the defaults (the simulated rig) plus overrides.
        env: Environment to take ``OMGRAB_*`` overrides from.
        overrides: A nested document applied last (command-line options).

    Raises:
        ConfigError: The file cannot be read or parsed, or a value is invalid.
    """
    env = os.environ if env is None else env
    if path is None:
        return from_dict({}, "defaults", env, overrides)
    file = pathlib.Path(path)
    try:
        doc = tomllib.loads(file.read_text())
    except OSError as exc:
        raise ConfigError([f"{file}: cannot read: {exc.strerror or exc}"]) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{file}: not UTF-8 text: {exc}"]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{file}: not valid TOML: {exc}"]) from exc
    except RecursionError as exc:
        raise ConfigError([f"{file}: not valid TOML: arrays or tables nested too deeply"]) from exc
    return from_dict(doc, str(file), env, overrides)


# -- the default file ------------------------------------------------------------------------


def _toml_value(value: Any, key: str = "") -> str:
    if key.endswith("address") and isinstance(value, int):
        return f"0x{value:02x}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, dict):
        inner = ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + inner + " }" if inner else "{}"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _section_text(name: str, obj: Any) -> list[str]:
    lines = [f"[{name}]"]
    doc = (type(obj).__doc__ or "").strip().splitlines()[0].split("``: ", 1)[-1].strip("`.")
    lines[0] += f"  # {doc}" if doc and not doc.startswith("[") else ""
    nested: list[str] = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            nested += ["", *_section_text(f"{name}.{f.name}", value)]
            continue
        check = f.metadata.get("check")
        comment = " ".join(
            part
            for part in (f.metadata.get("doc", ""), f"Allowed: {check.allowed}." if check else "")
            if part
        )
        lines.append(
            f"{f.name} = {_toml_value(value, f.name)}" + (f"  # {comment}" if comment else "")
        )
    return lines + nested


def default_toml() -> str:
    """Return the default configuration as a commented TOML file (what an empty file means)."""
    config = RigConfig()
    out = [
        "# omgrab rig configuration. Every key is optional; these are the defaults.",
        "# Environment overrides: OMGRAB_<SECTION>_<KEY>, e.g. OMGRAB_DASHBOARD_PORT=9000,",
        "# OMGRAB_DEVICE_RGB_WIDTH=640, OMGRAB_MQTT_PASSWORD=secret.",
        "",
    ]
    for name in SECTIONS:
        out += [*_section_text(name, getattr(config, name)), ""]
    out += [*_upload_example(), ""]
    return "\n".join(out)


def _upload_example() -> list[str]:
    """``[upload]`` commented out: every setting with its default (bucket is required)."""
    lines = [
        "# [upload]  # S3 upload of completed recordings; off unless this section is present.",
        "# Credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, or credentials_file (0600).",
        "# enabled = true  # false keeps the section but does not upload",
        '# bucket = "my-rig-data"  # required',
    ]
    defaults = {"device_id": "", "endpoint_url": "https://minio.example:9000"}
    unset = {
        "credentials_file": "none: the AWS_* environment variables",
        "ca_bundle": "none: the system's CAs",
        "max_bandwidth": "none: unlimited (bytes/s)",
        "state_dir": "none: <data_dir>/recordings/.upload",
    }
    for f in dataclasses.fields(upload_config.UploadConfig):
        if f.name == "bucket":
            continue
        value = defaults.get(f.name, f.default)
        if f.name == "device_id":
            lines.append('# device_id = "<rig.id>"  # default: the rig id')
        elif value is None:
            lines.append(f"# {f.name} = ...  # default: {unset.get(f.name, 'none')}")
        else:
            note = "  # default: AWS" if f.name == "endpoint_url" else ""
            lines.append(f"# {f.name} = {_toml_value(value, f.name)}{note}")
    return lines
