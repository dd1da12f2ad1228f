"""The worker consumes a ring item only after acquiring that item's own semaphore post.

On weakly ordered CPUs (ARM) the producer's store of ``WRITE_COUNT`` can become visible to the
worker before the slot's payload; the ``filled`` post is the release that makes the slot
visible. These tests publish a slot *without* its post (what the worker may observe on ARM)
and check that the worker leaves it alone until the post arrives.
"""

from __future__ import annotations

import multiprocessing
import pathlib
from collections.abc import Iterator

import pytest

from omgrab.recording import frame_ring, named_semaphore, stream_worker


class _Worker:
    def __init__(self, tmp_path: pathlib.Path) -> None:
        self.ring = frame_ring.FrameRing.create(4, 64)
        self.filled, self.filled_name = named_semaphore.create(0)
        self.free, self.free_name = named_semaphore.create(4)
        self.events_recv, events_send = multiprocessing.Pipe(duplex=False)
        lifeline_recv, self.lifeline_send = multiprocessing.Pipe(duplex=False)
        spec = stream_worker.WorkerSpec(
            stream_name="imu",
            kind="data",
            config={"codec": "ass", "metadata": {"type": "imu"}, "max_item_bytes": 64},
            directory=str(tmp_path),
            ext="mkv",
            ring=self.ring.spec,
            filled_semaphore=self.filled_name,
            free_semaphore=self.free_name,
            fsync_interval_ms=0,
        )
        self.worker = stream_worker._Worker(
            spec, self.filled, self.free, events_send, lifeline_recv
        )

    def store_without_post(self, index: int, pts: int, payload: bytes) -> None:
        """The producer's stores of one item, but not yet its ``filled`` post."""
        self.free.acquire(False)
        if index == 0:
            self.ring.set_chunk_id(0, b"00001")
        self.ring.payload(index, len(payload))[:] = payload
        slot = self.ring.slot_headers[index]
        slot[0], slot[1], slot[2] = (
            pts,
            frame_ring.FLAG_NEW_CHUNK if index == 0 else 0,
            len(payload),
        )
        self.ring.header[frame_ring.WRITE_COUNT_FIELD] += 1

    def consumed(self) -> int:
        return int(self.ring.header[frame_ring.READ_COUNT_FIELD])

    def close(self) -> None:
        self.worker.close_chunk()
        self.worker.syncer.stop()
        self.worker.ring.close()
        self.ring.unlink()
        self.ring.close()
        for name in (self.filled_name, self.free_name):
            named_semaphore.unlink(name)


@pytest.fixture
def worker(tmp_path: pathlib.Path) -> Iterator[_Worker]:
    made = _Worker(tmp_path)
    yield made
    made.close()


def test_item_is_consumed_only_after_its_own_post(worker: _Worker) -> None:
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


def test_orphaned_worker_takes_everything_the_dead_parent_stored(worker: _Worker) -> None:
    worker.store_without_post(0, 0, b"first")
    worker.store_without_post(1, 40, b"second")
    worker.worker.drain_orphaned()
    assert worker.consumed() == 2
