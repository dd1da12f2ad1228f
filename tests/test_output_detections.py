"""Detection log: flush policy, validation, format, queue bound, tolerant reader."""

from __future__ import annotations

import dataclasses
import math
import os
import pathlib
import tempfile

import hypothesis
import hypothesis.strategies as hyp_st
import numpy as np
import orjson
import pytest

from omgrab import clock, output
from omgrab.output import line_writer, manager
from tests import fixtures_output


def lines_on_disk(m: output.OutputManager) -> list[bytes]:
    assert m.session_dir is not None
    data = pathlib.Path(m.session_dir, manager.DETECTIONS_FILE).read_bytes()
    return data.splitlines()


@pytest.fixture
def mgr(tmp_path: pathlib.Path, output_manual_time: clock.ManualTimeSource) -> output.OutputManager:
    m = output.OutputManager(time_source=output_manual_time, output_dir=tmp_path)
    yield m
    m.close()


def test_flushes_every_10_entries(mgr: output.OutputManager) -> None:
    w = mgr._detections
    assert w is not None
    for i in range(9):
        mgr.log_detection(fixtures_output.detection_entry(i))
    # Nine entries are under the flush threshold and the (manual) clock has not moved: the
    # writer must not write them. Give it several poll periods to prove it.
    assert not w.wait_written(1, timeout=0.6)
    assert lines_on_disk(mgr) == []
    mgr.log_detection(fixtures_output.detection_entry(9))
    assert w.wait_written(10, timeout=5)
    assert len(lines_on_disk(mgr)) == 10
    assert w.flushes == 1
    for i in range(10, 25):
        mgr.log_detection(fixtures_output.detection_entry(i))
    # The writer drains whatever is pending in one write (batching), so between 16 and 25 of
    # the 25 lines are out - never more than 9 held back.
    assert w.wait_written(16, timeout=5)
    assert not w.wait_written(26, timeout=0.3)
    on_disk = len(lines_on_disk(mgr))
    assert on_disk == w.lines_written
    assert 25 - on_disk <= 9
    assert w.pending == 25 - on_disk


def test_flushes_5_seconds_after_oldest_entry(
    mgr: output.OutputManager, output_manual_time: clock.ManualTimeSource
) -> None:
    w = mgr._detections
    assert w is not None
    for i in range(3):
        mgr.log_detection(fixtures_output.detection_entry(i))
    output_manual_time.advance(4.9)
    mgr.poll()
    assert not w.wait_written(1, timeout=0.4)
    output_manual_time.advance(0.1)
    mgr.poll()
    assert w.wait_written(3, timeout=5)
    assert len(lines_on_disk(mgr)) == 3


def test_flush_interval_uses_real_time_by_default(tmp_path: pathlib.Path) -> None:
    cfg = output.OutputConfig(flush_interval_s=0.2)
    with output.OutputManager(cfg, output_dir=tmp_path) as m:
        m.log_detection(fixtures_output.detection_entry(1))
        assert m._detections is not None
        assert m._detections.wait_written(1, timeout=5)


