"""Start-up crash recovery: merge every spool recording that never got a finished merge.

A spool recording directory is an orphan when it has no ``COMPLETE`` marker (the writer died:
SIGKILL, power loss, crash) or when it has one but its merged MKV or manifest is missing (the
merge itself was interrupted). Each orphan is merged like a normal recording, with the merge's
salvage rules doing the work (see :mod:`omgrab.recording.merge`): unterminated chunk files are
read packet by packet up to the first error, a chunk that cannot be read at all is skipped and
listed in the manifest, a missing stats.json leaves dropped counts ``null``, a missing
recording.json makes the merge infer the streams from the chunk files and say so. The result
is a valid MKV plus a manifest with ``recovered: true``.

An unfinished recording that was already salvaged (its manifest lists exactly the chunk files
that are in the spool now, at the same sizes) is not merged again, so running recovery at every
start is cheap and idempotent.

Live writers: each recording is recovered under its writer lock
(:mod:`omgrab.recording.spool_lock`), waiting (bounded) for writer processes that still write
it, e.g. the encoder workers of an application that was just killed. Two recoveries at once
serialise on the same lock; the second finds the merge finished.

Spool clean-up: with ``cleanup=True`` the spool is cleaned up by
:func:`omgrab.recording.spool_cleanup.clean_up` (a file is deleted only when every packet it
holds is verified in the durable merged file; the rest is quarantined). A recording merged
earlier whose spool is still there (a kill during the delete, or a ``cleanup=False`` pass) is
cleaned up by the next ``cleanup=True`` pass. The default keeps the spool, like
:func:`omgrab.recording.merge.merge_recording_chunks`. A recording with no chunk and no packet
(killed before its first packet) is removed by a ``cleanup=True`` pass when it holds nothing but
our own metadata (:mod:`omgrab.recording.empty_spool`); the log and the report's
``removed_empty`` say why. Otherwise it is kept and rescanned at every start.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pathlib
from collections.abc import Callable, Collection

from omgrab.recording import empty_spool, manifest, merge, spool_cleanup, spool_lock, spool_reader

logger = logging.getLogger(__name__)

ErrorCallback = Callable[[pathlib.Path, BaseException], None]


@dataclasses.dataclass
class RecoveryReport:
    """Outcome of one recovery pass.

    Attributes:
        merged: Merged MKVs written by this pass.
        already_merged: Spool recordings whose merge was already finished.
        empty: Spool recordings without any chunk file (the writer died before its first
            packet): nothing to salvage; logged as a warning.
        removed_empty: Those of ``empty`` a ``cleanup=True`` pass removed (they held nothing
            but our own metadata, see :mod:`omgrab.recording.empty_spool`), with why.
        failed: Spool recordings that could not be merged, with the error.
    """

    merged: list[pathlib.Path] = dataclasses.field(default_factory=list)
    already_merged: list[pathlib.Path] = dataclasses.field(default_factory=list)
    empty: list[pathlib.Path] = dataclasses.field(default_factory=list)
    removed_empty: dict[pathlib.Path, str] = dataclasses.field(default_factory=dict)
    failed: dict[pathlib.Path, BaseException] = dataclasses.field(default_factory=dict)


def _chunk_sizes(spool: spool_reader.SpoolRecording) -> dict[str, int]:
    sizes = {}
    for stream in spool.streams:
        for path in stream.chunks:
            rel = path.relative_to(spool.directory).as_posix()
            sizes[rel] = path.stat().st_size
    return sizes


def finished_merge(
    spool: spool_reader.SpoolRecording, output_dir: pathlib.Path
) -> pathlib.Path | None:
    """Return the merged MKV of ``spool`` in ``output_dir`` if that merge is finished.

    Finished means the MKV and a valid manifest for the same recording (and the same spool
    directory) exist, and either the writer completed the recording or the manifest accounts
    for exactly the chunk files (and sizes) now in the spool: a chunk that grew or appeared
    after the merge (an orphaned worker finished it) makes it unfinished.
    """
    mkv = merge.existing_merge(output_dir, spool.recording_id, spool.directory.name)
    if mkv is None:
        return None
    manifest_file = manifest.manifest_path_for(mkv)
    try:
        existing = manifest.read_manifest(manifest_file)
    except manifest.ManifestError as exc:
        logger.warning("manifest %s is unusable (%s); merging again", manifest_file, exc)
        return None
    if existing.output_size_bytes != mkv.stat().st_size:
        return None
    if spool.complete and existing.complete:
        return mkv
    recorded = {c.file: c.size_bytes for c in existing.chunks}
    current = _chunk_sizes(spool)
    skipped = {s.file for s in existing.skipped_chunks}
    if all(recorded.get(f) == size or f in skipped for f, size in current.items()):
        return mkv
    return None


def is_merge_finished(spool: spool_reader.SpoolRecording, output_dir: pathlib.Path) -> bool:
    """Return whether ``spool`` already has a finished merge in ``output_dir``.

    See :func:`finished_merge`.
    """
    return finished_merge(spool, output_dir) is not None


def _recordings(spool_root: pathlib.Path, exclude: Collection[str]) -> list[pathlib.Path]:
    if not spool_root.is_dir():
        return []
    return [
        directory
        for directory in sorted(spool_root.iterdir())
        if not directory.name.startswith(".")
        and directory.name not in exclude
        and spool_reader.looks_like_recording(directory)
    ]


def find_orphaned_recordings(
    spool_dir: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    *,
    exclude: Collection[str] = (),
) -> list[pathlib.Path]:
    """Return the spool recording directories that need a (recovery) merge, oldest name first.

    A directory that cannot even be read (hostile recording.json) is listed too: the merge
    then fails for it alone with a clear error.

    Args:
        spool_dir: The spool root holding ``<recording_id>/`` directories.
        output_dir: Where merged MKVs and manifests go.
        exclude: Recording directory names to leave alone (e.g. one being recorded now).
    """
    out = pathlib.Path(output_dir)
    orphans = []
    for directory in _recordings(pathlib.Path(spool_dir), exclude):
        try:
            spool = spool_reader.read_spool_recording(directory)
            finished = is_merge_finished(spool, out)
        except (OSError, ValueError) as exc:
            logger.warning("spool recording %s cannot be read: %s", directory, exc)
            finished = False
        if not finished:
            orphans.append(directory)
    return orphans


def _recover_one(
    directory: pathlib.Path,
    out: pathlib.Path,
    report: RecoveryReport,
    cleanup: bool,
    lock_timeout_s: float,
) -> None:
    """Recover one spool directory under its writer lock (waiting for live writers)."""
    with spool_lock.exclusive(directory, lock_timeout_s) as present:
        if not present:  # another recovery merged and cleaned it while we waited
            report.already_merged.append(directory)
            return
        spool = spool_reader.read_spool_recording(directory)
        done = finished_merge(spool, out)
        if done is not None:
            report.already_merged.append(directory)
            if cleanup:  # finish a clean-up a crash or a cleanup=False pass left undone
                spool_cleanup.clean_up(directory, done, manifest.manifest_path_for(done))
            return
        result = merge.merge_locked(
            directory, out, recovered=True, cleanup=cleanup, verify_packets=True
        )
    logger.info(
        "recovered %s into %s (%d chunks, %d skipped, %d quarantined)",
        directory,
        result.output_path,
        len(result.manifest.chunks),
        len(result.manifest.skipped_chunks),
        len(result.manifest.quarantined),
    )
    report.merged.append(result.output_path)


def _remove_empty(directory: pathlib.Path, report: RecoveryReport, lock_timeout_s: float) -> None:
    """Remove an empty recording under its writer lock if it holds nothing but our metadata."""
    try:
        with spool_lock.exclusive(directory, lock_timeout_s) as present:
            reason = empty_spool.keep_reason(directory) if present else "it is gone"
            if reason is None:
                files = empty_spool.remove(directory)
    except Exception as exc:
        logger.error("empty recording %s not removed: %s: %s", directory, type(exc).__name__, exc)
        return
    if reason is not None:
        logger.warning("empty recording %s kept: %s", directory, reason)
        return
    why = "no chunk and no packet (stopped before its first packet); only metadata: " + (
        ", ".join(files) or "none"
    )
    logger.warning("recovery removed the empty recording %s: %s", directory, why)
    report.removed_empty[directory] = why


def recover_orphans(
    spool_dir: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    *,
    cleanup: bool = False,
    exclude: Collection[str] = (),
    on_error: ErrorCallback | None = None,
    lock_timeout_s: float = spool_lock.DEFAULT_WAIT_S,
) -> RecoveryReport:
    """Merge every orphaned spool recording; one failure never stops the others.

    Each recording is handled under its writer lock (:mod:`omgrab.recording.spool_lock`):
    recovery first waits, at most ``lock_timeout_s``, for writer processes still writing it
    (the application was killed, its encoder workers drain), and two recoveries never merge
    the same recording at once.

    Args:
        spool_dir: The spool root holding ``<recording_id>/`` directories.
        output_dir: Where merged MKVs and manifests go (created if missing).
        cleanup: Clean up each spool directory after its verified, durable merge (also
            finishes the clean-up of recordings merged earlier).
        exclude: Recording directory names to leave alone.
        on_error: Called with (recording directory, exception) for each failed merge, after
            the error is logged.
        lock_timeout_s: Bound on the wait for one recording's writers.

    Returns:
        What was merged, what was already finished and what failed.
    """
    out = pathlib.Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = RecoveryReport()
    for directory in _recordings(pathlib.Path(spool_dir), exclude):
        try:
            _recover_one(directory, out, report, cleanup, lock_timeout_s)
        except merge.EmptyRecordingError as exc:
            logger.warning("recovery of %s: nothing to salvage (%s)", directory, exc)
            report.empty.append(directory)
            if cleanup:
                _remove_empty(directory, report, lock_timeout_s)
        except Exception as exc:
            logger.error(
                "recovery of %s failed; its spool directory is kept: %s: %s",
                directory,
                type(exc).__name__,
                exc,
            )
            report.failed[directory] = exc
            if on_error is not None:
                on_error(directory, exc)
    return report


def merge_orphaned_chunks(
    spool_dir: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    *,
    cleanup: bool = False,
    exclude: Collection[str] = (),
    on_error: ErrorCallback | None = None,
) -> list[pathlib.Path]:
    """Salvage every spool recording without a finished merge (run at start-up).

    See the module docstring for what counts as an orphan and how partial data is handled.
    Failures are logged, passed to ``on_error`` and leave the spool untouched; use
    :func:`recover_orphans` to get them back as a report.

    Args:
        spool_dir: The spool root holding ``<recording_id>/`` directories.
        output_dir: Where merged MKVs and manifests go (created if missing).
        cleanup: Delete each spool directory after its verified, durable merge.
        exclude: Recording directory names to leave alone (e.g. one being recorded now).
        on_error: Called with (recording directory, exception) for each failed merge.

    Returns:
        The merged MKV files written by this call.
    """
    report = recover_orphans(
        spool_dir, output_dir, cleanup=cleanup, exclude=exclude, on_error=on_error
    )
    return report.merged
