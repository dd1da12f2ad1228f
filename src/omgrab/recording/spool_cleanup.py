"""The one place a spool recording's files are deleted: only what the merged file verifiably holds.

Rule: a spool file is deleted only when every packet it holds is in the durable (fsynced),
verified merged MKV. Verification reads each chunk file of the spool again, independently of
the merge, and looks every packet up in the merged file by (pts, size, BLAKE2 digest of its
bytes); it never trusts what the merge believes it copied. Everything else is kept:

* a chunk the merge skipped (foreign, corrupt, zero-length, wrong kind), a chunk with a packet
  missing from the output (cut by a read error, discarded before a keyframe, out of order) or a
  chunk that cannot be read to its end, and any file the spool format does not know, is moved
  to the quarantine folder beside the merged file, ``<output_dir>/<mkv stem>.quarantine/``,
  under its path in the spool, and listed in the manifest's ``quarantined`` with the reason;
* a writer's unfinished ``<chunk>.mkv.part`` file (renamed at its first packet, so normally a
  bare Matroska header that libavformat reads as ending before any packet) is deleted when it
  holds no packet or only packets the output holds, kept otherwise;
* the spool's own metadata (``recording.json``, ``stats.json``, ``COMPLETE``, the writer lock)
  is deleted last; the manifest already carries what it said.

Data path and order (crash safety): plan (read spool and output) -> manifest rewritten durably
with the quarantine list -> quarantined files moved (rename, or copy + fsync + unlink across
file systems) -> verified chunks unlinked -> metadata unlinked -> empty directories removed ->
parent directory fsynced. A crash at any step leaves a spool that start-up recovery sees as
"merged" and cleans up again by this same function (half-deleted spools are finished on the
next start).

Bounds: verification holds one 16-byte digest per packet of the output (a few hundred kB per
hour of recording). Lifecycle: called with the recording's writer lock held exclusively
(:mod:`omgrab.recording.spool_lock`). Error policy: an error stops the clean-up and propagates;
whatever was not yet deleted stays in place for the next pass.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import logging
import os
import pathlib
import shutil
from collections.abc import Collection
from typing import Any

import av

from omgrab.recording import atomic_files, manifest, spool_lock, spool_reader

logger = logging.getLogger(__name__)

QUARANTINE_SUFFIX = ".quarantine"
_METADATA = frozenset(
    {
        spool_reader.RECORDING_JSON,
        spool_reader.STATS_JSON,
        spool_reader.COMPLETE_MARKER,
        spool_lock.LOCK_FILE,
        "live_merge.json",  # live_merge.STATE_FILE: the incremental merge's state
        "live_merge.cues",  # live_merge.CUES_FILE: its cue points so far
        "live_merge.entries",  # live_merge.ENTRIES_FILE: the chunks it has appended
    }
)
_READ_ERRORS = (av.error.FFmpegError, OSError, EOFError, ValueError)

PacketKey = tuple[int | None, int, bytes]
_PART_SUFFIX = ".mkv.part"
_MAX_HEADER_BYTES = 64 * 1024


class SpoolCleanupError(RuntimeError):
    """The merged file cannot be read to verify the spool against it (nothing was deleted)."""


@dataclasses.dataclass
class CleanupResult:
    """What :func:`clean_up` did.

    Attributes:
        deleted: Spool files deleted (relative paths), every packet verified in the output.
        quarantined: Files moved to the quarantine folder, with the reason.
        removed_directory: Whether the spool directory itself is gone.
    """

    deleted: list[str]
    quarantined: list[manifest.QuarantinedFile]
    removed_directory: bool


def quarantine_dir_for(mkv_path: pathlib.Path) -> pathlib.Path:
    """Return the quarantine folder that belongs beside the merged file ``mkv_path``."""
    return mkv_path.with_name(mkv_path.stem + QUARANTINE_SUFFIX)


def _key(packet: Any) -> PacketKey:
    pts = packet.pts if packet.pts is not None else packet.dts
    return (pts, packet.size, hashlib.blake2b(bytes(packet), digest_size=16).digest())


def block_key(pts: int, payload: bytes | memoryview) -> PacketKey:
    """The key of a frame read from a Matroska block (same as a demuxed packet's)."""
    return (pts, len(payload), hashlib.blake2b(payload, digest_size=16).digest())


def read_packet_keys(path: pathlib.Path) -> tuple[list[PacketKey], str | None]:
    """Return the keys of every non-empty packet in ``path`` and the error that ended reading.

    The error is ``None`` when the file was read to a clean end of file.
    """
    keys: list[PacketKey] = []
    try:
        container = av.open(str(path), "r", format="matroska")
    except _READ_ERRORS as exc:
        return keys, f"cannot be opened: {exc}"
    try:
        demux = container.demux()
        while True:
            try:
                packet = next(demux)
            except StopIteration:
                return keys, None
            except _READ_ERRORS as exc:
                return keys, f"read error after {len(keys)} packets: {exc}"
            if packet.size:
                keys.append(_key(packet))
    finally:
        container.close()


def header_only(path: pathlib.Path) -> bool:
    """Whether ``path`` is a Matroska header without any cluster (a writer's fresh ``.part``).

    libavformat reports the end of file before the first packet; the file is no larger than a
    header can be. Such a file holds no packet.
    """
    if path.stat().st_size > _MAX_HEADER_BYTES:
        return False
    try:
        av.open(str(path), "r", format="matroska").close()
    except av.error.EOFError:
        return True
    except _READ_ERRORS:
        return False
    return False


def _output_keys(mkv: pathlib.Path) -> set[PacketKey]:
    keys, error = read_packet_keys(mkv)
    if error is not None:
        raise SpoolCleanupError(f"merged file {mkv} {error}; the spool is kept")
    return set(keys)


def plan(
    spool_dir: pathlib.Path,
    mkv: pathlib.Path,
    doc: manifest.Manifest,
    output_keys: Collection[PacketKey] | None = None,
) -> tuple[list[pathlib.Path], list[tuple[pathlib.Path, str]], list[pathlib.Path]]:
    """Sort the spool's files into (verified chunks, files to quarantine with reason, metadata).

    ``output_keys``: the keys of the merged file's packets when the caller already read them
    back from the durable file (the incremental merge); otherwise the file is read here.

    Raises:
        SpoolCleanupError: the merged file cannot be read to its end.
    """
    output = _output_keys(mkv) if output_keys is None else output_keys
    used = {c.file for c in doc.chunks}
    skipped = {s.file: s.reason for s in doc.skipped_chunks}
    verified: list[pathlib.Path] = []
    keep: list[tuple[pathlib.Path, str]] = []
    metadata: list[pathlib.Path] = []
    for path in sorted(p for p in spool_dir.rglob("*") if not p.is_dir()):
        rel = path.relative_to(spool_dir).as_posix()
        if rel in _METADATA or _is_metadata_temp(rel):
            metadata.append(path)
            continue
        if rel in skipped:
            keep.append((path, f"skipped by the merge: {skipped[rel]}"))
            continue
        if rel not in used and not rel.endswith(_PART_SUFFIX):
            keep.append((path, "not part of the merge"))
            continue
        # a used chunk, or a writer's unfinished ``.part`` chunk (normally without a packet)
        if rel.endswith(_PART_SUFFIX) and header_only(path):
            verified.append(path)
            continue
        keys, error = read_packet_keys(path)
        missing = sum(1 for key in keys if key not in output)
        if error is not None:
            keep.append((path, f"chunk {error}"))
        elif missing:
            keep.append((path, f"{missing} of {len(keys)} packets are not in the merged file"))
        else:
            verified.append(path)
    return verified, keep, metadata


def _is_metadata_temp(rel: str) -> bool:
    """A half-written metadata file (never data).

    The writer's ``.recording.json.tmp`` / ``.stats.json.tmp``, and a per-process temporary
    of ``atomic_files`` such as the incremental merge's ``.live_merge.json.<pid>.tmp`` left by
    a kill.
    """
    if "/" in rel:
        return False
    if rel in {f".{n}.tmp" for n in _METADATA}:
        return True
    return any(atomic_files.is_temp_file_of(pathlib.Path(rel), pathlib.Path(n)) for n in _METADATA)


def _move(source: pathlib.Path, target: pathlib.Path) -> None:
    """Move ``source`` to ``target`` durably; ``target``'s directory is fsynced."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(source, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise atomic_files.naming(exc, target) from exc
        tmp = atomic_files.temp_path_for(target)
        try:
            shutil.copyfile(source, tmp)
            atomic_files.replace_durably(tmp, target)
        except OSError as copy_exc:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise atomic_files.naming(copy_exc, target) from copy_exc
        source.unlink()
    atomic_files.fsync_path(target.parent)


def _free_target(directory: pathlib.Path, rel: str, source: pathlib.Path) -> pathlib.Path:
    """Quarantine name for ``rel``: never overwrite a different file already there."""
    target = directory / rel
    counter = 1
    while target.exists():
        if target.stat().st_size == source.stat().st_size and _same_bytes(target, source):
            return target
        counter += 1
        target = directory / f"{rel}.{counter}"
    return target


def _same_bytes(a: pathlib.Path, b: pathlib.Path) -> bool:
    with a.open("rb") as fa, b.open("rb") as fb:
        while True:
            block_a, block_b = fa.read(1 << 20), fb.read(1 << 20)
            if block_a != block_b:
                return False
            if not block_a:
                return True


def clean_up(
    spool_dir: str | os.PathLike[str],
    mkv: pathlib.Path,
    manifest_file: pathlib.Path,
    output_keys: Collection[PacketKey] | None = None,
) -> CleanupResult:
    """Delete the spool files the merged file holds; quarantine the rest; see the module doc.

    Args:
        spool_dir: ``<spool>/<recording_id>`` (its writer lock held exclusively by the caller).
        mkv: The durable merged file.
        manifest_file: Its manifest; rewritten with the quarantine list before anything moves.
        output_keys: The merged file's packet keys, read back from it by the caller
            (otherwise read here).

    Returns:
        What was deleted and quarantined.

    Raises:
        SpoolCleanupError: the merged file cannot be read; nothing was deleted.
        manifest.ManifestError: the manifest cannot be read; nothing was deleted.
        OSError: moving or deleting failed (names the file); the rest stays for a later pass.
    """
    directory = pathlib.Path(spool_dir)
    doc = manifest.read_manifest(manifest_file)
    verified, keep, metadata = plan(directory, mkv, doc, output_keys)
    quarantine = quarantine_dir_for(mkv)
    moves = []
    entries = {q.file: q for q in doc.quarantined}
    for path, reason in keep:
        rel = path.relative_to(directory).as_posix()
        target = _free_target(quarantine, rel, path)
        moves.append((path, target))
        entries[rel] = manifest.QuarantinedFile(
            rel, target.relative_to(manifest_file.parent).as_posix(), reason
        )
        logger.warning("recording %s: keeping %s in %s: %s", doc.recording_id, rel, target, reason)
    if moves:
        doc.quarantined = list(entries.values())
        manifest.write_manifest(doc, manifest_file)
    for source, target in moves:
        if target.exists():  # an earlier pass copied it, then died before unlinking
            source.unlink()
        else:
            _move(source, target)
    deleted = []
    for path in [*verified, *metadata]:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        deleted.append(path.relative_to(directory).as_posix())
    for sub in sorted((p for p in directory.rglob("*") if p.is_dir()), reverse=True):
        with contextlib.suppress(OSError):
            sub.rmdir()
    removed = False
    try:
        directory.rmdir()
        removed = True
    except OSError as exc:
        logger.warning("spool directory %s not removed: %s", directory, exc)
    atomic_files.fsync_path(directory.parent)
    return CleanupResult(
        deleted, [entries[p.relative_to(directory).as_posix()] for p, _ in keep], removed
    )