def test_line_format_round_trips_and_timestamp_added(
    mgr: output.OutputManager,
) -> None:
    entry = fixtures_output.detection_entry(2**64 - 1, gps=[47.1, 8.5], note="ünïcode")
    mgr.log_detection(entry)
    mgr.log_detection({**fixtures_output.detection_entry(5), "timestamp": "given"})
    mgr.log_detection(
        output.Detection((1, 2, 3, 4), 7, "car", 0.5, track_id=9, frame_id=6, attributes={"a": 1})
    )
    mgr.log_detection(fixtures_output.detection_entry(np.uint64(12), confidence=np.float32(0.5)))
    assert mgr.flush(5)
    objs = output.read_jsonl(pathlib.Path(mgr.session_dir or "", manager.DETECTIONS_FILE))
    assert objs[0]["frame_id"] == 2**64 - 1
    assert objs[0]["note"] == "ünïcode"
    assert objs[0]["timestamp"] == "2023-11-14T22:13:20.000000+00:00"  # ManualTimeSource's wall
    assert "timestamp" not in entry  # caller's dict untouched
    assert objs[1]["timestamp"] == "given"
    assert objs[2]["label"] == "car" and objs[2]["bbox"] == [1, 2, 3, 4]
    assert objs[2]["track_id"] == 9 and objs[2]["a"] == 1
    assert objs[3]["frame_id"] == 12 and objs[3]["confidence"] == 0.5
    assert mgr.get_storage_status().detections_logged == 4


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"confidence": math.nan}, "confidence must be finite"),
        ({"confidence": math.inf}, "confidence must be finite"),
        ({"confidence": 1.5}, "confidence must be finite and in"),
        ({"confidence": "high"}, "confidence must be a number"),
        ({"bbox": [0, 0, math.nan, 1]}, "bbox values must be finite"),
        ({"bbox": [0, 0, 1]}, "bbox must be"),
        ({"bbox": [5, 0, 1, 1]}, "x_min <= x_max"),
        ({"frame_id": -1}, "frame_id must be in"),
        ({"frame_id": 2**64}, "frame_id must be in"),
        ({"frame_id": 1.5}, "frame_id must be an integer"),
        ({"class_id": -2}, "class_id"),
        ({"label": None}, "label must be a str"),
        ({"label": "x" * 1000}, "label is 1000 characters"),
        ({"note": "y" * 100_000}, "more than max_entry_bytes"),
        ({"blob": object()}, "not JSON-serialisable"),
        ({"track_id": "t1"}, "track_id"),
    ],
)
def test_bad_entries_raise_in_the_caller_naming_the_problem(
    mgr: output.OutputManager, change: dict, message: str
) -> None:
    with pytest.raises(output.InvalidEntryError, match=message):
        mgr.log_detection(fixtures_output.detection_entry(1, **change))
    # Still healthy afterwards.
    mgr.log_detection(fixtures_output.detection_entry(2))
    assert mgr.flush(5)
    assert len(lines_on_disk(mgr)) == 1
    assert mgr.rejected == 1
    assert mgr.error_count == 0


def test_missing_fields_and_wrong_types(mgr: output.OutputManager) -> None:
    entry = fixtures_output.detection_entry(1)
    del entry["label"], entry["bbox"]
    with pytest.raises(
        output.InvalidEntryError, match=r"missing required field\(s\) \['label', 'bbox'\]"
    ):
        mgr.log_detection(entry)
    with pytest.raises(ValueError, match="must be a dict"):
        mgr.log_detection(["not", "a", "dict"])
    with pytest.raises(output.WriteError, match="frame_id is required"):
        mgr.log_detection(output.Detection((0, 0, 1, 1), 1, "a", 0.1))


def test_nan_in_free_form_fields_is_written_as_null(mgr: output.OutputManager) -> None:
    mgr.log_detection(fixtures_output.detection_entry(1, altitude=math.nan))
    assert mgr.flush(5)
    assert orjson.loads(lines_on_disk(mgr)[0])["altitude"] is None


def test_dataclass_entries_are_accepted(mgr: output.OutputManager) -> None:
    @dataclasses.dataclass
    class Entry:
        frame_id: int
        class_id: int
        label: str
        confidence: float
        bbox: list[float]

    mgr.log_detection(Entry(4, 1, "boat", 0.25, [0, 0, 2, 2]))
    assert mgr.flush(5)
    assert orjson.loads(lines_on_disk(mgr)[0])["label"] == "boat"


def test_full_queue_raises_write_error_without_blocking(tmp_path: pathlib.Path) -> None:
    t = clock.ManualTimeSource()
    cfg = output.OutputConfig(detection_queue_size=5, flush_every=1000)
    with output.OutputManager(cfg, time_source=t, output_dir=tmp_path) as m:
        for i in range(5):
            m.log_detection(fixtures_output.detection_entry(i))
        with pytest.raises(output.WriteError, match="5 lines already waiting"):
            m.log_detection(fixtures_output.detection_entry(5))
    # close() drained the five accepted entries.
    objs = output.read_jsonl(pathlib.Path(m.session_dir or "", manager.DETECTIONS_FILE))
    assert [o["frame_id"] for o in objs] == [0, 1, 2, 3, 4]


