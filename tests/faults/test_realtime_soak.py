"""A real-time soak: ``omgrab run`` records the simulated device for 30 minutes (``make faults``).

The application runs as a subprocess on the simulated device at its real frame rate (small
streams, 1 s chunks), one recording for ``OMGRAB_SOAK_REALTIME_S`` seconds (default 1800). The
process group's RSS is sampled every 10 s; after the stop the merged file must be valid
(ffprobe and mkvmerge), every track's pts strictly increasing, and every RGB frame slot between
the first and the last frame either in the file or counted as missed by the capture side (no
unexplained loss). Long form only: it takes its duration plus the merge.
"""

from __future__ import annotations

import itertools
import json
import os
import pathlib
import time

import pytest

from tests.faults import app_process, conftest

pytestmark = [
    pytest.mark.faults,
    pytest.mark.skipif(not conftest.LONG, reason="long form only (OMGRAB_FAULTS=1)"),
]

DURATION_S = float(os.environ.get("OMGRAB_SOAK_REALTIME_S", "1800"))
SAMPLE_S = min(10.0, DURATION_S / 10)
FPS = 25  # the simulated rig's default rate
#: Allowed RSS growth of the whole process group from the first tenth to the end.
RSS_GROWTH_KIB = 24 * 1024


def _group_rss_kib(app: app_process.App) -> int:
    return sum(app_process.rss_kib(pid) or 0 for pid in app.group_pids())


def _strictly_increasing(values: list[int]) -> bool:
    return all(b > a for a, b in itertools.pairwise(values))


@pytest.mark.timeout(DURATION_S + 900)
def test_thirty_minutes_real_time_rss_flat_and_every_frame_accounted(
    tmp_path: pathlib.Path,
) -> None:
    data_dir = tmp_path / "data"
    app = app_process.start(data_dir)
    samples: list[tuple[float, int]] = []
    try:
        app.wait_idle()
        app.press()
        app.wait_recording(0.5)
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < DURATION_S:
            doc = app.status() or {}
            assert (doc.get("recording") or {}).get("is_recording"), doc
            samples.append((elapsed, _group_rss_kib(app)))
            time.sleep(min(SAMPLE_S, max(0.0, DURATION_S - elapsed)))
        app.press()
        merged_in = time.monotonic()
        app.wait_for(
            "merged and its spool cleaned up",
            lambda d: (
                not (d.get("recording") or {}).get("is_recording")
                and any((data_dir / "recordings").glob("*.json"))
                and not any(p.is_dir() for p in (data_dir / "spool").iterdir())
            ),
            900,
        )
        merged_in = time.monotonic() - merged_in
    finally:
        code = app.terminate()
    assert code == 0
    (mkv,) = sorted((data_dir / "recordings").glob("*.mkv"))
    manifest = json.loads(mkv.with_suffix(".json").read_text())
    app_process.probe_valid(mkv)
    by_track = app_process.pts_by_track(mkv)
    for track, pts in by_track.items():
        assert _strictly_increasing(pts), f"track {track}: pts not strictly increasing"
    rgb = manifest["streams"]["rgb"]
    rgb_pts = by_track[0]
    slots = round((rgb_pts[-1] - rgb_pts[0]) * FPS / 1000) + 1
    accounted = rgb["frames_written"] + (rgb.get("frames_missed") or 0)
    assert len(rgb_pts) == rgb["frames_written"]
    assert accounted >= slots - 1, (slots, rgb["frames_written"], rgb.get("frames_missed"))
    assert rgb_pts[-1] >= (DURATION_S - 5) * 1000
    tenth = [rss for t, rss in samples if t >= DURATION_S / 10]
    growth = tenth[-1] - tenth[0]
    print(
        f"\nFAULTS realtime-soak {DURATION_S:.0f} s: rgb frames {len(rgb_pts)} of {slots} slots "
        f"(missed {rgb.get('frames_missed')}), tracks {sorted(by_track)} "
        f"packets {[len(v) for _, v in sorted(by_track.items())]}; group RSS "
        f"{tenth[0] / 1024:.1f} -> {tenth[-1] / 1024:.1f} MiB (max "
        f"{max(r for _, r in samples) / 1024:.1f}); last rgb pts {rgb_pts[-1]} ms; "
        f"stop to merged and spool cleaned {merged_in:.1f} s"
    )
    assert growth <= RSS_GROWTH_KIB, f"RSS grew {growth} KiB over the soak"
