"""The rig configuration file: every invalid value named, env overrides, the default file."""

from __future__ import annotations

import json
import pathlib
import tomllib

import pytest

from omgrab.app import rig_build, rig_config
from tests import cli_process


def problems_of(doc: dict, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(rig_config.ConfigError) as info:
        rig_config.from_dict(doc, "rig.toml", env)
    return info.value.problems


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({"rig": {"data_dir": ""}}, "rig.data_dir = '': must be a non-empty string"),
        ({"rig": {"id": 7}}, "rig.id = 7: must be a string"),
        ({"recording": {"chunk_length_s": 0}}, "recording.chunk_length_s = 0: must be seconds"),
        ({"recording": {"chunk_length_s": "60"}}, "chunk_length_s = '60': must be a number"),
        ({"storage": {"reduce_below": 1.5}}, "storage.reduce_below = 1.5: must be a number"),
        (
            {"storage": {"reduce_below": 0.1, "detection_only_below": 0.2}},
            "detection_only_below = 0.2: must not exceed storage.reduce_below (0.1)",
        ),
        ({"storage": {"recorder_floor_bytes": -1}}, "recorder_floor_bytes = -1: must be bytes"),
        ({"device": {"type": "kinect"}}, "device.type = 'kinect': must be one of 'simulated'"),
        ({"device": {"source": -1}}, "device.source = -1: must be a camera index >= 0"),
        ({"device": {"source": "video0"}}, "device.source = 'video0': must be a camera index"),
        ({"device": {"source": 1.5}}, "device.source = 1.5: must be an integer or a string"),
        ({"device": {"imu_rate_hz": -5}}, "device.imu_rate_hz = -5: must be Hz from 0 to 1000"),
        ({"device": {"faults": "explode@1"}}, "device.faults = 'explode@1'"),
        (
            {"device": {"type": "usb", "faults": "stall:rgb@1+1"}},
            "only a simulated device takes faults",
        ),
        (
            {"device": {"type": "usb", "depth": {"enabled": True}}},
            "device.depth.enabled = true: a usb device has no depth stream",
        ),
        (
            {"device": {"type": "video_file", "source": "/nonexistent.mp4"}},
            "device.source = '/nonexistent.mp4': a video_file device needs an existing file",
        ),
        ({"device": {"calibration": "/nonexistent.json"}}, "device.calibration = '/nonexistent"),
        ({"device": {"rgb": {"width": 1281}}}, "device.rgb.width = 1281: must be an even number"),
        ({"device": {"rgb": {"height": 8}}}, "device.rgb.height = 8: must be an even number"),
        ({"device": {"rgb": {"fps": 0}}}, "device.rgb.fps = 0: must be frames/s from 1 to 120"),
        ({"device": {"rgb": {"codec": "vp9"}}}, "device.rgb.codec = 'vp9': must be one of"),
        ({"device": {"rgb": {"codec": "ffv1"}}}, "device.rgb.codec = 'ffv1': must be 'h264'"),
        ({"device": {"depth": {"codec": "h264"}}}, "device.depth.codec = 'h264': must be 'ffv1'"),
        ({"device": {"rgb": {"bitrate": 10}}}, "device.rgb.bitrate = 10: must be bits/s"),
        ({"device": {"rgb": {"preset": "slowest"}}}, "device.rgb.preset = 'slowest': must be one"),
        ({"device": {"rgb": {"options": {"crf": 20}}}}, "options = {'crf': 20}: must be a table"),
        ({"device": {"rgb": 5}}, "device.rgb = 5: must be a table"),
        ({"device": {"lens": "wide"}}, "unknown key device.lens (allowed: calibration"),
        ({"gpio": {"backend": "rpi"}}, "gpio.backend = 'rpi': must be one of 'simulated', 'gpiod'"),
        ({"gpio": {"chip": " "}}, "gpio.chip = ' ': must be a non-empty string"),
        ({"gpio": {"button": -1}}, "gpio.button = -1: must be a GPIO line offset >= 0"),
        ({"gpio": {"buzzer": 23}}, "gpio.buzzer = 23: line already used by gpio.button"),
        ({"gpio": {"button_active_low": "yes"}}, "button_active_low = 'yes': must be true or"),
        ({"battery": {"type": "max17048"}}, "battery.type = 'max17048': must be one of 'none'"),
        ({"battery": {"i2c_address": 0x90}}, "battery.i2c_address = 144: must be a 7-bit"),
        ({"battery": {"i2c_bus": 300}}, "battery.i2c_bus = 300: must be a bus number"),
        (
            {"battery": {"min_voltage": 9.0}},
            "battery.max_voltage = 8.4: must be greater than battery.min_voltage (9)",
        ),
        ({"network": {"probe_port": 0}}, "network.probe_port = 0: must be a TCP port from 1"),
        ({"network": {"probe_host": ""}}, "network.probe_host = '': must be a non-empty"),
        ({"dashboard": {"port": 99999}}, "dashboard.port = 99999: must be a TCP port 0..65535"),
        ({"dashboard": {"enabled": 1}}, "dashboard.enabled = 1: must be true or false"),
        ({"dashboard": {"token": 5}}, "dashboard.token = 5: must be a string"),
        ({"mqtt": {"port": 0}}, "mqtt.port = 0: must be a TCP port from 1 to 65535"),
        ({"mqtt": {"tls": "on"}}, "mqtt.tls = 'on': must be true or false"),
        ({"mqtt": {"ca_file": "/nonexistent.pem"}}, "mqtt.ca_file = '/nonexistent.pem': no such"),
        ({"mqtt": {"topic": ""}}, "mqtt.topic = '': must be a non-empty string"),
        ({"dashbord": {"port": 1}}, "unknown section [dashbord] (allowed: rig, recording"),
        ({"upload": 3}, "[upload] must be a table"),
        ({"upload": {"bucket": "b"}}, "upload.bucket must be a bucket name of 3 to 63"),
        ({"upload": {"endpoint_url": "http://x"}}, "upload.bucket is required"),
        ({"upload": {"bucket": "rigs", "part_size": 1024}}, "upload.part_size must be an integer"),
        ({"upload": {"bucket": "rigs", "only_on_wifi": "yes"}}, "upload.only_on_wifi must be true"),
        ({"upload": {"bucket": "rigs", "buket": "x"}}, "unknown upload setting 'buket'"),
        ({"upload": {"bucket": "rigs", "enabled": 1}}, "upload.enabled = 1: must be true or false"),
    ],
)
def test_each_invalid_value_is_named_with_what_is_allowed(doc: dict, expected: str) -> None:
    problems = problems_of(doc)
    assert any(expected in p for p in problems), problems


