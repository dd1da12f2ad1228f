"""Running the ``omgrab`` command as a user does: ``python -m omgrab`` in a real process."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

SRC = pathlib.Path(__file__).resolve().parents[1] / "src"


def env() -> dict[str, str]:
    """The environment of a child ``omgrab``: this checkout first on the path, no OMGRAB_*."""
    child = {k: v for k, v in os.environ.items() if not k.startswith("OMGRAB_")}
    child["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), child.get("PYTHONPATH")]))
    return child


def omgrab(
    *args: str, cwd: pathlib.Path, timeout: float = 180, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m omgrab ARGS`` to completion."""
    return subprocess.run(
        [sys.executable, "-m", "omgrab", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**env(), **(extra_env or {})},
    )


def assert_user_error(done: subprocess.CompletedProcess[str], *needles: str) -> None:
    """Exit 2, exactly one line on stderr, no traceback, and the line names every needle."""
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert lines[0].startswith("omgrab: error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


class RunningApp:
    """An ``omgrab run`` process whose stdout is read on a thread."""

    def __init__(self, *args: str, cwd: pathlib.Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "omgrab", "run", *args],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env(),
        )
        self.stdout: list[str] = []
        self._started = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.stdout.append(line)
            if "running" in line:
                self._started.set()
        self._started.set()

    def wait_started(self, timeout: float = 60.0) -> None:
        """Wait for the "running" line; fail with stderr if the process ended instead."""
        assert self._started.wait(timeout), "omgrab run did not start in time"
        if self.process.poll() is not None:
            raise AssertionError(f"omgrab run exited: {self.process.stderr.read()}")  # type: ignore[union-attr]

    def stop(self, timeout: float = 120.0) -> int:
        """SIGTERM and wait; return the exit status."""
        if self.process.poll() is None:
            self.process.terminate()
        return self.process.wait(timeout)

    def kill(self) -> None:
        """Stop at once, in any case (test clean-up)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``predicate`` until it returns a truthy value; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    waiter = threading.Event()
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        waiter.wait(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def read_status(data_dir: pathlib.Path) -> dict[str, Any] | None:
    """The status file, or None while it does not exist yet."""
    try:
        return json.loads((data_dir / "status.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def press(trigger: pathlib.Path) -> None:
    """One short press through the trigger file (written atomically)."""
    tmp = trigger.with_suffix(".tmp")
    tmp.write_text("")
    tmp.rename(trigger)
