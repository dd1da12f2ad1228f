"""Wall clock stepped by +-5 minutes while ``omgrab run`` records (the app's clock seam).

The machine's real clock is shared and cannot be stepped, and libfaketime makes Python 3.11's
``time.sleep`` fail (``EINVAL``), so the step goes through the application's clock seam: with a
``clock_step`` fault, ``omgrab run`` builds its :class:`~omgrab.clock.DeviceClock` on a
:class:`~omgrab.clock.SteppableSystemTimeSource`, and the simulated device steps its wall
time like an NTP correction would (the monotonic clock is untouched).

Expected: the recording during which the clock steps keeps its pts on the capture (monotonic)
clock: strictly increasing, its length the time actually recorded, no clock step absorbed by
the timestamp policy (it logs every one); ``status.json`` reports the step
(``clock.wall_step_s``) while the recording runs; the next recording is anchored on the
stepped wall clock (its ``started_at`` moved by the step) and neither file overwrites the
other.
"""

from __future__ import annotations

import datetime
import itertools
import json
import pathlib
import time
from typing import Any

import pytest

from tests.faults import app_process

pytestmark = pytest.mark.faults

#: Seconds after the device opened (it reopens, and re-arms its schedule, for every recording:
#: the second recording stays shorter than this, so the clock steps once).
STEP_AT_S = 4.0


def _not_recording(doc: dict[str, Any]) -> bool:
    return not (doc.get("recording") or {}).get("is_recording")


def _wall_step(doc: dict[str, Any]) -> float:
    return float((doc.get("clock") or {}).get("wall_step_s") or 0.0)


def _merged(data_dir: pathlib.Path, count: int) -> list[pathlib.Path]:
    recordings = data_dir / "recordings"
    deadline = time.monotonic() + 90
    while len(list(recordings.glob("*.json"))) < count:
        assert time.monotonic() < deadline, f"fewer than {count} merged recordings"
        time.sleep(0.1)
    return sorted(recordings.glob("*.mkv"))


def _started_at(mkv: pathlib.Path) -> datetime.datetime:
    doc = json.loads(mkv.with_suffix(".json").read_text())
    return datetime.datetime.fromisoformat(doc["started_at"])


@pytest.mark.parametrize("step_s", [-300.0, 300.0])
def test_wall_clock_step_while_recording(tmp_path: pathlib.Path, step_s: float) -> None:
    data_dir = tmp_path / "data"
    app = app_process.start(data_dir, "--faults", f"clock_step@{STEP_AT_S}={step_s:+g}")
    try:
        app.wait_idle()
        app.press()
        pressed = time.monotonic()
        app.wait_for("recording", lambda d: not _not_recording(d), 60)
        seen = app.wait_for("the step", lambda d: abs(_wall_step(d) - step_s) < 2.0, 60)
        assert not _not_recording(seen), "the step came after the recording"
        app.wait_recording(STEP_AT_S + 3.0)
        app.press()
        first_len_s = time.monotonic() - pressed
        app.wait_for("stopped", _not_recording, 60)
        (first,) = _merged(data_dir, 1)
        app.press()  # the next recording anchors on the stepped wall clock
        second_pressed = time.monotonic()
        app.wait_recording(1.0)
        app.press()
        app.wait_for("stopped", _not_recording, 60)
        after = app.wait_for("re-anchored", lambda d: abs(_wall_step(d)) < 1.0, 30)
    finally:
        code = app.terminate()
    assert code == 0
    mkvs = _merged(data_dir, 2)
    assert len(mkvs) == 2 and first in mkvs
    (second,) = [m for m in mkvs if m != first]
    manifest = json.loads(first.with_suffix(".json").read_text())
    for path in mkvs:
        app_process.probe_valid(path)
    by_track = app_process.pts_by_track(first)
    for track, pts in by_track.items():
        assert all(b > a for a, b in itertools.pairwise(pts)), f"track {track} not monotonic"
        # the recording's length is what was recorded, not the step
        assert pts[-1] / 1000 <= first_len_s + 1.0, (track, pts[-1], first_len_s)
        assert pts[-1] / 1000 >= STEP_AT_S + 2.0, (track, pts[-1])
    assert manifest["duration_s"] <= first_len_s + 1.0
    # capture timestamps never saw the step: the timestamp policy had no clock step to absorb
    log = (data_dir / "app.log").read_text(errors="replace")
    assert "cannot step the real wall clock" not in log  # the seam was in place
    assert "treated as a clock step" not in log, log
    # the second recording started on the stepped wall clock
    expected = _started_at(first) + datetime.timedelta(seconds=(second_pressed - pressed) + step_s)
    offset = abs((_started_at(second) - expected).total_seconds())
    assert offset < 5.0, (_started_at(first), _started_at(second), step_s)
    print(
        f"FAULTS clock-step {step_s:+.0f} s: status wall_step_s {_wall_step(seen)} while "
        f"recording, {_wall_step(after)} after the next anchor; first recording "
        f"{manifest['duration_s']} s for {first_len_s:.1f} s recorded, last pts "
        f"{[v[-1] for _, v in sorted(by_track.items())]} ms; second started_at off by "
        f"{offset:.2f} s from first + elapsed + step"
    )
