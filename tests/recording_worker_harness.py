"""An in-process stream worker on a real ring, real semaphores and real chunk files.

``WorkerHarness`` plays the producer by hand (``store_without_post`` then ``post``), so tests can
drive ``stream_worker._Worker`` one step at a time.
"""

from __future__ import annotations

import multiprocessing
import pathlib

from omgrab.recording import frame_ring, named_semaphore, stream_worker


class WorkerHarness:
    def __init__(self, tmp_path: pathlib.Path, fsync_interval_ms: int = 0) -> None:
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
            fsync_interval_ms=fsync_interval_ms,
        )
        self.worker = stream_worker._Worker(
            spec, self.filled, self.free, events_send, lifeline_recv
        )

    def store_without_post(
        self, index: int, pts: int, payload: bytes, chunk_id: bytes | None = None
    ) -> None:
        """The producer's stores of one item, but not yet its ``filled`` post.

        ``chunk_id`` starts a new chunk with the item (the first item always does).
        """
        self.free.acquire(False)
        if chunk_id is None and self.ring.header[frame_ring.WRITE_COUNT_FIELD] == 0:
            chunk_id = b"00001"
        slot_index = index % self.ring.spec.slots
        if chunk_id is not None:
            self.ring.set_chunk_id(slot_index, chunk_id)
        self.ring.payload(slot_index, len(payload))[:] = payload
        slot = self.ring.slot_headers[slot_index]
        flags = frame_ring.FLAG_NEW_CHUNK if chunk_id is not None else 0
        slot[0], slot[1], slot[2] = pts, flags, len(payload)
        self.ring.header[frame_ring.WRITE_COUNT_FIELD] += 1

    def put(self, index: int, pts: int, payload: bytes, chunk_id: bytes | None = None) -> None:
        """Publish one item with its post and let the worker consume it."""
        self.store_without_post(index, pts, payload, chunk_id)
        self.filled.release()
        self.worker.take_posts()
        self.worker.drain()

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
