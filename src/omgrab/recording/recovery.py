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

Spool clean-up: with ``cleanup=True`` a recording's spool directory is deleted only after its
MKV and manifest are fsynced and the MKV was re-read and every track's packet count verified;
on any failure the spool is kept. The default keeps the spool, like
:func:`omgrab.recording.merge.merge_recording_chunks`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pathlib
from collections.abc import Callable, Collection

from omgrab.recording import manifest, merge, spool_reader

logger = logging.getLogger(__name__)

ErrorCallback = Callable[[pathlib.Path, BaseException], None]


@dataclasses.dataclass
class RecoveryReport:
    """Outcome of one recovery pass.

    Attributes:
        merged: Merged MKVs written by this pass.
        already_merged: Spool recordings whose merge was already finished.
        empty: Spool recordings without any chunk file (the writer died before its first
            packet): nothing to salvage; left in place and logged as a warning.
        failed: Spool recordings that could not be merged, with the error.
    """

    merged: list[pathlib.Path] = dataclasses.field(default_factory=list)
    already_merged: list[pathlib.Path] = dataclasses.field(default_factory=list)
    empty: list[pathlib.Path] = dataclasses.field(default_factory=list)
    failed: dict[pathlib.Path, BaseException] = dataclasses.field(default_factory=dict)


def _chunk_sizes(spool: spool_reader.SpoolRecording) -> dict[str, int]:
    sizes = {}
    for stream in spool.streams:
        for path in stream.chunks:
            rel = path.relative_to(spool.directory).as_posix()
            sizes[rel] = path.stat().st_size
    return sizes


def is_merge_finished(spool: spool_reader.SpoolRecording, output_dir: pathlib.Path) -> bool:
    """Return whether ``spool`` already has a finished merge in ``output_dir``.

    Finished means the MKV and a valid manifest for the same recording exist, and either the
    writer completed the recording or the manifest accounts for exactly the chunk files (and
    sizes) now in the spool.
    """
    mkv = output_dir / f"{spool.recording_id}.mkv"
    manifest_file = manifest.manifest_path_for(mkv)
    if not (mkv.is_file() and manifest_file.is_file()):
        return False
    try:
        existing = manifest.read_manifest(manifest_file)
    except manifest.ManifestError as exc:
        logger.warning("manifest %s is unusable (%s); merging again", manifest_file, exc)
        return False
    if existing.recording_id != spool.recording_id:
        return False
    if existing.output_size_bytes != mkv.stat().st_size:
        return False
    if spool.complete and existing.complete:
        return True
    recorded = {c.file: c.size_bytes for c in existing.chunks}
    current = _chunk_sizes(spool)
    skipped = {s.file for s in existing.skipped_chunks}
    return all(recorded.get(f) == size or f in skipped for f, size in current.items())


def find_orphaned_recordings(
    spool_dir: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    *,
    exclude: Collection[str] = (),
) -> list[pathlib.Path]:
    """Return the spool recording directories that need a (recovery) merge, oldest name first.

    Args:
        spool_dir: The spool root holding ``<recording_id>/`` directories.
        output_dir: Where merged MKVs and manifests go.
        exclude: Recording directory names to leave alone (e.g. one being recorded now).
    """
    spool_root = pathlib.Path(spool_dir)
    out = pathlib.Path(output_dir)
    if not spool_root.is_dir():
        return []
    orphans = []
    for directory in sorted(spool_root.iterdir()):
        if directory.name.startswith(".") or directory.name in exclude:
            continue
        if not spool_reader.looks_like_recording(directory):
            continue
        spool = spool_reader.read_spool_recording(directory)
        if not is_merge_finished(spool, out):
            orphans.append(directory)
    return orphans


def recover_orphans(
    spool_dir: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    *,
    cleanup: bool = False,
    exclude: Collection[str] = (),
    on_error: ErrorCallback | None = None,
) -> RecoveryReport:
    """Merge every orphaned spool recording; one failure never stops the others.

    Args:
        spool_dir: The spool root holding ``<recording_id>/`` directories.
        output_dir: Where merged MKVs and manifests go (created if missing).
        cleanup: Delete each spool directory after its verified, durable merge.
        exclude: Recording directory names to leave alone.
        on_error: Called with (recording directory, exception) for each failed merge, after
            the error is logged.

    Returns:
        What was merged, what was already finished and what failed.
    """
    spool_root = pathlib.Path(spool_dir)
    out = pathlib.Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = RecoveryReport()
    if not spool_root.is_dir():
        return report
    orphans = set(find_orphaned_recordings(spool_root, out, exclude=exclude))
    for directory in sorted(spool_root.iterdir()):
        if directory.name.startswith(".") or directory.name in exclude:
            continue
        if not spool_reader.looks_like_recording(directory):
            continue
        if directory not in orphans:
            report.already_merged.append(directory)
            continue
        try:
            result = merge.merge_recording(
                directory, out, recovered=True, cleanup=cleanup, verify_packets=True
            )
        except merge.EmptyRecordingError as exc:
            logger.warning("recovery of %s: nothing to salvage (%s)", directory, exc)
            report.empty.append(directory)
            continue
        except Exception as exc:
            logger.exception("recovery of %s failed; its spool directory is kept", directory)
            report.failed[directory] = exc
            if on_error is not None:
                on_error(directory, exc)
            continue
        logger.info(
            "recovered %s into %s (%d chunks, %d skipped)",
            directory,
            result.output_path,
            len(result.manifest.chunks),
            len(result.manifest.skipped_chunks),
        )
        report.merged.append(result.output_path)
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
