"""SIGKILL of the incremental merge at random moments (appending, finishing), then recovery.

A child process runs :class:`~omgrab.recording.live_merge.LiveMerge` over a finished spool with
small batches, so it spends its time appending and then finishing; it is killed at a random
moment of that work. ``merge_recording`` (what start-up recovery runs) must then continue the
growing file and give exactly the full merge's packets, pts and tags, leave no growing file and
delete the spool. ``make test`` runs 6 kills, ``make faults`` 40.
"""

from __future__ import annotations

import os
import pathlib
import random
import shutil
import signal
import subprocess
import sys
import time

import pytest

from omgrab.recording import live_merge, merge
from tests import recording_spool_factory as factory
from tests import test_recording_live_merge as live_tests
from tests.faults import conftest

pytestmark = pytest.mark.faults

REPO = pathlib.Path(__file__).resolve().parents[2]
CHILD = """
import pathlib, sys
from omgrab.recording import live_merge
live = live_merge.LiveMerge(
    pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]),
    poll_interval_s=0.01, flush_interval_s=0, batch_bytes=12_000,
)
print("ready", flush=True)
live.run_to_end()
print("done", flush=True)
"""


def _run_child(spool: pathlib.Path, out: pathlib.Path, kill_after: float | None) -> float:
    """Run the merge in a child; kill it ``kill_after`` s after it is ready; return its time."""
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(spool), str(out)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    started = time.monotonic()
    if kill_after is None:
        assert proc.wait(120) == 0
        return time.monotonic() - started
    try:
        proc.wait(kill_after)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
    return time.monotonic() - started


def test_sigkill_while_appending_or_finishing_then_recovery_continues(tmp_path) -> None:
    rec = factory.standard_recording(tmp_path / "spool", "r1", duration_ms=8000)
    pristine = tmp_path / "pristine"
    shutil.copytree(rec.directory, pristine)
    references = {}
    for recovered in (False, True):  # a kill after the publish leaves the unrecovered file
        reference_dir = tmp_path / f"reference-{recovered}"
        reference_dir.mkdir()
        references[recovered] = merge.merge_recording(
            pristine, reference_dir, recovered=recovered
        ).output_path
    # how long an uninterrupted run takes (in this run, on this machine)
    spool = tmp_path / "work" / "r1"
    out = tmp_path / "out"
    shutil.copytree(pristine, spool)
    whole = _run_child(spool, out, None)
    shutil.rmtree(out)
    rng = random.Random(14)
    kills = conftest.iterations(6, 40)
    states = []
    for _ in range(kills):
        shutil.rmtree(tmp_path / "work", ignore_errors=True)
        shutil.copytree(pristine, spool)
        out.mkdir()
        _run_child(spool, out, rng.uniform(0.0, whole * 1.1))
        state_file = spool / live_merge.STATE_FILE
        states.append(
            "finished" if not spool.exists() else "growing" if state_file.exists() else "none"
        )
        if spool.exists():
            result = merge.merge_recording(spool, out, cleanup=True, recovered=True)
        else:  # killed after the clean-up
            result = merge.merge_recording(spool, out)
        assert not list(out.glob("*.partial"))
        assert not spool.exists()
        live_tests.assert_same_as_reference(
            result.output_path, references[result.manifest.recovered]
        )
        shutil.rmtree(out)
    print(f"\nlive-merge kills: {kills} in {whole:.2f} s runs, state at the kill: {states}")
    assert "growing" in states  # at least one kill cut an append or a finish
