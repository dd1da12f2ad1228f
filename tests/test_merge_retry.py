"""The merge retry: backoff, the give-up bound, space freed, the spool kept until it merges."""

from __future__ import annotations

import errno
import os
import pathlib
import threading

import pytest

from omgrab.recording import merge
from omgrab.runtime import merge_retry
from tests import recording_mkv_probe as probe
from tests import recording_spool_factory as factory
from tests import tmpfs


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _full(path: pathlib.Path) -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


def test_policy_backoff_doubles_up_to_the_cap() -> None:
    policy = merge_retry.RetryPolicy(initial_delay_s=5, max_delay_s=60)
    assert [policy.delay(n) for n in range(1, 7)] == [5, 10, 20, 40, 60, 60]
    with pytest.raises(ValueError, match="max_delay_s"):
        merge_retry.RetryPolicy(initial_delay_s=10, max_delay_s=5)
    with pytest.raises(ValueError, match="max_attempts"):
        merge_retry.RetryPolicy(max_attempts=0)


def test_space_errors_are_recognised_through_causes_and_event_messages() -> None:
    try:
        try:
            raise _full(pathlib.Path("/x.mkv"))
        except OSError as inner:
            raise merge.MergeError("writing failed") from inner
    except merge.MergeError as outer:
        assert merge_retry.is_space_error(outer)
    assert not merge_retry.is_space_error(merge.MergeError("bad chunk"))
    retry = merge_retry.MergeRetry(pathlib.Path("/nonexistent"), pathlib.Path("/nonexistent"))
    retry.add("a", "merge of a failed: OSError: [Errno 28] No space left on device: '/o/a.mkv'")
    retry.add("b", "merge of b failed: MergeError: no stream has a readable chunk")
    table = {e["recording_id"]: e for e in retry.progress()["recordings"]}
    assert table["a"]["space_error"] and not table["b"]["space_error"]


def test_a_failure_not_about_space_backs_off_then_is_given_up(tmp_path: pathlib.Path) -> None:
    (tmp_path / "spool" / "rec").mkdir(parents=True)
    clock = _Clock()
    calls: list[float] = []

    def failing(directory: pathlib.Path, out: pathlib.Path) -> pathlib.Path:
        calls.append(clock.now)
        raise merge.MergeError(f"{directory.name}: unreadable")

    policy = merge_retry.RetryPolicy(initial_delay_s=5, max_delay_s=20, max_attempts=3)
    retry = merge_retry.MergeRetry(
        tmp_path / "spool",
        tmp_path / "out",
        policy=policy,
        merge_fn=failing,
        free_bytes=lambda: 1 << 40,
        monotonic=clock,
    )
    retry.add("rec", merge.MergeError("first failure"))
    for _ in range(200):  # 100 s in 0.5 s steps
        retry.run_due()
        clock.now += 0.5
    # first failure at 100 -> tries at 105 (delay 5), 115 (10), 135 (20, the cap); then given up
    assert calls == [105.0, 115.0, 135.0]
    (entry,) = retry.progress()["recordings"]
    assert entry["gave_up"] and entry["attempts"] == 3 and entry["next_retry_in_s"] is None
    assert retry.pending() == []
    assert (tmp_path / "spool" / "rec").is_dir()  # never deleted by a failure


def test_space_failures_are_never_given_up(tmp_path: pathlib.Path) -> None:
    (tmp_path / "spool" / "rec").mkdir(parents=True)
    clock = _Clock()
    calls: list[float] = []

    def full(directory: pathlib.Path, out: pathlib.Path) -> pathlib.Path:
        calls.append(clock.now)
        raise _full(out / "rec.mkv")

    policy = merge_retry.RetryPolicy(initial_delay_s=1, max_delay_s=4, max_attempts=2)
    retry = merge_retry.MergeRetry(
        tmp_path / "spool",
        tmp_path / "out",
        policy=policy,
        merge_fn=full,
        free_bytes=lambda: 0,  # no room: only the backoff triggers a try
        monotonic=clock,
    )
    retry.add("rec", _full(tmp_path / "out" / "rec.mkv"))
    for _ in range(60):
        retry.run_due()
        clock.now += 1.0
    # delays 1, 2, 4, then capped at 4 for as long as it runs (clock 100 -> 159)
    assert calls == [101.0, 103.0, 107.0, *range(111, 160, 4)]
    assert retry.pending() == ["rec"]


def test_a_vanished_spool_directory_is_dropped(tmp_path: pathlib.Path) -> None:
    retry = merge_retry.MergeRetry(
        tmp_path / "spool", tmp_path / "out", merge_fn=lambda d, o: pytest.fail("merged")
    )
    retry.add("gone", "merge of gone failed")
    retry._entries["gone"].next_at = 0.0
    assert retry.run_due() == 0
    assert retry.progress()["recordings"] == []


@pytest.mark.tmpfs
def test_disk_full_merge_lands_when_space_is_freed_and_keeps_the_spool_until_then(
    spool: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    rec = factory.standard_recording(spool, duration_ms=4000)
    chunks = sorted(p.relative_to(rec.directory) for p in rec.directory.rglob("*.mkv"))
    merged = threading.Event()
    landed: list[pathlib.Path] = []
    with tmpfs.mounted_tmpfs(tmp_path, "4m") as out:
        filler = out / "filler"
        filler.write_bytes(b"\0" * ((4 << 20) - (16 << 10)))  # leave ~16 KiB
        with pytest.raises(OSError) as caught:
            merge.merge_recording(rec.directory, out, cleanup=True)
        assert caught.value.errno == errno.ENOSPC
        policy = merge_retry.RetryPolicy(
            initial_delay_s=3600, max_delay_s=3600, poll_s=0.05, headroom_bytes=0
        )
        retry = merge_retry.MergeRetry(
            spool,
            out,
            policy=policy,
            on_merged=lambda path: (landed.append(path), merged.set()),
        )
        retry.add(rec.recording_id, caught.value)
        retry.start()
        try:
            # still full: nothing is due for an hour, the spool stays whole
            assert not merged.wait(0.5)
            assert sorted(p.relative_to(rec.directory) for p in rec.directory.rglob("*.mkv")) == (
                chunks
            )
            assert retry.progress()["pending"] == 1
            filler.unlink()  # space freed: merged at the next poll, not in an hour
            assert merged.wait(30), retry.progress()
        finally:
            retry.stop()
        assert landed == [out / f"{rec.recording_id}.mkv"]
        assert not rec.directory.exists()  # cleaned up after the verified merge
        assert probe.mkvmerge_identify(landed[0])["container"]["recognized"]
        assert retry.progress() == {"pending": 0, "merged": 1, "recordings": []}
