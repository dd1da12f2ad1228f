"""A single-producer single-consumer ring of fixed-size slots in shared memory.

The capture side (producer, in the application process) copies an item into the next slot and
publishes it; the stream worker (consumer, in its own process) encodes it and frees the slot.
Two counting semaphores carry the hand-off: ``free`` counts empty slots, ``filled`` wakes the
consumer. Both ``sem_trywait`` and ``sem_post`` run without releasing the GIL, so the
producer's fast path (a free slot exists) never waits for the GIL behind a busy application
thread.

Memory ordering (weakly ordered CPUs such as ARM): the plain stores to the shared segment are
not ordered by themselves, so the semaphores are the only acquire/release pairs between the
processes, and each side acts on a slot only after the post that covers it:

* the producer stores the payload, the slot header and ``WRITE_COUNT`` and *then* posts
  ``filled`` (release); the consumer reads item *k* only after it acquired *k* ``filled`` posts
  (acquire) -- ``WRITE_COUNT`` alone is never proof that a slot's bytes are visible;
* the consumer finishes reading a slot, then bumps ``READ_COUNT`` and posts ``free``; the
  producer writes a slot only after acquiring a ``free`` post.

Counters in the header other than these (written, pts, chunks) are statistics read without
ordering guarantees. ``stream_worker._Worker.drain`` implements the consumer's rule.

Layout of the segment (all integers little-endian int64)::

    header  (HEADER_BYTES)      counters, see the *_FIELD constants
    slot headers (slots x SLOT_HEADER_BYTES)
        [0] pts_ms  [1] flags  [2] payload bytes  [3..10] chunk id (64 bytes, NUL padded)
    slot payloads (slots x slot_bytes)

Memory used: ``HEADER_BYTES + slots * (SLOT_HEADER_BYTES + slot_bytes)``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
from multiprocessing import resource_tracker, shared_memory
from typing import Any

import numpy as np

HEADER_BYTES = 4096
SLOT_HEADER_BYTES = 128
CHUNK_ID_BYTES = 64

# Header fields (int64 indexes).
WRITE_COUNT_FIELD = 0  # items published by the producer
READ_COUNT_FIELD = 1  # items consumed (slot freed) by the consumer
STOP_FIELD = 2  # producer sets 1: drain and finish
WRITTEN_FIELD = 3  # items muxed into chunk files by the consumer
FIRST_PTS_FIELD = 4  # pts of the first item muxed, -1 before any
LAST_PTS_FIELD = 5  # pts of the last item muxed, -1 before any
CHUNKS_FIELD = 6  # chunk files opened by the consumer
ENCODER_DELAY_FIELD = 7  # most frames the consumer's encoder held at once (measured)
TAKEN_PTS_FIELD = 8  # pts of the newest item the consumer took out of the ring, -1 before any

# Slot flags.
FLAG_NEW_CHUNK = 1

_ALIGN = 64


@dataclasses.dataclass(frozen=True)
class RingSpec:
    """What a consumer needs to attach to a ring (picklable).

    Attributes:
        shm_name: Name of the shared-memory segment.
        slots: Number of slots.
        slot_bytes: Payload capacity of one slot.
    """

    shm_name: str
    slots: int
    slot_bytes: int

    @property
    def total_bytes(self) -> int:
        """Size of the shared-memory segment in bytes."""
        return _data_offset(self.slots) + self.slots * _aligned(self.slot_bytes)


def _aligned(n: int) -> int:
    return (n + _ALIGN - 1) // _ALIGN * _ALIGN


def _data_offset(slots: int) -> int:
    return _aligned(HEADER_BYTES + slots * SLOT_HEADER_BYTES)


class FrameRing:
    """Shared-memory slots plus their headers; see the module docstring for the layout.

    Create with ``FrameRing.create`` (owner, unlinks on ``unlink``) or ``FrameRing.attach``
    (consumer process; never unlinks, not tracked by the consumer's resource tracker).
    """

    def __init__(self, spec: RingSpec, shm: shared_memory.SharedMemory, owner: bool) -> None:
        self.spec = spec
        self._shm = shm
        self._owner = owner
        self._unlinked = False
        buf = shm.buf
        assert buf is not None
        self._buf: memoryview = buf
        self.header: np.ndarray = np.ndarray((HEADER_BYTES // 8,), dtype="<i8", buffer=buf)
        self.slot_headers: np.ndarray = np.ndarray(
            (spec.slots, SLOT_HEADER_BYTES // 8), dtype="<i8", buffer=buf, offset=HEADER_BYTES
        )
        self._data_offset = _data_offset(spec.slots)
        self._stride = _aligned(spec.slot_bytes)

    @classmethod
    def create(cls, slots: int, slot_bytes: int, prefix: str = "omgrab") -> FrameRing:
        """Create a new zeroed ring.

        Args:
            slots: Number of slots (>= 1).
            slot_bytes: Payload capacity of one slot (>= 1).
            prefix: Start of the segment name (the pid is added, so leftovers of a killed
                process can be told apart).

        Returns:
            The owning ring.
        """
        if slots < 1 or slot_bytes < 1:
            raise ValueError(f"a ring needs >= 1 slot of >= 1 byte, got {slots} x {slot_bytes}")
        name = f"{prefix}-{os.getpid()}-{secrets.token_hex(4)}"
        spec = RingSpec(shm_name=name, slots=slots, slot_bytes=slot_bytes)
        shm = shared_memory.SharedMemory(name=name, create=True, size=spec.total_bytes)
        ring = cls(spec, shm, owner=True)
        ring.header[:] = 0
        ring.header[FIRST_PTS_FIELD] = -1
        ring.header[LAST_PTS_FIELD] = -1
        ring.header[TAKEN_PTS_FIELD] = -1
        return ring

    @classmethod
    def attach(cls, spec: RingSpec) -> FrameRing:
        """Attach to an existing ring from another process without taking ownership."""
        # Python 3.11 registers every attached segment with the resource tracker, which would
        # then unlink it (and warn) when this process exits; the creator owns the segment.
        original = resource_tracker.register
        resource_tracker.register = _no_register
        try:
            shm = shared_memory.SharedMemory(name=spec.shm_name)
        finally:
            resource_tracker.register = original
        return cls(spec, shm, owner=False)

    def payload(self, index: int, nbytes: int | None = None) -> memoryview:
        """Return a byte view of slot ``index``'s payload (its first ``nbytes`` bytes)."""
        start = self._data_offset + index * self._stride
        size = self.spec.slot_bytes if nbytes is None else nbytes
        return self._buf[start : start + size]

    def set_chunk_id(self, index: int, chunk_id: bytes) -> None:
        """Store a chunk id (<= CHUNK_ID_BYTES bytes) in slot ``index``'s header."""
        start = HEADER_BYTES + index * SLOT_HEADER_BYTES + 24
        padded = chunk_id.ljust(CHUNK_ID_BYTES, b"\0")
        self._buf[start : start + CHUNK_ID_BYTES] = padded

    def chunk_id(self, index: int) -> str:
        """Return the chunk id stored in slot ``index``'s header."""
        start = HEADER_BYTES + index * SLOT_HEADER_BYTES + 24
        raw = bytes(self._buf[start : start + CHUNK_ID_BYTES])
        return raw.rstrip(b"\0").decode("utf-8")

    def close(self) -> None:
        """Release this process's mapping (views into it must be gone)."""
        self.header = np.zeros(0, dtype="<i8")
        self.slot_headers = np.zeros((0, 0), dtype="<i8")
        del self._buf
        # BufferError: a caller still holds a view; the mapping then goes with the process.
        with contextlib.suppress(BufferError):
            self._shm.close()

    def unlink(self) -> None:
        """Remove the segment name (owner only); the memory goes once every mapping closes."""
        if self._owner and not self._unlinked:
            self._unlinked = True
            with contextlib.suppress(FileNotFoundError):
                self._shm.unlink()


def _no_register(name: Any, rtype: str) -> None:
    return None
