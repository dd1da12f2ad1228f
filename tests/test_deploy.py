"""The deployment files: the systemd unit and the example rig configuration."""

from __future__ import annotations

import configparser
import pathlib
import shutil
import subprocess

import pytest

from omgrab.app import rig_config

DEPLOY = pathlib.Path(__file__).resolve().parents[1] / "deploy"


def test_example_rig_config_is_valid() -> None:
    rig = rig_config.load(DEPLOY / "rig.example.toml", env={})
    assert (rig.device.type, rig.gpio.backend, rig.battery.type) == ("usb", "gpiod", "ina219")


def test_systemd_unit_restarts_on_failure_but_not_on_user_errors() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(DEPLOY / "omgrab.service")
    service = unit["Service"]
    assert service["Restart"] == "on-failure"
    assert service["RestartPreventExitStatus"] == "2"  # the CLI's exit status for user errors
    assert "omgrab run --config" in service["ExecStart"]
    assert service["StandardError"] == "journal"
    assert int(service["TimeoutStopSec"]) >= 60  # a stop merges the active recording


def test_systemd_unit_verifies() -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    done = subprocess.run(
        ["systemd-analyze", "verify", str(DEPLOY / "omgrab.service")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # The only complaint allowed here: the venv of a Raspberry Pi install does not exist.
    problems = [
        line
        for line in done.stderr.splitlines()
        if line.strip() and "/opt/omgrab/venv/bin/omgrab" not in line
    ]
    assert problems == [], done.stderr
