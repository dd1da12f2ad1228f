"""The perception detection log across power cuts (SIGKILL of the process group).

The OutputManager writes its detection log in batches: at most ``flush_every`` (10) entries or
``flush_interval_s`` (5 s) of entries live only in memory. After each kill the log on disk must
parse (a cut last line is skipped), hold every frame up to its last entry (no hole), and end
no earlier than the flush window before the kill. The restarted application starts a new log
and never rewrites the old one.
"""

from __future__ import annotations

import datetime
import pathlib
import random
import time

import pytest

from omgrab.output import config as output_config
from omgrab.output import serialize
from tests.faults import app_process, conftest

pytestmark = pytest.mark.faults

#: Detection-log flush window of the default OutputManager configuration.
FLUSH_S = output_config.OutputConfig().flush_interval_s
FLUSH_ENTRIES = output_config.OutputConfig().flush_every
#: Scheduling slack on a loaded 2-core machine (the writer thread's poll and the kill itself).
SLACK_S = 1.5


def _logs(data_dir: pathlib.Path) -> list[pathlib.Path]:
    return sorted((data_dir / "output").glob("*/detections.jsonl"))


def _lines(path: pathlib.Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except OSError:
        return 0


def test_detection_log_loses_at_most_the_flush_window(tmp_path: pathlib.Path) -> None:
    data_dir = tmp_path / "data"
    rng = random.Random(10)
    worst_s = 0.0
    worst_entries = 0.0
    for kill in range(conftest.iterations(3, 10)):
        before = set(_logs(data_dir))
        app = app_process.start(data_dir)
        app.wait_idle()
        app.press()
        app.wait_recording(0.5)
        # let the log get past its first batch, then cut the power at a random moment
        deadline = time.monotonic() + 60
        while not [p for p in _logs(data_dir) if p not in before and _lines(p) >= FLUSH_ENTRIES]:
            assert time.monotonic() < deadline, "no detections logged"
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, FLUSH_S))
        killed_at = time.time()
        old = {p: p.read_bytes() for p in before}
        app.kill_group()
        (log,) = [p for p in _logs(data_dir) if p not in before]
        entries = list(serialize.iter_jsonl(log))
        frames = [entry["frame_id"] for entry in entries]
        assert frames == sorted(frames), frames
        assert set(range(frames[0], frames[-1] + 1)) <= set(frames), frames  # no hole
        first = datetime.datetime.fromisoformat(entries[0]["timestamp"]).timestamp()
        last = datetime.datetime.fromisoformat(entries[-1]["timestamp"]).timestamp()
        behind = killed_at - last
        rate = (len(entries) - 1) / max(last - first, 1e-3)
        # whichever flush bound comes first: 10 entries at this rate, or 5 s
        bound = min(FLUSH_S, FLUSH_ENTRIES / rate) + SLACK_S
        assert behind <= bound, (kill, behind, bound, len(entries))
        worst_s = max(worst_s, behind)
        worst_entries = max(worst_entries, behind * rate)
        for path, data in old.items():  # earlier sessions' logs are never rewritten
            assert path.read_bytes() == data, path
    app = app_process.start(data_dir)
    try:
        app.wait_idle()
    finally:
        assert app.terminate() == 0
    print(
        f"FAULTS detection-log kills={kill + 1} worst_behind_s={worst_s:.2f} "
        f"worst_entries~{worst_entries:.1f}"
    )
