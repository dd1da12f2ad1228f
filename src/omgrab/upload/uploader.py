"""The uploader: sends every completed recording (and perception session) to S3, resumably.

Data path: :func:`units.find_recordings` / :func:`units.find_perception_sessions` list what is
complete locally; each unit's files go through :func:`multipart.upload_file` (one part in memory
at a time, paced by the bandwidth limit), the manifest last. A unit is marked uploaded in its
state file only after every file's remote size and ETag were verified.

Gates: before each part the ``on_wifi`` and ``is_recording`` predicates are asked (when
``only_on_wifi`` / ``only_when_idle`` are set); a closed gate pauses the upload where it is.

Lifecycle: :meth:`Uploader.run_once` does one pass over the backlog in the caller's thread
(``omgrab upload`` uses it). :meth:`Uploader.start` runs passes in a daemon thread until
:meth:`Uploader.stop`: after a clean pass it waits ``poll_interval_s``; after an error it
backs off from ``retry_initial_s`` doubling to ``retry_max_s``. Restarting the process continues
from the state files (see :mod:`omgrab.upload.multipart`).

Error policy: no error stops the uploader or is silent. Each failed pass is counted, logged and
kept as ``last_error`` in :meth:`Uploader.progress` (which status, dashboard, MQTT and metrics
read); a network loss, a server restart, a full bucket or wrong credentials all end the pass
and are retried after the back-off. Nothing local is deleted unless ``delete_after_upload`` is
set and the remote object was verified again (size and ETag) just before the delete.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import pathlib
import threading
import time
from collections.abc import Callable
from typing import Any

from omgrab.upload import config as config_mod
from omgrab.upload import multipart, pacing, units

logger = logging.getLogger(__name__)

DEVICE_METADATA_KEY = "omgrab-device-id"
"""S3 user metadata naming the device on every uploaded object (read by the fleet index)."""


def make_client(config: config_mod.UploadConfig, credentials: config_mod.Credentials) -> Any:
    """Return a boto3 S3 client for ``config`` (imports boto3 lazily)."""
    import boto3
    from botocore import config as botocore_config

    session = boto3.session.Session(
        aws_access_key_id=credentials.access_key_id,
        aws_secret_access_key=credentials.secret_access_key,
        aws_session_token=credentials.session_token,
        region_name=config.region,
    )
    verify: bool | str = str(config.ca_bundle) if config.ca_bundle else config.verify_tls
    return session.client(
        "s3",
        endpoint_url=config.endpoint_url,
        verify=verify,
        config=botocore_config.Config(
            signature_version="s3v4",
            s3={"addressing_style": config.addressing_style},
            retries={"max_attempts": 2, "mode": "standard"},
            connect_timeout=10,
            read_timeout=60,
            # Parts carry Content-MD5 (checked by every S3 implementation); no second checksum.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


_AUTH_CODES = {
    "403",
    "Forbidden",
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
}


def describe_error(exc: BaseException) -> str:
    """One line naming what went wrong, with a hint for refused credentials."""
    message = f"{type(exc).__name__}: {exc}"
    response = getattr(exc, "response", None)
    code = str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""
    if code in _AUTH_CODES:
        return f"S3 refused the credentials or access ({code}); check them: {message}"
    return message


def _now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")


class Uploader:
    """Uploads completed recordings from a recordings directory to one bucket."""

    def __init__(
        self,
        config: config_mod.UploadConfig,
        recordings_dir: str | os.PathLike[str],
        perception_dir: str | os.PathLike[str] | None = None,
        *,
        on_wifi: Callable[[], bool] | None = None,
        is_recording: Callable[[], bool] | None = None,
        perception_active: Callable[[pathlib.Path], bool] | None = None,
        client: Any = None,
        environ: dict[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Create the uploader (nothing is sent until :meth:`run_once` or :meth:`start`).

        Args:
            config: Upload settings.
            recordings_dir: Where merged recordings (``<id>.mkv`` + ``<id>.json``) appear.
            perception_dir: The OutputManager base directory (session folders), or ``None``.
            on_wifi: Says whether the device is on Wi-Fi (asked when ``only_on_wifi``).
            is_recording: Says whether a recording runs (asked when ``only_when_idle``).
            perception_active: Says whether a session folder is still being written.
            client: A boto3 S3 client to use instead of building one from ``config``.
            environ: Environment to read credentials from (default ``os.environ``).
            clock: Monotonic clock for rates and ETA.

        Raises:
            UploadConfigError: credentials missing or unreadable, or a gate is enabled without
                its predicate.
        """
        self.config = config
        self.recordings_dir = pathlib.Path(recordings_dir)
        self.perception_dir = pathlib.Path(perception_dir) if perception_dir else None
        if config.only_on_wifi and on_wifi is None:
            raise config_mod.UploadConfigError("upload.only_on_wifi needs an on_wifi predicate")
        if config.only_when_idle and is_recording is None:
            raise config_mod.UploadConfigError(
                "upload.only_when_idle needs an is_recording predicate"
            )
        self._on_wifi = on_wifi
        self._is_recording = is_recording
        self._perception_active = perception_active
        if client is None:
            client = make_client(config, config_mod.load_credentials(config, environ))
        self._client = client
        state_dir = config.state_dir or self.recordings_dir / ".upload"
        self.store = units.StateStore(pathlib.Path(state_dir))
        self._clock = clock
        self._stop = threading.Event()
        self._pacer = (
            pacing.Pacer(config.max_bandwidth, clock=clock, wait=self._stop.wait)
            if config.max_bandwidth
            else None
        )
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._progress: dict[str, Any] = {
            "state": "idle",
            "pause_reason": None,
            "pending_recordings": 0,
            "pending_perception_sessions": 0,
            "pending_bytes": 0,
            "uploaded_recordings": 0,
            "bytes_sent": 0,
            "bytes_confirmed": 0,
            "parts_sent": 0,
            "parts_skipped": 0,
            "rate_bytes_per_s": None,
            "eta_s": None,
            "current": None,
            "errors": 0,
            "last_error": None,
            "last_error_at": None,
            "last_upload_at": None,
        }
        self._busy_s = 0.0

    # -- public API ------------------------------------------------------------------------

    def progress(self) -> dict[str, Any]:
        """Snapshot of progress and backlog (JSON-ready; safe from any thread)."""
        with self._lock:
            snap = dict(self._progress)
            if snap["current"] is not None:
                snap["current"] = dict(snap["current"])
        return snap

    def run_once(self) -> dict[str, Any]:
        """Upload everything pending now (until done, paused or an error); return progress."""
        try:
            self._pass()
        except Exception as exc:
            self._record_error(exc)
        return self.progress()

    def start(self) -> None:
        """Run passes in a background thread until :meth:`stop`."""
        if self._thread is not None:
            raise RuntimeError("uploader already started")
        self._stop.clear()
        self._thread = threading.Thread(target=self.run_forever, name="omgrab-upload", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the background thread (the current part finishes or is abandoned)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._set(state="stopped")

    def run_forever(self) -> None:
        """Run passes until :meth:`stop`, backing off after errors."""
        backoff = self.config.retry_initial_s
        while not self._stop.is_set():
            errors_before = self.progress()["errors"]
            snap = self.run_once()
            if snap["errors"] > errors_before:
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.config.retry_max_s)
            else:
                backoff = self.config.retry_initial_s
                self._stop.wait(self.config.poll_interval_s)

    def retention_candidates(self) -> list[pathlib.Path]:
        """Local MKVs of recordings already uploaded and verified, oldest first.

        The storage ladder deletes from this list first; pass each to
        :meth:`delete_if_uploaded`, which verifies the remote copy again before deleting.
        """
        out = []
        for unit in units.find_recordings(self.recordings_dir):
            state = self.store.load(unit.kind, unit.name)
            if state.uploaded and not state.deleted_local:
                out.append(unit.files[0])
        return out

    def delete_if_uploaded(self, mkv: str | os.PathLike[str]) -> bool:
        """Delete a recording's local files if, and only if, the remote copy verifies.

        Returns:
            Whether the files were deleted.
        """
        path = pathlib.Path(mkv)
        unit = units.Unit(
            units.RECORDING, path.stem, path.parent, [path, path.with_suffix(".json")], None
        )
        state = self.store.load(unit.kind, unit.name)
        return self._delete_verified(unit, state)

    # -- internals -------------------------------------------------------------------------

    def _set(self, **values: Any) -> None:
        with self._lock:
            self._progress.update(values)

    def _record_error(self, exc: BaseException) -> None:
        message = describe_error(exc)
        logger.warning("upload pass failed: %s", message)
        with self._lock:
            self._progress["errors"] += 1
            self._progress["last_error"] = message
            self._progress["last_error_at"] = _now_iso()
            self._progress["state"] = "error"
            self._progress["current"] = None

    def _gate(self) -> str | None:
        if self._stop.is_set():
            return "stopping"
        if self.config.only_on_wifi and self._on_wifi is not None and not self._on_wifi():
            return "not on Wi-Fi"
        if self.config.only_when_idle and self._is_recording is not None and self._is_recording():
            return "recording in progress"
        return None

    def _units(self) -> list[units.Unit]:
        found = units.find_recordings(self.recordings_dir)
        if self.config.include_perception and self.perception_dir is not None:
            found += units.find_perception_sessions(self.perception_dir, self._perception_active)
        return found

    def _backlog(self, todo: list[tuple[units.Unit, units.UnitState]]) -> None:
        pending_bytes = 0
        for unit, state in todo:
            for path in unit.files:
                fs = state.files.get(unit.relative(path))
                if fs is not None and fs.done:
                    continue
                with contextlib.suppress(OSError):
                    pending_bytes += path.stat().st_size
        with self._lock:
            p = self._progress
            p["pending_recordings"] = sum(1 for u, _ in todo if u.kind == units.RECORDING)
            p["pending_perception_sessions"] = sum(1 for u, _ in todo if u.kind == units.PERCEPTION)
            p["pending_bytes"] = pending_bytes
            rate = p["rate_bytes_per_s"]
            p["eta_s"] = (pending_bytes / rate) if rate else None

    def _pass(self) -> None:
        found = self._units()
        todo = []
        uploaded = 0
        for unit in found:
            state = self.store.load(unit.kind, unit.name)
            if state.uploaded:
                uploaded += unit.kind == units.RECORDING
                if self.config.delete_after_upload and not state.deleted_local:
                    self._delete_verified(unit, state)
                continue
            todo.append((unit, state))
        self._set(uploaded_recordings=uploaded)
        self._backlog(todo)
        for unit, state in todo:
            reason = self._gate()
            if reason is not None:
                self._set(state="paused", pause_reason=reason, current=None)
                return
            self._set(state="uploading", pause_reason=None)
            try:
                self._upload_unit(unit, state)
            except multipart.Paused:
                self._set(state="paused", pause_reason=self._gate(), current=None)
                return
            self._backlog([t for t in todo if not t[1].uploaded])
        self._set(state="idle", pause_reason=None, current=None)

    def _key(self, unit: units.Unit, path: pathlib.Path) -> str:
        prefix = self.config.key_prefix(unit.started)
        middle = unit.name if unit.kind == units.RECORDING else f"perception/{unit.name}"
        return "/".join(p for p in (prefix, middle, unit.relative(path)) if p)

    def _upload_unit(self, unit: units.Unit, state: units.UnitState) -> None:
        total = 0
        for path in unit.files:
            rel = unit.relative(path)
            fs = state.files.get(rel)
            if fs is not None and not fs.done:
                size, mtime = multipart.file_identity(path)
                if (size, mtime) != (fs.size, fs.mtime_ns):
                    logger.warning("%s changed since its upload began; starting it over", path)
                    multipart.abort_quietly(self._client, self.config.bucket, fs)
                    fs = None
            if fs is None:
                fs = multipart.FileState.for_file(
                    path,
                    self._key(unit, path),
                    self.config.part_size,
                    {DEVICE_METADATA_KEY: self.config.device_id},
                )
                state.files[rel] = fs
                self.store.save(state, durable=False)
            total += fs.size
            self._set(current={"unit": unit.name, "file": rel, "done_bytes": 0, "size": fs.size})
            began = self._clock()

            def on_part(nbytes: int, sent: bool) -> None:
                with self._lock:
                    p = self._progress
                    if p["current"] is not None:
                        p["current"]["done_bytes"] += nbytes
                    p["bytes_confirmed"] += nbytes
                    if sent:
                        p["parts_sent"] += 1
                        p["bytes_sent"] += nbytes
                    else:
                        p["parts_skipped"] += 1

            try:
                multipart.upload_file(
                    self._client,
                    self.config.bucket,
                    fs,
                    save=lambda _fs: self.store.save(state),
                    save_progress=lambda _fs: self.store.save(state, durable=False),
                    pacer=self._pacer,
                    should_continue=lambda: self._gate() is None,
                    on_part=on_part,
                )
            except multipart.FileChanged:
                multipart.abort_quietly(self._client, self.config.bucket, fs)
                del state.files[rel]
                self.store.save(state)
                raise
            finally:
                self._busy_s += self._clock() - began
                with self._lock:
                    p = self._progress
                    if self._busy_s > 0 and p["bytes_sent"]:
                        p["rate_bytes_per_s"] = p["bytes_sent"] / self._busy_s
        state.uploaded = True
        state.uploaded_at = _now_iso()
        state.total_bytes = total
        self.store.save(state)
        with self._lock:
            self._progress["last_upload_at"] = state.uploaded_at
            if unit.kind == units.RECORDING:
                self._progress["uploaded_recordings"] += 1
        logger.info("uploaded %s %s (%d bytes)", unit.kind, unit.name, total)
        if self.config.delete_after_upload:
            self._delete_verified(unit, state)

    def _delete_verified(self, unit: units.Unit, state: units.UnitState) -> bool:
        """Delete the unit's local files after re-verifying every one remotely."""
        if not state.uploaded:
            return False
        for path in unit.files:
            fs = state.files.get(unit.relative(path))
            if fs is None or not fs.done or not path.exists():
                return False
            if multipart.file_identity(path) != (fs.size, fs.mtime_ns):
                logger.warning("not deleting %s: it changed after its upload", path)
                return False
            if not multipart.remote_matches(self._client, self.config.bucket, fs):
                logger.warning("not deleting %s: the remote copy does not verify", path)
                return False
        for path in unit.files:
            path.unlink()
        if unit.kind == units.PERCEPTION:
            for folder in sorted({p.parent for p in unit.files}, key=lambda p: -len(p.parts)):
                with contextlib.suppress(OSError):
                    folder.rmdir()
            with contextlib.suppress(OSError):
                unit.root.rmdir()
        state.deleted_local = True
        self.store.save(state)
        logger.info("deleted local %s %s (verified remotely)", unit.kind, unit.name)
        return True
