"""Upload one local file to S3 as a resumable multipart upload, verified end to end.

Data path: the file is read one part at a time (``part_size`` bytes, the last part shorter).
Each part is sent with ``Content-MD5``, so the server rejects a part damaged in transit, and the
ETag it returns (the part's MD5) is checked against the local MD5. Files no larger than one part
go in one ``PutObject`` with ``Content-MD5``.

Resume: :class:`FileState` (kept on disk by the caller: durably through ``save`` when the
multipart upload is created; through ``save_progress``, which need not fsync, after each part)
holds the multipart ``upload_id`` and the MD5 of every part computed so far. After a network
loss, a reboot or a SIGKILL, :func:`upload_file` asks the server which parts it already holds
(``ListParts``) and sends only those whose ETag does not match the local MD5; so a part
acknowledged by the server is never sent again, even if the process died before recording it.
If the server no longer knows the upload (``NoSuchUpload``: it was completed, aborted or the
server lost its state), the object is checked first (it may be complete already) and otherwise
the upload starts over.

Integrity: an upload counts as done only when ``HeadObject`` reports the local size and the
ETag S3 derives from the parts (MD5 of the concatenated part MD5s, ``-<parts>``), i.e. the
server hashed exactly the bytes we have. :func:`remote_matches` repeats that check; deletion
of local data relies on it.

Bounds: memory is two parts (the one being sent and the next, read and hashed meanwhile by
one helper thread that lives for the duration of one file's upload).

Errors: boto3/botocore exceptions propagate to the caller (which backs off and retries);
:class:`FileChanged` is raised if the local file changes mid-upload and
:class:`UploadIntegrityError` if the server's answer does not match what was sent.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import os
import pathlib
from collections.abc import Callable
from concurrent import futures
from typing import Any

from omgrab.upload import pacing


class UploadIntegrityError(RuntimeError):
    """The server's size or hash does not match the local file."""


class FileChanged(RuntimeError):
    """The local file changed (size or mtime) while it was being uploaded."""


class Paused(Exception):
    """The caller's ``should_continue`` said stop; the upload resumes later from its state."""