def test_every_problem_is_reported_at_once() -> None:
    problems = problems_of({"dashboard": {"port": -1}, "mqtt": {"port": 0}, "x": {}})
    assert len(problems) == 3


def test_empty_file_is_the_simulated_rig_without_upload() -> None:
    config = rig_config.from_dict({})
    assert config.device.type == "simulated" and config.gpio.backend == "simulated"
    assert config.battery.type == "none"
    assert config.upload is None
    app = rig_build.app_config(config)
    assert app.battery is None  # no battery monitor: no I2C warning on a simulated rig
    assert app.upload is None


def test_upload_section_is_parsed_with_the_rig_id_and_env_overrides() -> None:
    doc = {
        "rig": {"id": "rig-7"},
        "upload": {"bucket": "rigs", "endpoint_url": "http://127.0.0.1:9000", "part_size": 6 << 20},
    }
    config = rig_config.from_dict(doc, env={"OMGRAB_UPLOAD_ONLY_WHEN_IDLE": "true"})
    assert config.upload is not None
    assert config.upload.bucket == "rigs"
    assert config.upload.device_id == "rig-7"  # defaults to the rig id
    assert config.upload.part_size == 6 << 20 and config.upload.only_when_idle is True
    assert rig_build.app_config(config).upload == config.upload
    doc["upload"]["enabled"] = False
    assert rig_config.from_dict(doc).upload is None


