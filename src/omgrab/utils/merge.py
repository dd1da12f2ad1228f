"""Published 0.1.2 import path ``omgrab.utils.merge``: boot-time merge of orphaned chunks.

``merge_orphaned_chunks(spool_dir, output_dir)`` handles both layouts found in a spool:

* this package's per-stream recordings are recovered by
  :func:`omgrab.recording.recovery.merge_orphaned_chunks` (salvage rules, manifest, spool
  deleted only after a verified merge);
* 0.1.2's flat recordings (``NNNNN.mkv`` chunks in the recording directory) are merged as 0.1.2
  did, with :func:`omgrab.recording.py_av_writer.merge_recording_chunks`, and get a 0.1.2
  manifest with ``recovered: true``.

Differences from 0.1.2, for data safety (``docs/compat.md``): incomplete ``*.mkv.tmp`` chunks are
moved to ``<output_dir>/incomplete/<recording_id>/`` instead of deleted, and chunks whose merged
output already exists are left in place instead of deleted. A failed merge is logged and the
next recording is tried; its chunks stay.
"""

from __future__ import annotations

import logging
import os
import pathlib

from omgrab.recording import manifest_v1, py_av_writer, recovery, spool_files

logger = logging.getLogger(__name__)

#: Sub-directory of the output directory that receives incomplete 0.1.2 chunks.
INCOMPLETE_DIR = "incomplete"


def _is_per_stream(directory: pathlib.Path) -> bool:
    return (directory / spool_files.RECORDING_FILE).exists() or any(directory.glob("*/*.mkv*"))


def _set_aside_incomplete(entry: pathlib.Path, output_dir: pathlib.Path) -> None:
    for tmp_file in sorted(entry.glob("*.mkv.tmp")):
        target_dir = output_dir / INCOMPLETE_DIR / entry.name
        target_dir.mkdir(parents=True, exist_ok=True)
        logger.warning("incomplete chunk %s moved to %s", tmp_file, target_dir)
        os.replace(tmp_file, target_dir / tmp_file.name)


def merge_orphaned_chunks(spool_dir: pathlib.Path, output_dir: pathlib.Path) -> None:
    """Merge every recording left in ``spool_dir`` into ``output_dir`` (run at boot).

    Args:
        spool_dir: Directory of recording directories; nothing happens when it is missing.
        output_dir: Where merged MKVs and manifests go (created if missing).
    """
    spool_dir = pathlib.Path(spool_dir)
    output_dir = pathlib.Path(output_dir)
    if not spool_dir.exists():
        return
    output_dir.mkdir(parents=True, exist_ok=True)
    per_stream_found = False
    for entry in sorted(spool_dir.iterdir()):
        if not entry.is_dir():
            continue
        if _is_per_stream(entry):
            per_stream_found = True
            continue
        _set_aside_incomplete(entry, output_dir)
        if not any(entry.glob("*.mkv")):
            try:
                entry.rmdir()
            except OSError:
                logger.info("%s holds no chunk but other files; left in place", entry)
            continue
        output_path = output_dir / f"{entry.name}.mkv"
        if output_path.exists():
            logger.info("%s is already merged into %s; chunks left in place", entry, output_path)
            continue
        try:
            py_av_writer.merge_recording_chunks(entry, output_path)
            manifest_v1.write_manifest_v1(
                manifest_v1.build_manifest(
                    recording_id=entry.name,
                    started_at=None,
                    stopped_at=None,
                    duration_s=None,
                    devices=[],
                    stream_configs_map={},
                    sensor_stream_configs_map={},
                    output_file=output_path.name,
                    recovered=True,
                ),
                output_dir,
            )
        except Exception:
            logger.exception("failed to merge orphaned recording %s; chunks kept", entry)
    if per_stream_found:
        recovery.merge_orphaned_chunks(spool_dir, output_dir, cleanup=True)
