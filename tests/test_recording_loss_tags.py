"""Every item the writer lost is counted in the merged file's track tags, read back by ffprobe."""

from __future__ import annotations

import os
import pathlib
import signal
from collections.abc import Callable

import numpy as np
import pytest

from omgrab import recording
from omgrab.recording import merge, stream_queue, writer_loss_tags
from tests import fixtures_recording as fx
from tests import recording_mkv_probe as probe
from tests.test_recording_writer import wait_for


def test_writer_losses_are_track_tags_of_the_merged_file(
    writer_factory: Callable[..., recording.ChunkedWriter], tmp_path: pathlib.Path
) -> None:
    """A stalled RGB encoder (backlog capped, reported behind) and a depth stream given an
    invalid frame and a frame from before the origin: each count is a tag of its track."""
    writer = writer_factory(data={}, max_backlog_s=0.5, behind_report_s=0.2)
    writer.start()
    pid = writer.worker_pid("rgb")
    assert pid is not None
    rgb = writer.get_encoder_queue("rgb")
    depth = writer.get_encoder_queue("depth")
    for i in range(5):
        rgb.put((fx.rgb_frame(i), fx.timestamp_at(40 * i)))
    wait_for(lambda: writer.stats["rgb"].frames_written == 5)
    os.kill(pid, signal.SIGSTOP)
    try:
        for i in range(5, 25):  # the worker took pts 160: pts 680 .. 960 exceed the 0.5 s cap
            rgb.put((fx.rgb_frame(i), fx.timestamp_at(40 * i)), block=False)
    finally:
        os.kill(pid, signal.SIGCONT)
    depth.put((fx.depth_frame(0), fx.timestamp_at(-40)))  # before the origin
    for i in range(10):  # each taken before the next: the depth backlog stays under 0.2 s
        depth.put((fx.depth_frame(i), fx.timestamp_at(40 * i)))
        wait_for(lambda i=i: writer.stats["depth"].frames_written == i + 1)
    depth.put((np.zeros((3, 3), np.uint16), fx.timestamp_at(400)))  # wrong shape
    depth.put((fx.depth_frame(11), fx.timestamp_at(440)))
    writer.stop()

    merged = merge.merge_recording_chunks(writer.directory, tmp_path / "out.mkv")
    streams = {
        s["tags"]["STREAM_NAME"]: s["tags"]
        for s in probe.ffprobe(merged, "-show_streams")["streams"]
    }
    assert streams["rgb"]["FRAMES_DROPPED"] == "8"
    assert streams["rgb"]["FRAMES_DROPPED_BACKLOG_CAP"] == "8"
    assert streams["rgb"]["FRAMES_DROPPED_RING_FULL"] == "0"
    assert streams["rgb"]["FRAMES_INVALID"] == "0"
    assert streams["rgb"]["BACKLOG_MAX_S"] == "0.480"
    assert streams["rgb"]["BEHIND_REALTIME_S"] == "0.240"
    assert streams["depth"]["FRAMES_INVALID"] == "1"
    assert streams["depth"]["FRAMES_DROPPED_BEFORE_ORIGIN"] == "1"
    assert streams["depth"]["FRAMES_DROPPED_BACKLOG_CAP"] == "0"
    assert streams["depth"]["BEHIND_REALTIME_S"] == "none"
    assert streams["depth"]["FRAMES_WRITTEN"] == "11"


def test_unknown_counts_are_never_guessed_zero() -> None:
    everything_unknown = writer_loss_tags.track_tags(None)
    assert set(everything_unknown.values()) == {"unknown"}
    assert len(everything_unknown) == 3 + len(stream_queue.DROP_REASONS)
    # an older writer's stats.json: counters without the per-reason split or backlog fields
    older = writer_loss_tags.track_tags({"frames_dropped": 2, "frames_invalid": 1})
    assert older["FRAMES_INVALID"] == "1"
    assert older["FRAMES_DROPPED_RING_FULL"] == "unknown"
    assert older["BEHIND_REALTIME_S"] == "unknown"
    odd = writer_loss_tags.track_tags(
        {"frames_invalid": True, "drops": {"ring_full": -1}, "backlog_max_s": "x"}
    )
    assert odd["FRAMES_INVALID"] == odd["FRAMES_DROPPED_RING_FULL"] == "unknown"
    assert odd["BACKLOG_MAX_S"] == "unknown"


@pytest.mark.parametrize("reason", stream_queue.DROP_REASONS)
def test_each_drop_reason_has_its_tag(reason: str) -> None:
    tags = writer_loss_tags.track_tags({"drops": {reason: 7}})
    assert tags[f"FRAMES_DROPPED_{reason.upper()}"] == "7"
