"""Incremental merge: the recording's MKV grows while it records, so stop means done.

Data path (one thread per recording, in the recording process)::

    writer closes chunk k of a stream --stats.json--> LiveMerge feed of that stream
        --> Merger.packets (the full merge's cleaning rules) --heapq.merge by (pts, track)-->
        batch muxed by libavformat into memory --clusters--> <output>/<id>.mkv.partial
        --fsync, read back, verify--> state file --> chunks fully in the file are deleted

* The packets, their order and their cleaning are the full merge's (:mod:`.merge`): the same
  generators run over the same chunks, so the finished file holds the same packets with the
  same pts and the same tags as ``merge_recording`` would give.
* Every batch is a complete Matroska file muxed in memory (``mkv_splice``); only its clusters
  are appended, then the growing file is fsynced. The growing file has an unknown Segment size,
  so at any moment it is a valid Matroska file that PyAV, ffprobe and mkvmerge read up to its
  last complete cluster.
* A chunk is deleted only when every packet it holds (read again from the chunk, by pts, size
  and BLAKE2 digest) was read back from the fsynced growing file. Chunks with packets that are
  not in the file (discarded before a keyframe, corrupt) stay for the final clean-up, which
  quarantines them (:mod:`.spool_cleanup`).
* The state file ``<spool>/<id>/live_merge.json`` (atomic, fsynced before any delete) records
  the durable length of the growing file, where each stream resumes, the chunk entries and
  cue points so far. After a crash, start-up recovery (``merge_recording`` on a spool that has
  this file) truncates the growing file to that length and continues it: nothing is muxed
  twice and nothing is started over.
* At the end only the chunks not yet appended (normally the last one of each stream) remain:
  they are appended, then the Cues, SeekHead, duration, Segment size and the tags (from the
  final stats) are written in place, the manifest is written and the file is renamed to its
  final name (``<id>.mkv`` or ``<id>-2.mkv``, see :func:`.merge.output_target`).

Bounds: memory holds one batch (``batch_bytes``, default 8 MiB, plus libavformat's copy of it),
one cue point per keyframe and one 16-byte digest per packet of the chunks not yet deleted.
Disk: the growing file plus the chunks not yet appended and verified (about two chunks per
stream). Lifecycle: :meth:`LiveMerge.start` starts the thread, :meth:`LiveMerge.finish` ends
the recording's feed and waits for the finished file, :meth:`LiveMerge.cancel` stops the thread
and leaves the growing file and state for recovery. Error policy: any error stops the live
merge (logged, kept in :attr:`LiveMerge.error`); the growing file, its state and every chunk not
yet verified stay, and ``merge_recording`` (the caller's fallback, or start-up recovery)
continues from the last durable state.

Limits (documented): a stream gets its track when its first chunk closes; until every stream of
``recording.json`` has one, nothing is appended. A chunk whose codec parameters differ from its
stream's first chunk cannot become a new track in a file already being written: it is skipped,
kept in the spool and quarantined by the final clean-up with the reason (the full merge gives it
a track of its own).
"""

from __future__ import annotations

import collections
import dataclasses
import heapq
import io
import json
import logging
import os
import pathlib
import threading
import time
from typing import Any

import av

from omgrab.recording import (
    atomic_files,
    chunk_tail,
    manifest,
    merge,
    mkv_splice,
    mkv_tags,
    spool_cleanup,
    spool_reader,
)

logger = logging.getLogger(__name__)

STATE_FILE = "live_merge.json"
"""Name of the incremental merge's state file in the spool recording directory."""

CUES_FILE = "live_merge.cues"
"""The cue points appended so far (CuePoint elements, final positions), beside the state."""

ENTRIES_FILE = "live_merge.entries"
"""The chunks appended so far, one JSON line each (its manifest entry), beside the state."""

ORPHANED_STATE_FILE = "live_merge.orphaned.json"
"""The state file renamed when its growing file is gone (kept, then quarantined)."""

PARTIAL_SUFFIX = ".partial"
"""The growing file is ``<final name>.partial`` in the output directory."""

DEFAULT_BATCH_BYTES = 8 * 1024 * 1024
DEFAULT_POLL_INTERVAL_S = 0.25
DEFAULT_FLUSH_INTERVAL_S = 2.0
_STATE_VERSION = 1


class LiveMergeError(RuntimeError):
    """The incremental merge cannot go on (its growing file and state stay for recovery)."""


class GrowingFileMissing(LiveMergeError):
    """The state file names a growing file that is gone (deleted, or another output dir)."""


class _Cancelled(Exception):
    """Raised inside the packet generators to unwind the pipeline on :meth:`LiveMerge.cancel`."""


def partial_path_for(target: pathlib.Path) -> pathlib.Path:
    """Return the growing file of a recording whose final name will be ``target``."""
    return target.with_name(target.name + PARTIAL_SUFFIX)


