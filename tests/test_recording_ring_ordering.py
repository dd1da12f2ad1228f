"""The worker consumes a ring item only after acquiring that item's own semaphore post.

On weakly ordered CPUs (ARM) the producer's store of ``WRITE_COUNT`` can become visible to the
worker before the slot's payload; the ``filled`` post is the release that makes the slot
visible. These tests publish a slot *without* its post (what the worker may observe on ARM)
and check that the worker leaves it alone until the post arrives.
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

from tests import recording_worker_harness as harness


@pytest.fixture
def worker(tmp_path: pathlib.Path) -> Iterator[harness.WorkerHarness]:
    made = harness.WorkerHarness(tmp_path)
    yield made
    made.close()


def test_item_is_consumed_only_after_its_own_post(worker: harness.WorkerHarness) -> None:
    worker.store_without_post(0, 0, b"first")
    worker.worker.take_posts()
    worker.worker.drain()
    assert worker.consumed() == 0, "an item was read before its semaphore post"
    worker.filled.release()
    worker.store_without_post(1, 40, b"second")  # published, its post still missing
    worker.worker.take_posts()
    worker.worker.drain()
    assert worker.consumed() == 1
    worker.filled.release()
    worker.worker.take_posts()
    worker.worker.drain()
    assert worker.consumed() == 2
    assert worker.worker.chunk is not None and worker.worker.chunk.frames == 2


def test_orphaned_worker_takes_everything_the_dead_parent_stored(
    worker: harness.WorkerHarness,
) -> None:
    worker.store_without_post(0, 0, b"first")
    worker.store_without_post(1, 40, b"second")
    worker.worker.drain_orphaned()
    assert worker.consumed() == 2
