"""What gets uploaded: completed recordings and perception sessions, and their on-disk state.

An upload *unit* is everything one recording (``<id>.mkv`` then ``<id>.json``; the manifest goes
last, so a manifest in the bucket means its recording is complete there) or one perception
session folder (every file in it) consists of. A recording is complete once its manifest
exists: the merge writes the manifest atomically after the MKV is final.

Each unit's state is one JSON file ``<state_dir>/<kind>-<name>.json``, always replaced
atomically (temp file, rename). It is made durable (fsync of file and directory) when a multipart
upload is created and when a file or unit is done; after each acknowledged part it is only
renamed into place (an fsync per part cost 0.5 s on a loaded disk), which is safe because resume
trusts the server's ``ListParts``, not the cached part list.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import os
import pathlib
from collections.abc import Callable
from typing import Any

from omgrab.recording import atomic_files
from omgrab.upload import multipart

logger = logging.getLogger(__name__)

RECORDING = "recording"
PERCEPTION = "perception"


@dataclasses.dataclass
class Unit:
    """One recording or perception session to upload.

    Attributes:
        kind: :data:`RECORDING` or :data:`PERCEPTION`.
        name: Recording id or session folder name.
        root: Directory the files are relative to.
        files: Files in upload order.
        started: UTC start (decides the ``{date}`` of the key prefix), ``None`` if unknown.
    """

    kind: str
    name: str
    root: pathlib.Path
    files: list[pathlib.Path]
    started: datetime.datetime | None

    @property
    def state_name(self) -> str:
        """File name of the unit's state file."""
        return f"{self.kind}-{self.name}.json"

    def relative(self, path: pathlib.Path) -> str:
        """Path of ``path`` inside the unit, as used in the object key."""
        if self.kind == RECORDING:
            return path.name
        return path.relative_to(self.root).as_posix()

    def local_bytes(self) -> int:
        """Total size of the unit's files that still exist."""
        return sum(p.stat().st_size for p in self.files if p.exists())


@dataclasses.dataclass
class UnitState:
    """Persistent state of one unit.

    Attributes:
        kind: Unit kind.
        name: Unit name.
        files: Per-file upload state, keyed by the path inside the unit.
        uploaded: Every file is uploaded and verified.
        uploaded_at: When that was established (ISO 8601 UTC).
        deleted_local: The local files were deleted after remote verification.
        total_bytes: Bytes of the unit when it was uploaded.
    """

    kind: str
    name: str
    files: dict[str, multipart.FileState] = dataclasses.field(default_factory=dict)
    uploaded: bool = False
    uploaded_at: str | None = None
    deleted_local: bool = False
    total_bytes: int = 0

    def to_json(self) -> bytes:
        """Serialise for the state file."""
        doc = dataclasses.asdict(self)
        return json.dumps(doc, indent=1).encode() + b"\n"

    @classmethod
    def from_json(cls, raw: bytes) -> UnitState:
        """Parse a state file (raises ``ValueError``/``TypeError``/``KeyError`` if malformed)."""
        doc: dict[str, Any] = json.loads(raw)
        files = {k: multipart.FileState(**v) for k, v in doc.pop("files").items()}
        return cls(files=files, **doc)


class StateStore:
    """Reads and writes unit states in one directory."""

    def __init__(self, directory: pathlib.Path) -> None:
        """Use ``directory`` (created on first write)."""
        self.directory = directory

    def load(self, kind: str, name: str) -> UnitState:
        """Return the saved state, or a fresh one (a corrupt file is logged and replaced)."""
        path = self.directory / f"{kind}-{name}.json"
        try:
            return UnitState.from_json(path.read_bytes())
        except FileNotFoundError:
            return UnitState(kind, name)
        except (ValueError, TypeError, KeyError) as exc:
            logger.warning("upload state %s is unreadable (%s); starting that unit over", path, exc)
            return UnitState(kind, name)

    def save(self, state: UnitState, durable: bool = True) -> None:
        """Write ``state`` atomically; ``durable`` also fsyncs the file and the directory.

        A non-durable save is still atomic (temp file + rename): after a power loss the
        previous state or the new one is read, never a torn file.
        """
        target = self.directory / f"{state.kind}-{state.name}.json"
        if durable:
            atomic_files.write_bytes_atomic(target, state.to_json())
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = atomic_files.temp_path_for(target)
        try:
            tmp.write_bytes(state.to_json())
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)

    def all(self) -> list[UnitState]:
        """Every saved state (unreadable ones skipped)."""
        out = []
        for path in sorted(self.directory.glob("*.json")):
            kind, _, name = path.stem.partition("-")
            out.append(self.load(kind, name))
        return out


def _parse_started(manifest: pathlib.Path) -> datetime.datetime | None:
    try:
        doc = json.loads(manifest.read_bytes())
        value = doc.get("started_at")
        if not isinstance(value, str):
            return None
        moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (OSError, ValueError, AttributeError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


def find_recordings(recordings_dir: pathlib.Path) -> list[Unit]:
    """Completed recordings in ``recordings_dir`` (manifest and MKV present), oldest first."""
    units = []
    for manifest in sorted(recordings_dir.glob("*.json")):
        if manifest.name.startswith("."):
            continue
        mkv = manifest.with_suffix(".mkv")
        if not mkv.is_file():
            continue
        started = _parse_started(manifest)
        units.append(Unit(RECORDING, manifest.stem, recordings_dir, [mkv, manifest], started))
    units.sort(key=lambda u: u.started or datetime.datetime.max.replace(tzinfo=datetime.UTC))
    return units


def find_perception_sessions(
    perception_dir: pathlib.Path, is_active: Callable[[pathlib.Path], bool] | None = None
) -> list[Unit]:
    """Finished perception session folders in ``perception_dir``, oldest first.

    Args:
        perception_dir: The OutputManager's base directory.
        is_active: Says whether a session folder is still being written. Without it the
            newest folder is taken as the active one (the OutputManager writes only there).
    """
    if not perception_dir.is_dir():
        return []
    folders = sorted(p for p in perception_dir.iterdir() if p.is_dir() and not p.is_symlink())
    folders = folders[:-1] if is_active is None else [f for f in folders if not is_active(f)]
    units = []
    for folder in folders:
        files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink())
        modified = max((p.stat().st_mtime for p in files), default=folder.stat().st_mtime)
        started = datetime.datetime.fromtimestamp(modified, datetime.UTC)
        units.append(Unit(PERCEPTION, folder.name, folder, files, started))
    return units