def has_state(recording_dir: pathlib.Path) -> bool:
    """Whether ``recording_dir`` holds an incremental merge's state (a growing file exists)."""
    return (recording_dir / STATE_FILE).is_file()


@dataclasses.dataclass
class _ChunkRecord:
    """Bookkeeping of one chunk being appended."""

    stream: merge.TrackState
    path: pathlib.Path
    entry: manifest.ChunkEntry
    floor: int  # the stream's floor when the chunk started (resume point)
    pulled: int = 0  # cleaned packets handed to the merge
    emitted: int = 0  # of those, muxed into a batch
    durable: int = 0  # of those, in the fsynced growing file
    first_offset: int | None = None  # where its first packet's batch starts in the file
    done: bool = False  # read to its end
    nbytes: int = 0
    last_duration: int = 0
    floor_after: int = -1  # the stream's floor after it (where the next chunk resumes)


class _Tracker:
    """Called by ``Merger.packets``: which chunk each pulled packet came from."""

    def __init__(self) -> None:
        self.pending: dict[int, collections.deque[_ChunkRecord]] = collections.defaultdict(
            collections.deque
        )  # per track index: chunks with packets not yet durable, in order
        self.current: dict[int, _ChunkRecord] = {}
        self.finished: list[_ChunkRecord] = []  # done and durable, not yet retired

    def chunk_started(
        self, stream: merge.TrackState, path: pathlib.Path, entry: manifest.ChunkEntry, floor: int
    ) -> None:
        record = _ChunkRecord(stream, path, entry, floor)
        self.current[stream.index] = record
        self.pending[stream.index].append(record)

    def pulled(self, stream: merge.TrackState) -> None:
        self.current[stream.index].pulled += 1

    def chunk_done(
        self,
        stream: merge.TrackState,
        entry: manifest.ChunkEntry,
        nbytes: int,
        last_duration: int,
        floor_after: int,
    ) -> None:
        record = self.current[stream.index]
        record.done = True
        record.nbytes = nbytes
        record.last_duration = last_duration
        record.floor_after = floor_after

    def emitted(self, index: int, offset: int) -> None:
        """A packet of track ``index`` went into the batch that will start at ``offset``."""
        for record in self.pending[index]:
            if record.emitted < record.pulled:
                record.emitted += 1
                if record.first_offset is None:
                    record.first_offset = offset
                return
        raise LiveMergeError(f"track {index}: a packet was muxed that no chunk handed over")

    def made_durable(self) -> list[_ChunkRecord]:
        """Everything emitted is durable now; return the chunks that are complete in the file."""
        complete = []
        for queue in self.pending.values():
            for record in queue:
                record.durable = record.emitted
            while queue and queue[0].done and queue[0].durable == queue[0].pulled:
                complete.append(queue.popleft())
        return complete


class _Feed:
    """The chunk paths of one stream, in time order: closed ones, then the one being written."""

    def __init__(self, owner: LiveMerge) -> None:
        self._owner = owner
        self.queue: collections.deque[pathlib.Path] = collections.deque()
        self.known: set[pathlib.Path] = set()
        self.open: pathlib.Path | None = None  # the chunk the writer is writing now
        self.closed: set[pathlib.Path] = set()

    def add(self, path: pathlib.Path) -> None:
        """Queue a chunk path not seen yet."""
        if path not in self.known:
            self.known.add(path)
            self.queue.append(path)

    def __iter__(self) -> _Feed:
        return self

    def __next__(self) -> pathlib.Path:
        return self._owner.next_chunk(self)