def test_detection_loss_is_reported_while_it_happens(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    t = clock.ManualTimeSource()
    cfg = output.OutputConfig(detection_queue_size=5, flush_every=1000)
    with output.OutputManager(cfg, time_source=t, output_dir=tmp_path) as m:
        for i in range(5):
            m.log_detection(fixtures_output.detection_entry(i))
        caplog.clear()
        for i in range(5, 12):
            with pytest.raises(output.WriteError):
                m.log_detection(fixtures_output.detection_entry(i))
        # before close(): counted, in the stats line, and logged once for the episode
        stats = m.stats()
        assert stats["detections"]["refused"] == 7
        assert stats["detections"]["lost"] == 7
        assert stats["detections_lost"] == 7
        assert "(7 lost)" in m.log_stats()
        losing = [r for r in caplog.records if "lines are being lost" in r.getMessage()]
        assert len(losing) == 1 and "1 so far" in losing[0].getMessage()
        t.advance(6.0)  # still refusing 6 s later: reported again with the running total
        with pytest.raises(output.WriteError):
            m.log_detection(fixtures_output.detection_entry(12))
        losing = [r for r in caplog.records if "lines are being lost" in r.getMessage()]
        assert "8 so far" in losing[-1].getMessage()


def test_close_drains_and_calls_after_close_raise(mgr: output.OutputManager) -> None:
    for i in range(7):
        mgr.log_detection(fixtures_output.detection_entry(i))
    mgr.close()
    assert len(lines_on_disk(mgr)) == 7
    with pytest.raises(output.WriteError, match="closed"):
        mgr.log_detection(fixtures_output.detection_entry(8))
    mgr.close()  # idempotent


def test_log_is_appended_never_truncated(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_bytes(b'{"old":1}\n')
    w = line_writer.LineWriter(path, name="t", flush_every=1)
    w.submit(b'{"new":2}\n')
    w.close()
    assert path.read_bytes() == b'{"old":1}\n{"new":2}\n'


def test_reader_tolerates_a_truncated_last_line_only(tmp_path: pathlib.Path) -> None:
    p = tmp_path / "x.jsonl"
    p.write_bytes(b'{"a":1}\n{"a":2}\n{"a":')
    assert output.read_jsonl(p) == [{"a": 1}, {"a": 2}]
    p.write_bytes(b'{"a":1}\n{"a":\n{"a":3}\n')
    with pytest.raises(ValueError, match=r"x.jsonl:2: corrupt"):
        output.read_jsonl(p)


def test_write_errors_are_counted_logged_and_retried(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A writer whose descriptor is read-only fails every write with EBADF; the lines are kept
    # for retry, and once the descriptor is good again they go out in order.
    path = tmp_path / "d.jsonl"
    w = line_writer.LineWriter(path, name="Detection log", flush_every=1)
    good_fd = w._fd
    w._fd = os.open(path, os.O_RDONLY)
    w.submit(b"1\n")
    w.submit(b"2\n")
    deadline = 50
    while w.write_errors == 0 and deadline:
        w.wait_written(1, timeout=0.1)
        deadline -= 1
    assert w.write_errors >= 1
    assert w.lines_written == 0
    assert "Detection log write failed: Bad file descriptor" in caplog.text
    os.close(w._fd)
    w._fd = good_fd
    w.submit(b"3\n")
    assert w.wait_written(3, timeout=5)
    w.close()
    assert path.read_bytes() == b"1\n2\n3\n"
    assert w.lines_lost == 0


def test_read_only_mappings_are_accepted(mgr: output.OutputManager) -> None:
    import types as pytypes

    mgr.log_detection(pytypes.MappingProxyType(fixtures_output.detection_entry(3)))
    assert mgr.flush(5)
    assert orjson.loads(lines_on_disk(mgr)[0])["frame_id"] == 3


_values = hyp_st.recursive(
    hyp_st.none()
    | hyp_st.booleans()
    | hyp_st.integers(min_value=-(2**70), max_value=2**70)
    | hyp_st.floats(allow_nan=True, allow_infinity=True)
    | hyp_st.text(max_size=40)
    | hyp_st.sampled_from([object(), b"bytes", {1, 2}, (1, 2)]),
    lambda inner: (
        hyp_st.lists(inner, max_size=5)
        | hyp_st.dictionaries(hyp_st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=10,
)


@hypothesis.settings(max_examples=60, deadline=None)
@hypothesis.given(
    entry=hyp_st.fixed_dictionaries(
        {},
        optional={
            "frame_id": _values,
            "class_id": _values,
            "label": _values,
            "confidence": _values,
            "bbox": _values | hyp_st.lists(_values, min_size=4, max_size=4),
            "track_id": _values,
            "extra": _values,
        },
    )
)
def test_arbitrary_entries_are_accepted_or_rejected_cleanly(entry: dict) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        with output.OutputManager(output_dir=tmp) as m:
            try:
                m.log_detection(entry)
                accepted = 1
            except output.InvalidEntryError as exc:
                assert str(exc)  # names the problem
                accepted = 0
            assert m.flush(5)
            assert m.error_count == 0
            session = pathlib.Path(m.session_dir or "")
        objs = output.read_jsonl(session / manager.DETECTIONS_FILE)
        assert len(objs) == accepted