def test_environment_overrides_file_and_are_validated() -> None:
    env = {
        "OMGRAB_DASHBOARD_PORT": "9000",
        "OMGRAB_DEVICE_RGB_WIDTH": "640",
        "OMGRAB_RIG_DATA_DIR": "/data/x",
        "OMGRAB_MQTT_PASSWORD": "s3cret with spaces",
        "OMGRAB_MQTT_TLS": "true",
        "OMGRAB_RUN_SLOW": "1",  # not a section: ignored
        "OMGRAB_FAULTS": "1",
    }
    config = rig_config.from_dict({"dashboard": {"port": 1234}}, "rig.toml", env)
    assert config.dashboard.port == 9000
    assert config.device.rgb.width == 640 and config.device.depth.width == 640
    assert config.rig.data_dir == "/data/x"
    assert config.mqtt.password == "s3cret with spaces" and config.mqtt.tls is True
    problems = problems_of({}, {"OMGRAB_DASHBOARD_PROT": "1", "OMGRAB_GPIO_BUTTON": "x"})
    assert any("unknown key dashboard.prot" in p and "environment" in p for p in problems)
    assert any("gpio.button = 'x': must be an integer" in p for p in problems)


def test_default_file_shows_a_commented_upload_section_that_parses() -> None:
    text = rig_config.default_toml()
    assert rig_config.from_dict(tomllib.loads(text)).upload is None  # commented out: off
    start = text.index("# [upload]")
    block = [line.removeprefix("# ") for line in text[start:].splitlines() if line]
    block = [line for line in block if " = ..." not in line and "<rig.id>" not in line]
    doc = tomllib.loads("\n".join(line for line in block if not line.startswith(("Cred",))))
    upload = rig_config.from_dict(doc).upload
    assert upload is not None and upload.bucket == "my-rig-data"


def test_default_file_round_trips_and_documents_every_key(tmp_path: pathlib.Path) -> None:
    text = rig_config.default_toml()
    assert rig_config.from_dict(tomllib.loads(text)) == rig_config.RigConfig()
    for section, cls in rig_config.SECTIONS.items():
        assert f"[{section}]" in text
        for name in cls.__dataclass_fields__:
            nested = f"[{section}.{name}]" in text
            assert nested or f"\n{name} = " in text, (section, name)
    printed = cli_process.omgrab("config", "--print-default", cwd=tmp_path)
    assert printed.returncode == 0 and printed.stdout == text
    file = tmp_path / "rig.toml"
    file.write_text(text)
    checked = cli_process.omgrab("config", "--check", str(file), cwd=tmp_path)
    assert checked.returncode == 0 and "valid" in checked.stdout


def test_config_check_reports_each_problem_on_its_own_line(tmp_path: pathlib.Path) -> None:
    file = tmp_path / "rig.toml"
    file.write_text('[dashboard]\nport = 99999\n[device]\ntype = "kinect"\n')
    done = cli_process.omgrab("config", "--check", str(file), cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 2
    assert "dashboard.port = 99999" in lines[0] and "device.type = 'kinect'" in lines[1]
    file.write_text("[dashboard\n")
    cli_process.assert_user_error(
        cli_process.omgrab("config", "--check", str(file), cwd=tmp_path), "not valid TOML"
    )
    cli_process.assert_user_error(
        cli_process.omgrab("config", "--check", str(tmp_path / "nope.toml"), cwd=tmp_path),
        "nope.toml",
        "cannot read",
    )
    cli_process.assert_user_error(
        cli_process.omgrab("run", "--config", str(file), cwd=tmp_path), "not valid TOML"
    )


def test_calibration_file_is_validated(tmp_path: pathlib.Path) -> None:
    calib = tmp_path / "calib.json"
    calib.write_text(json.dumps({"fx": 500.0, "fy": 500.0, "cx": 320.0}))
    problems = problems_of({"device": {"calibration": str(calib)}})
    assert any("cy = None: must be a number > 0" in p for p in problems), problems
    calib.write_text(json.dumps({"fx": 1, "fy": 1, "cx": 1, "cy": 1, "distortion": ["a"]}))
    problems = problems_of({"device": {"calibration": str(calib)}})
    assert any("distortion = ['a']: must be a list of numbers" in p for p in problems)