class LiveMerge:
    """Builds a recording's merged MKV while it records; see the module docstring.

    Args:
        recording_dir: ``<spool>/<recording_id>`` (its writer already started).
        output_dir: Directory of the merged recordings.
        batch_bytes: Append (and fsync) at least this often while catching up.
        poll_interval_s: How often the chunk being written (and ``stats.json``) is looked at.
        flush_interval_s: While caught up, append what was read at most this often (every
            append costs a muxer set-up and an fsync; the chunks hold the data meanwhile).
        resume: Continue the growing file described by the spool's state file.
        recovered: Mark the result as salvaged by crash recovery.
    """

    def __init__(
        self,
        recording_dir: str | os.PathLike[str],
        output_dir: str | os.PathLike[str],
        *,
        batch_bytes: int = DEFAULT_BATCH_BYTES,
        poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
        flush_interval_s: float = DEFAULT_FLUSH_INTERVAL_S,
        recovered: bool = False,
    ) -> None:
        self.recording_dir = pathlib.Path(recording_dir)
        self.output_dir = pathlib.Path(output_dir)
        self._batch_bytes = batch_bytes
        self._poll_s = poll_interval_s
        self._recovered = recovered
        self._cond = threading.Condition()
        self._ended = False
        self._cancelled = False
        self._thread: threading.Thread | None = None
        self._done = threading.Event()
        self.result: merge.MergeResult | None = None
        self.error: BaseException | None = None
        self.reported = False  # the owner has reported ``error`` (it does so once)
        self.appended_batches = 0
        self.idle = False  # waiting for the writer to write more (all else is appended)
        self.looks = 0  # how many times it found nothing more to read (then flushed, waited)
        self.published_at: float | None = None  # time.monotonic() when the file was final
        self.deleted_chunks: list[str] = []
        # the spool's chunk listing once the writer has stopped (it no longer changes)
        self._final_chunks: dict[str, tuple[list[pathlib.Path], pathlib.Path | None]] | None = None
        # set up by _prepare / _resume
        self._merger: merge.Merger | None = None
        self._feeds: dict[str, _Feed] = {}
        self._tracker = _Tracker()
        self._target: pathlib.Path | None = None
        self._partial: pathlib.Path | None = None
        self._layout: mkv_splice.HeaderLayout | None = None
        self._size = 0
        self._cues_size = 0  # durable length of the cues file
        self._flush_interval_s = flush_interval_s
        self._last_flush = time.monotonic()
        self._keys: collections.Counter[spool_cleanup.PacketKey] = collections.Counter()
        self._entries_size = 0  # durable length of the entries file
        self._floor_after: dict[int, int] = {}
        self._header_size = 0
        self._batch: _Batch | None = None
        self._started = time.monotonic()

    # ----------------------------------------------------------------- public API
    @property
    def partial_path(self) -> pathlib.Path | None:
        """The growing file, once it exists."""
        return self._partial

    def thread_cpu_s(self) -> float:
        """CPU seconds the merge thread has used so far (0 before it starts or after it ends)."""
        ident = self._thread.ident if self._thread is not None else None
        if ident is None or not self._thread or not self._thread.is_alive():
            return 0.0
        try:
            return time.clock_gettime(time.pthread_getcpuclockid(ident))
        except OSError:
            return 0.0

    def start(self) -> None:
        """Start the merge thread."""
        self._thread = threading.Thread(
            target=self._run, name=f"live-merge-{self.recording_dir.name}", daemon=True
        )
        self._thread.start()

    def finish(self, timeout: float | None = None) -> merge.MergeResult:
        """End the feed (the writer has stopped) and wait for the finished file.

        Raises:
            TimeoutError: not finished within ``timeout`` (it goes on in the background).
            LiveMergeError: the incremental merge failed; its state stays for recovery.
        """
        with self._cond:
            self._ended = True
            self._cond.notify_all()
        if not self._done.wait(timeout):
            raise TimeoutError(f"merge of {self.recording_dir.name} still running")
        if self.result is None:
            raise LiveMergeError(f"incremental merge failed: {self.error}") from self.error
        return self.result

    def cancel(self, timeout: float | None = None) -> bool:
        """Stop the thread, leaving the growing file and its state for recovery."""
        with self._cond:
            self._cancelled = True
            self._cond.notify_all()
        return self._done.wait(timeout)

    def run_to_end(self) -> merge.MergeResult:
        """Merge (or continue) a recording whose writer has stopped, in the calling thread.

        Raises:
            GrowingFileMissing: the state names a growing file that does not exist.
            LiveMergeError: the merge failed (the state and growing file stay).
        """
        self._ended = True
        self._run()
        if isinstance(self.error, GrowingFileMissing):
            raise self.error
        if self.result is None:
            raise LiveMergeError(f"incremental merge failed: {self.error}") from self.error
        return self.result

    # ----------------------------------------------------------------- feed
    def next_chunk(self, feed: _Feed) -> pathlib.Path:
        """Called from the packet generators: the next chunk of ``feed``'s stream.

        Closed chunks first; then the chunk the writer is writing (read as it grows, see
        :meth:`open_for_merge`); waits while there is neither.
        """
        while True:
            with self._cond:
                if self._cancelled:
                    raise _Cancelled
                if feed.queue:
                    return feed.queue.popleft()
                ended = self._ended
            self._refresh(final=ended)
            if feed.queue:
                continue
            if ended:
                raise StopIteration
            if feed.open is not None and feed.open not in feed.known and feed.open.is_file():
                feed.known.add(feed.open)
                return feed.open
            self.wait_for_data()

    def wait_for_data(self) -> None:
        """Nothing more to read now: append what was muxed (at most every flush interval), wait."""
        if time.monotonic() - self._last_flush >= self._flush_interval_s:
            try:
                self._flush()
            except Exception as exc:
                # called from inside a chunk's read: an error here must not pass for a read
                # error of that chunk (which would end the chunk early), so it is re-raised
                # as what it is, a failed append
                raise LiveMergeError(f"append failed: {type(exc).__name__}: {exc}") from exc
        self.looks += 1
        with self._cond:
            if self._cancelled:
                raise _Cancelled
            if not self._ended:
                self.idle = True
                self._cond.wait(self._poll_s)
                self.idle = False
        self._refresh(final=self._ended)

    def open_for_merge(self, path: pathlib.Path) -> tuple[Any | None, str | None]:
        """Open a chunk for the merge: a closed one with PyAV, the open one as it grows."""
        feed = next((f for f in self._feeds.values() if path in f.known), None)
        if feed is None or path in feed.closed or self._ended:
            return merge.open_chunk(path, header_only=True)
        tail = chunk_tail.open_tail(
            path, lambda: path in feed.closed or self._ended, self.wait_for_data
        )
        if tail is None:
            return merge.open_chunk(path, header_only=True)
        return tail, None

    def _chunks_now(self, final: bool) -> dict[str, tuple[list[pathlib.Path], pathlib.Path | None]]:
        """Per stream: its closed chunk files in time order and the one being written."""
        out: dict[str, tuple[list[pathlib.Path], pathlib.Path | None]] = {}
        if final:
            # listed once: ordering opens every chunk, and nothing is written any more
            if self._final_chunks is None:
                spool = spool_reader.read_spool_recording(self.recording_dir)
                merger = self._merger or merge.Merger(spool)
                for source in spool.streams:
                    ordered = merger.ordered_chunks(source)
                    out[source.name] = ([path for path, _ in ordered], None)
                self._final_chunks = out
            return self._final_chunks
        try:
            stats = json.loads((self.recording_dir / spool_reader.STATS_JSON).read_bytes())
        except (OSError, ValueError):
            return out
        streams = stats.get("streams") if isinstance(stats, dict) else None
        if not isinstance(streams, dict):
            return out
        for name, entry in streams.items():
            chunks = entry.get("chunks") if isinstance(entry, dict) else None
            if not isinstance(chunks, list):
                continue
            listed = [
                (self.recording_dir / c["file"], bool(c.get("closed")))
                for c in chunks
                if isinstance(c, dict) and isinstance(c.get("file"), str)
            ]
            closed = [path for path, is_closed in listed if is_closed and path.is_file()]
            still_open = [path for path, is_closed in listed if not is_closed]
            writing = still_open[0] if still_open and still_open[0].is_file() else None
            out[str(name)] = (closed, writing)
        return out

    def _refresh(self, final: bool) -> None:
        now = self._chunks_now(final)
        for name, feed in self._feeds.items():
            closed, writing = now.get(name, ([], None))
            for path in closed:
                feed.closed.add(path)
                feed.add(path)
            feed.open = None if final else writing

    # ----------------------------------------------------------------- thread
    def _run(self) -> None:
        try:
            if has_state(self.recording_dir):
                self._resume()
            elif not self._prepare():
                return  # cancelled before every stream had a chunk
            self._pump()
            if self._cancelled:
                return
            self.result = self._finish_file()
        except _Cancelled:
            logger.info("incremental merge of %s cancelled", self.recording_dir.name)
        except BaseException as exc:
            self.error = exc
            logger.error(
                "incremental merge of %s failed (state kept for recovery): %s: %s",
                self.recording_dir.name,
                type(exc).__name__,
                exc,
            )
        finally:
            if self._merger is not None:
                self._merger.close_templates()
            self._done.set()

    def _prepare(self) -> bool:
        """Wait until every stream has a chunk with a packet, then write the growing header."""
        while True:
            with self._cond:
                if self._cancelled:
                    return False
                ended = self._ended
            spool = spool_reader.read_spool_recording(self.recording_dir)
            now = self._chunks_now(ended)
            available = {
                name: closed + ([writing] if writing is not None else [])
                for name, (closed, writing) in now.items()
            }
            if ended or (spool.streams and all(available.get(s.name) for s in spool.streams)):
                break
            with self._cond:
                if not (self._ended or self._cancelled):
                    self._cond.wait(self._poll_s)
        sources = [
            dataclasses.replace(s, chunks=list(available.get(s.name, []))) for s in spool.streams
        ]
        merger = merge.Merger(dataclasses.replace(spool, streams=sources))
        merger.prepare()
        self._merger = merger
        if any(stream.part > 1 for stream in merger.streams):
            raise LiveMergeError("codec parameters change between chunks: needs a full merge")
        self.output_dir.mkdir(parents=True, exist_ok=True)
        target = merge.output_target(spool, self.output_dir)
        self._target = target
        self._partial = partial_path_for(target)
        for stream in merger.streams:
            feed = _Feed(self)
            for path in stream.chunks:
                feed.add(path)
            stream.chunks = feed
            stream.template_in_chunks = False
            stream.tracker = self._tracker
            stream.opener = self.open_for_merge
            self._feeds[stream.source.name] = feed
        self._refresh(final=ended)
        header = self._header_bytes(reserve=True)
        growing = mkv_splice.growing_header(mkv_splice.split(header))
        self._layout = mkv_splice.header_layout(growing)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        try:
            with self._partial.open("wb") as f:
                f.write(growing)
                f.flush()
                os.fsync(f.fileno())
            atomic_files.fsync_path(self._partial.parent)
        except OSError as exc:
            raise atomic_files.naming(exc, self._partial) from exc
        self._size = self._header_size = len(growing)
        self._save_state()
        logger.info("incremental merge of %s into %s", spool.recording_id, self._partial)
        return True

    def _header_bytes(self, reserve: bool) -> bytes:
        """A complete zero-packet file with this recording's tracks and tags (libavformat)."""
        merger = self._merger
        assert merger is not None
        buf = io.BytesIO()
        out = av.open(buf, "w", format="matroska", container_options=merge.MUXER_OPTIONS)
        try:
            tags = merge.container_tags(merger.spool, self._recovered)
            if reserve:  # room for the final tags (capture gaps, stop reason) written at the end
                tags[mkv_tags.RESERVED_TAG] = " " * 16384
            out.metadata.update(tags)
            merger.add_output_streams(out)
            out.start_encoding()
        finally:
            out.close()
        return buf.getvalue()

    # ----------------------------------------------------------------- pump
    def _pump(self) -> None:
        merger = self._merger
        assert merger is not None
        sources = [
            merge.decode_timestamps(merger.packets(s)) if s.kind == "video" else merger.packets(s)
            for s in merger.streams
        ]
        for _, index, packet in heapq.merge(*sources):
            if self._batch is None:
                self._batch = _Batch(merger)
            self._batch.mux(index, packet)
            self._tracker.emitted(index, self._size)
            if self._batch.nbytes >= self._batch_bytes:
                self._flush()
        self._flush()

    def _flush(self) -> None:
        """Append the batch muxed so far, fsync, verify it, then delete what it completed."""
        batch, self._batch = self._batch, None
        self._last_flush = time.monotonic()
        if batch is None or not batch.count:
            return
        assert self._partial is not None and self._layout is not None
        pieces = mkv_splice.split(batch.close())
        offset = self._size
        try:
            with self._partial.open("r+b") as f:
                f.truncate(offset)  # nothing after the last verified batch (a failed append)
                f.seek(offset)
                for cluster in pieces.clusters:
                    f.write(cluster)
                f.flush()
                os.fsync(f.fileno())
                f.seek(offset)
                written = f.read()
        except OSError as exc:
            raise atomic_files.naming(exc, self._partial) from exc
        counts = self._read_back(written)
        if counts != batch.counts:
            raise LiveMergeError(
                f"{self._partial}: read back {dict(counts)} packets per track, "
                f"muxed {dict(batch.counts)}"
            )
        base = offset - self._layout.segment_data
        self._cues_size = self._append_side(
            CUES_FILE, b"".join(point.encode(base) for point in pieces.cues), self._cues_size
        )
        self._size = offset + len(written)
        self.appended_batches += 1
        complete = self._tracker.made_durable()
        retire = [(record, self._verified(record)) for record in complete]
        lines = b"".join(self._entry_line(record, verified) for record, verified in retire)
        self._entries_size = self._append_side(ENTRIES_FILE, lines, self._entries_size)
        done = {id(record.entry) for record, _ in retire}
        for record, _ in retire:
            self._floor_after[record.stream.index] = record.floor_after
        for stream in self._merger.streams if self._merger is not None else []:
            # the entry is in the entries file now: memory stays flat over long recordings
            stream.chunk_entries = [e for e in stream.chunk_entries if id(e) not in done]
        self._save_state()
        for record, verified in retire:
            if verified:
                self._delete_path(record.path, record.entry.file)

    def _append_side(self, name: str, data: bytes, size: int) -> int:
        """Append to a side file after its ``size`` durable bytes; return its new size.

        Durable before the state that counts it; bytes past ``size`` (a failed append) are cut.
        """
        if not data:
            return size
        path = self.recording_dir / name
        try:
            with path.open("ab") as f:
                f.truncate(size)
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            raise atomic_files.naming(exc, path) from exc
        return size + len(data)

    def _read_side(self, name: str, size: int) -> bytes:
        path = self.recording_dir / name
        try:
            with path.open("rb") as f:
                data = f.read(size)
        except FileNotFoundError:
            data = b""
        except OSError as exc:
            raise atomic_files.naming(exc, path) from exc
        if len(data) != size:
            raise LiveMergeError(f"{path} holds {len(data)} of its {size} durable bytes")
        return data

    def _saved_entries(self) -> dict[int, list[dict[str, Any]]]:
        """The entries file, per track index, in order."""
        out: dict[int, list[dict[str, Any]]] = collections.defaultdict(list)
        for line in self._read_side(ENTRIES_FILE, self._entries_size).splitlines():
            doc = json.loads(line)
            out[int(doc.pop("track"))].append(doc)
        return out

    def _read_back(self, written: bytes) -> collections.Counter[int]:
        counts: collections.Counter[int] = collections.Counter()
        for element_id, start, _, end in mkv_splice.ebml.iter_children(written, 0, len(written)):
            if element_id != mkv_splice.CLUSTER:
                raise LiveMergeError("the appended bytes are not clusters")
            for block in mkv_splice.blocks(written[start:end]):
                counts[block.track - 1] += 1
                self._keys[spool_cleanup.block_key(block.pts, block.payload)] += 1
        return counts

    def _verified(self, record: _ChunkRecord) -> bool:
        """Whether every packet of the chunk was read back from the durable file."""
        keys, error = spool_cleanup.read_packet_keys(record.path)
        if error is not None:
            return False
        needed = collections.Counter(keys)
        if any(self._keys[key] < count for key, count in needed.items()):
            return False
        self._keys.subtract(needed)
        self._keys += collections.Counter()  # drop the zero counts
        return True

    @staticmethod
    def _entry_line(record: _ChunkRecord, verified: bool) -> bytes:
        doc = {"track": record.stream.index, **dataclasses.asdict(record.entry)}
        doc["bytes"] = record.nbytes
        doc["last_duration"] = record.last_duration
        doc["verified"] = verified
        return json.dumps(doc).encode() + b"\n"

    def _save_state(self) -> None:
        merger = self._merger
        assert merger is not None and self._target is not None and self._partial is not None
        resume: dict[str, Any] = {}
        scan_from = self._size
        for stream in merger.streams:
            queue = self._tracker.pending.get(stream.index) or collections.deque()
            head = queue[0] if queue else None
            if head is not None:
                resume[str(stream.index)] = {
                    "chunk": head.entry.file,
                    "floor": head.floor,
                    "skip": head.durable,
                }
                if head.durable and head.first_offset is not None:
                    scan_from = min(scan_from, head.first_offset)
            else:
                floor = self._floor_after.get(stream.index, stream.floor)
                resume[str(stream.index)] = {"chunk": None, "floor": floor, "skip": 0}
        doc = {
            "version": _STATE_VERSION,
            "recording_id": merger.spool.recording_id,
            "target": self._target.name,
            "partial": self._partial.name,
            "size": self._size,
            "header_size": self._header_size,
            "scan_from": scan_from,
            "tracks": [
                {
                    "stream": s.source.name,
                    "part": s.part,
                    "kind": s.kind,
                    "signature": [v.hex() if isinstance(v, bytes) else v for v in s.signature],
                }
                for s in merger.streams
            ],
            "resume": resume,
            "entries_size": self._entries_size,
            "skipped": [dataclasses.asdict(s) for s in merger.skipped],
            "cues_size": self._cues_size,
        }
        path = self.recording_dir / STATE_FILE
        tmp = atomic_files.write_temp(path, json.dumps(doc).encode())
        atomic_files.replace_durably(tmp, path)

    def _resume(self) -> None:
        """Continue the growing file described by the state file (after a crash)."""
        state_path = self.recording_dir / STATE_FILE
        try:
            state = json.loads(state_path.read_bytes())
            partial = self.output_dir / str(state["partial"])
            target = self.output_dir / str(state["target"])
            size = int(state["size"])
            header_size = int(state["header_size"])
            tracks = list(state["tracks"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise LiveMergeError(f"{state_path} cannot be read: {exc}") from exc
        if not partial.is_file():
            raise GrowingFileMissing(f"the growing file {partial} of {state_path} is missing")
        if partial.stat().st_size < size:
            raise LiveMergeError(f"{partial} is shorter than the {size} bytes made durable")
        if size <= header_size:  # nothing appended yet, so nothing deleted: start again
            partial.unlink()
            state_path.unlink()
            if not self._prepare():
                raise _Cancelled
            return
        logger.info("continuing the incremental merge of %s in %s", self.recording_dir, partial)
        with partial.open("rb") as f:
            header = f.read(header_size)
            f.seek(int(state.get("scan_from", size)))
            tail = f.read(size - int(state.get("scan_from", size)))
        self._target, self._partial = target, partial
        self._layout = mkv_splice.header_layout(header)
        # a batch appended after the last state is not verified; an interrupted finish wrote
        # Cues and a Segment size: back to the growing file the state describes
        mkv_splice.reopen_file(partial, self._layout, size)
        for name, key in ((CUES_FILE, "cues_size"), (ENTRIES_FILE, "entries_size")):
            side = self.recording_dir / name
            if side.exists():
                with side.open("r+b") as f:
                    f.truncate(int(state.get(key, 0)))
        self._size, self._header_size = size, header_size
        container = av.open(str(partial), "r", format="matroska")
        spool = spool_reader.read_spool_recording(self.recording_dir)
        merger = merge.Merger(dataclasses.replace(spool, streams=[]))
        self._merger = merger
        first = True
        by_name = {s.name: s for s in spool.streams}
        for index, track in enumerate(tracks):
            name = str(track["stream"])
            source = by_name.get(name) or spool_reader.StreamSource(name, track.get("kind"), {}, [])
            feed = _Feed(self)
            template = _TrackTemplate(container, index)
            merger.add_stream(source, template, [], int(track.get("part", 1)))
            stream = merger.streams[-1]
            stream.index = index
            # the chunks' codec parameters (the file's track may differ in extradata details)
            stream.signature = _signature_from_json(track.get("signature"), stream.signature)
            stream.chunks = feed
            stream.template_in_chunks = False
            stream.tracker = self._tracker
            stream.opener = self.open_for_merge
            self._feeds[name] = feed
            if first:  # the container is closed once, with the first track's template
                stream.template = _OwningTemplate(container, index)
                first = False
        self._restore(state, spool)
        self._read_back(tail)

    def _restore(self, state: dict[str, Any], spool: spool_reader.SpoolRecording) -> None:
        """Rebuild entries, cues, skipped chunks and each stream's resume point."""
        merger = self._merger
        assert merger is not None
        self._cues_size = int(state.get("cues_size", 0))
        merger.skipped = [manifest.SkippedChunk(**doc) for doc in state.get("skipped", [])]
        self._entries_size = int(state.get("entries_size", 0))
        saved = self._saved_entries()
        resume = dict(state.get("resume", {}))
        for stream in merger.streams:
            feed = self._feeds[stream.source.name]
            for doc in saved.get(stream.index, []):
                path = self.recording_dir / doc["file"]
                feed.known.add(path)
                if doc.get("verified") and path.exists():  # its delete was cut short
                    self._delete_path(path, doc["file"])
            point = resume.get(str(stream.index)) or {}
            stream.floor = int(point.get("floor", -1))
            stream.skip = int(point.get("skip", 0))
            chunk = point.get("chunk")
            if chunk is not None:
                path = self.recording_dir / chunk
                if not path.is_file():
                    raise LiveMergeError(f"{path}, where {stream.source.name} resumes, is gone")
                feed.add(path)  # first: the chunk in progress
        self._refresh(final=True)
        del spool

    # ----------------------------------------------------------------- end
    def _finish_file(self) -> merge.MergeResult:
        """Write cues, tags, duration and the manifest; publish the file; clean the spool."""
        merger = self._merger
        assert merger is not None and self._partial is not None and self._target is not None
        assert self._layout is not None
        spool = spool_reader.read_spool_recording(self.recording_dir)
        merger.spool = spool
        ends = self._set_totals()
        header = self._header_bytes(reserve=False)
        final_tags = mkv_tags.parse_tags_element(mkv_splice.split(header).header)
        merge.fill_pending_tags(final_tags, merger.streams)
        for tag in final_tags:
            for simple in tag.simple_tags:
                if simple.name == "DURATION" and tag.track_uid in ends:
                    simple.value = _duration_tag(ends[tag.track_uid])

        def replace(tags: list[mkv_tags.Tag]) -> None:
            tags[:] = final_tags

        partial, target = self._partial, self._target
        try:
            mkv_tags.rewrite_tags(partial, replace)
            duration = max(ends.values()) if ends else None
            size = mkv_splice.finish_file(
                partial,
                self._layout,
                mkv_splice.cues_element(self._read_side(CUES_FILE, self._cues_size)),
                duration,
            )
        except OSError as exc:
            raise atomic_files.naming(exc, partial) from exc
        merge.verify_output(partial, merger.streams, count_packets=False)
        doc = merge.build_manifest(
            spool, merger, target, size, self._recovered, time.monotonic() - self._started
        )
        doc.notes.append(f"merged incrementally while recording ({self.appended_batches} appends)")
        manifest_file = merge.publish(partial, target, doc)
        self.published_at = time.monotonic()
        logger.info(
            "merged %s into %s while recording (%d appends, %d chunks deleted as they closed)",
            self.recording_dir,
            target,
            self.appended_batches,
            len(self.deleted_chunks),
        )
        outcome = spool_cleanup.clean_up(
            self.recording_dir, target, manifest_file, output_keys=self._keys
        )
        if outcome.quarantined:
            doc = manifest.read_manifest(manifest_file)
        return merge.MergeResult(target, manifest_file, doc, outcome.removed_directory)

    def _set_totals(self) -> dict[int, int]:
        """Per-track totals from every chunk entry; return each track's end (ms) by track UID."""
        merger = self._merger
        assert merger is not None
        ends: dict[int, int] = {}
        saved = self._saved_entries()
        for stream in merger.streams:
            docs = saved.get(stream.index, [])
            stream.chunk_entries = [_entry_from_json(doc) for doc in docs]
            stream.frames = sum(int(doc["packets"]) for doc in docs)
            stream.discarded = sum(int(doc.get("packets_discarded", 0)) for doc in docs)
            stream.bytes = sum(int(doc.get("bytes", 0)) for doc in docs)
            firsts = [doc["first_pts_ms"] for doc in docs if doc.get("first_pts_ms") is not None]
            stream.first_pts = min(firsts) if firsts else None
            with_last = [doc for doc in docs if doc.get("last_pts_ms") is not None]
            if with_last:
                last = max(with_last, key=lambda doc: int(doc["last_pts_ms"]))
                stream.last_pts = int(last["last_pts_ms"])
                stream.last_duration = int(last.get("last_duration", 0))
                ends[stream.index + 1] = stream.last_pts + stream.last_duration
            else:
                stream.last_pts = None
        return ends

    def _delete_path(self, path: pathlib.Path, rel: str) -> None:
        try:
            path.unlink()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise atomic_files.naming(exc, path) from exc
        self.deleted_chunks.append(rel)
        atomic_files.fsync_path(path.parent)


class _Batch:
    """A batch of packets muxed by libavformat into memory as a complete file."""

    def __init__(self, merger: merge.Merger) -> None:
        self._merger = merger
        self._buf = io.BytesIO()
        self._out = av.open(
            self._buf, "w", format="matroska", container_options=merge.MUXER_OPTIONS
        )
        merger.add_output_streams(self._out)
        self._streams = [s.out_stream for s in merger.streams]
        self.counts: collections.Counter[int] = collections.Counter()
        self.count = 0
        self.nbytes = 0

    def mux(self, index: int, packet: Any) -> None:
        packet.stream = self._streams[index]
        self.nbytes += packet.size
        self._out.mux_one(packet)
        self.counts[index] += 1
        self.count += 1

    def close(self) -> bytes:
        self._out.close()
        return self._buf.getvalue()


class _TrackTemplate:
    """One track of the growing file, seen as a one-stream template container (resume)."""

    def __init__(self, container: Any, index: int) -> None:
        self._container = container
        self._index = index

    @property
    def streams(self) -> list[Any]:
        return [self._container.streams[self._index]]

    def close(self) -> None:
        """The shared container is closed by its owner."""


class _OwningTemplate(_TrackTemplate):
    """:class:`_TrackTemplate` that closes the shared container (used once per resume)."""

    def close(self) -> None:
        """Close the growing file's container shared by every track template."""
        self._container.close()


def _signature_from_json(value: Any, fallback: tuple[Any, ...]) -> tuple[Any, ...]:
    """Inverse of the state's signature form (bytes were saved as hex: the extradata)."""
    if not isinstance(value, list) or len(value) != len(fallback):
        return fallback
    out = []
    for item, reference in zip(value, fallback, strict=True):
        if isinstance(reference, bytes) and isinstance(item, str):
            out.append(bytes.fromhex(item))
        else:
            out.append(item)
    return tuple(out)


def _entry_from_json(doc: dict[str, Any]) -> manifest.ChunkEntry:
    fields = {f.name for f in dataclasses.fields(manifest.ChunkEntry)}
    return manifest.ChunkEntry(**{k: v for k, v in doc.items() if k in fields})


def _duration_tag(end_ms: int) -> str:
    """A track duration as libavformat writes it (``HH:MM:SS.nnnnnnnnn`` and a NUL)."""
    hours, rest = divmod(end_ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest / 1000:012.9f}\x00"


def set_aside_state(recording_dir: pathlib.Path) -> None:
    """Rename the state file of a growing file that is gone, so the spool can be merged alone.

    The chunks that state says were deleted were only in the lost growing file; they are
    named in the log. The renamed file stays in the spool (the clean-up quarantines it).
    """
    path = recording_dir / STATE_FILE
    try:
        state = json.loads(path.read_bytes())
        entries = state.get("entries", {})
        lost = [doc.get("file") for docs in entries.values() for doc in docs if doc.get("verified")]
    except (OSError, ValueError, AttributeError, TypeError):
        lost = []
    logger.error(
        "recording %s: the growing merged file is gone; merging the chunks still in the spool "
        "(lost with it: %s)",
        recording_dir.name,
        ", ".join(str(f) for f in lost) or "nothing",
    )
    os.replace(path, recording_dir / ORPHANED_STATE_FILE)
    atomic_files.fsync_path(recording_dir)