@dataclasses.dataclass
class FileState:
    """Upload state of one file (JSON-serialisable; persisted by the caller).

    Attributes:
        path: Local path (absolute).
        key: Object key.
        size: File size when the upload began.
        mtime_ns: File mtime when the upload began.
        part_size: Part size used (fixed for the life of the upload).
        upload_id: Multipart upload id, ``None`` before it is created (or for single PUTs).
        part_md5: Hex MD5 of each part computed so far, keyed by part number (as a string).
        etag: The verified remote ETag once done.
        done: Uploaded and verified.
        metadata: S3 user metadata set on the object.
    """

    path: str
    key: str
    size: int
    mtime_ns: int
    part_size: int
    upload_id: str | None = None
    part_md5: dict[str, str] = dataclasses.field(default_factory=dict)
    etag: str | None = None
    done: bool = False
    metadata: dict[str, str] = dataclasses.field(default_factory=dict)

    @classmethod
    def for_file(
        cls,
        path: pathlib.Path,
        key: str,
        part_size: int,
        metadata: dict[str, str] | None = None,
    ) -> FileState:
        """Return a fresh state for ``path`` as it is now."""
        info = path.stat()
        return cls(
            str(path), key, info.st_size, info.st_mtime_ns, part_size, metadata=metadata or {}
        )

    @property
    def parts(self) -> int:
        """Number of parts (1 for files that fit one part, including empty files)."""
        return max(1, -(-self.size // self.part_size))

    @property
    def multipart(self) -> bool:
        """Sent as a multipart upload (more than one part)."""
        return self.parts > 1

    def expected_etag(self) -> str | None:
        """The ETag S3 reports for this file, once every part's MD5 is known."""
        if len(self.part_md5) < self.parts:
            return None
        if not self.multipart:
            return self.part_md5["1"]
        digest = hashlib.md5(usedforsecurity=False)
        for number in range(1, self.parts + 1):
            digest.update(bytes.fromhex(self.part_md5[str(number)]))
        return f"{digest.hexdigest()}-{self.parts}"


@dataclasses.dataclass
class Transfer:
    """What one :func:`upload_file` call did.

    Attributes:
        parts_sent: Parts (or single PUTs) sent over the network.
        parts_skipped: Parts the server already held.
        bytes_sent: Payload bytes sent.
        restarted: The server had lost the upload and it started over.
    """

    parts_sent: int = 0
    parts_skipped: int = 0
    bytes_sent: int = 0
    restarted: bool = False


def _strip(etag: str | None) -> str:
    return (etag or "").strip('"').lower()


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def remote_matches(client: Any, bucket: str, state: FileState) -> bool:
    """Whether the object at ``state.key`` has the local size and the expected ETag.

    Raises:
        botocore exceptions other than "not found".
    """
    expected = state.expected_etag()
    if expected is None:
        return False
    try:
        head = client.head_object(Bucket=bucket, Key=state.key)
    except Exception as exc:
        if _error_code(exc) in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return bool(head.get("ContentLength") == state.size and _strip(head.get("ETag")) == expected)


def _read_part(path: pathlib.Path, state: FileState, number: int) -> bytes:
    with path.open("rb") as f:
        f.seek((number - 1) * state.part_size)
        return f.read(state.part_size)


def _check_unchanged(path: pathlib.Path, state: FileState) -> None:
    info = path.stat()
    if info.st_size != state.size or info.st_mtime_ns != state.mtime_ns:
        raise FileChanged(f"{path} changed while being uploaded")


def _list_parts(client: Any, bucket: str, state: FileState) -> dict[int, str] | None:
    """Parts the server holds for the upload, or ``None`` if it does not know the upload."""
    held: dict[int, str] = {}
    marker = 0
    while True:
        try:
            page = client.list_parts(
                Bucket=bucket, Key=state.key, UploadId=state.upload_id, PartNumberMarker=marker
            )
        except Exception as exc:
            if _error_code(exc) in ("NoSuchUpload", "404"):
                return None
            raise
        for part in page.get("Parts", []):
            held[int(part["PartNumber"])] = _strip(part.get("ETag"))
        if not page.get("IsTruncated"):
            return held
        marker = int(page["NextPartNumberMarker"])


def upload_file(
    client: Any,
    bucket: str,
    state: FileState,
    save: Callable[[FileState], None],
    pacer: pacing.Pacer | None = None,
    should_continue: Callable[[], bool] = lambda: True,
    on_part: Callable[[int, bool], None] = lambda n, sent: None,
    save_progress: Callable[[FileState], None] | None = None,
) -> Transfer:
    """Upload (or finish uploading) ``state.path`` to ``state.key`` and verify it.

    Args:
        client: A boto3 S3 client.
        bucket: Target bucket.
        state: The file's upload state; updated in place.
        save: Persists ``state`` durably; called when a multipart upload is created (losing
            its id would orphan the parts already sent) and when paused.
        save_progress: Persists ``state`` after each part and when the file is done (default
            ``save``). It need not be durable: resume trusts the server (``ListParts``, and a
            ``HeadObject`` that verifies an upload completed before the crash).
        pacer: Bandwidth limit applied before each part.
        should_continue: Checked before each part; ``False`` raises :class:`Paused`.
        on_part: Called as each part is confirmed: its payload size, and whether it was sent
            now (``True``) or found already on the server (``False``).

    Returns:
        What was sent and skipped.

    Raises:
        Paused: ``should_continue`` returned ``False``.
        FileChanged: the local file changed since the upload began.
        UploadIntegrityError: the server's size/hash disagree with the local file.
    """
    transfer = Transfer()
    if state.done:
        return transfer
    path = pathlib.Path(state.path)
    _check_unchanged(path, state)
    job = _Job(
        client,
        bucket,
        state,
        path,
        save,
        save_progress or save,
        pacer,
        should_continue,
        on_part,
        transfer,
    )
    if not state.multipart:
        _put_single(job)
    else:
        _put_multipart(job)
        if state.done:
            job.save_progress(state)
            return transfer
    if not remote_matches(client, bucket, state):
        raise UploadIntegrityError(
            f"s3://{bucket}/{state.key}: remote size/ETag differ from {path} "
            f"({state.size} bytes, ETag {state.expected_etag()})"
        )
    state.etag = state.expected_etag()
    state.done = True
    state.upload_id = None
    job.save_progress(state)
    return transfer


@dataclasses.dataclass
class _Job:
    """Everything one :func:`upload_file` call works with."""

    client: Any
    bucket: str
    state: FileState
    path: pathlib.Path
    save: Callable[[FileState], None]
    save_progress: Callable[[FileState], None]
    pacer: pacing.Pacer | None
    should_continue: Callable[[], bool]
    on_part: Callable[[int, bool], None]
    transfer: Transfer

    def before_send(self, nbytes: int) -> None:
        """Pause if asked to, then wait for the bandwidth limit."""
        if not self.should_continue():
            self.save(self.state)
            raise Paused(str(self.path))
        if self.pacer is not None:
            self.pacer.take(nbytes)

    def confirmed(self, nbytes: int, sent: bool) -> None:
        """Count a part the server holds (sent now or found there)."""
        if sent:
            self.transfer.parts_sent += 1
            self.transfer.bytes_sent += nbytes
        else:
            self.transfer.parts_skipped += 1
        self.on_part(nbytes, sent)


def _put_single(job: _Job) -> None:
    client, bucket, state, path = job.client, job.bucket, job.state, job.path
    data = path.read_bytes()
    if len(data) != state.size:
        raise FileChanged(f"{path} changed while being uploaded")
    digest = hashlib.md5(data, usedforsecurity=False)
    state.part_md5 = {"1": digest.hexdigest()}
    if remote_matches(client, bucket, state):
        job.confirmed(len(data), sent=False)
        return
    job.before_send(len(data))
    response = client.put_object(
        Bucket=bucket,
        Key=state.key,
        Body=data,
        ContentMD5=base64.b64encode(digest.digest()).decode(),
        Metadata=state.metadata,
    )
    if _strip(response.get("ETag")) != digest.hexdigest():
        raise UploadIntegrityError(f"s3://{bucket}/{state.key}: ETag mismatch after PUT")
    job.confirmed(len(data), sent=True)


def _put_multipart(job: _Job) -> None:
    client, bucket, state, path, save = job.client, job.bucket, job.state, job.path, job.save
    held: dict[int, str] = {}
    if state.upload_id is not None:
        listed = _list_parts(client, bucket, state)
        if listed is None:
            # Completed by a previous run whose answer was lost, or lost by the server.
            if remote_matches(client, bucket, state):
                state.etag = state.expected_etag()
                state.done = True
                state.upload_id = None
                job.on_part(state.size, False)
                return
            state.upload_id = None
            job.transfer.restarted = True
        else:
            held = listed
    if state.upload_id is None:
        created = client.create_multipart_upload(
            Bucket=bucket, Key=state.key, Metadata=state.metadata
        )
        state.upload_id = str(created["UploadId"])
        save(state)
    cached = dict(state.part_md5)

    def load(number: int) -> tuple[bytes, str]:
        data = _read_part(path, state, number)
        if len(data) != min(state.part_size, state.size - (number - 1) * state.part_size):
            raise FileChanged(f"{path} changed while being uploaded")
        md5 = cached.get(str(number)) or hashlib.md5(data, usedforsecurity=False).hexdigest()
        return data, md5

    # Part n+1 is read and hashed (hashlib releases the GIL) while part n is on the wire.
    with futures.ThreadPoolExecutor(1, thread_name_prefix="omgrab-upload-read") as reader:
        upcoming = reader.submit(load, 1)
        for number in range(1, state.parts + 1):
            data, md5 = upcoming.result()
            if number < state.parts:
                upcoming = reader.submit(load, number + 1)
            state.part_md5[str(number)] = md5
            if held.get(number) == md5:
                job.confirmed(len(data), sent=False)
                continue
            job.before_send(len(data))
            response = client.upload_part(
                Bucket=bucket,
                Key=state.key,
                UploadId=state.upload_id,
                PartNumber=number,
                Body=data,
                ContentMD5=base64.b64encode(bytes.fromhex(md5)).decode(),
            )
            if _strip(response.get("ETag")) != md5:
                raise UploadIntegrityError(
                    f"s3://{bucket}/{state.key}: part {number} ETag {response.get('ETag')} is "
                    f"not its MD5 {md5}"
                )
            job.save_progress(state)
            job.confirmed(len(data), sent=True)
    _check_unchanged(path, state)
    client.complete_multipart_upload(
        Bucket=bucket,
        Key=state.key,
        UploadId=state.upload_id,
        MultipartUpload={
            "Parts": [
                {"PartNumber": n, "ETag": f'"{state.part_md5[str(n)]}"'}
                for n in range(1, state.parts + 1)
            ]
        },
    )


def abort_quietly(client: Any, bucket: str, state: FileState) -> None:
    """Abort the state's multipart upload if there is one (frees the server's parts)."""
    if state.upload_id is None:
        return
    with contextlib.suppress(Exception):
        client.abort_multipart_upload(Bucket=bucket, Key=state.key, UploadId=state.upload_id)
    state.upload_id = None


def file_identity(path: str | os.PathLike[str]) -> tuple[int, int]:
    """``(size, mtime_ns)`` of ``path``, as recorded in :class:`FileState`."""
    info = os.stat(path)
    return info.st_size, info.st_mtime_ns
