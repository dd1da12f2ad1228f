"""Upload settings (:class:`UploadConfig`) and the S3 credentials they point to.

The device config loader calls :meth:`UploadConfig.from_mapping` with the ``[upload]`` table;
every key is checked and an unknown key or a bad value raises :class:`UploadConfigError` naming
it. Credentials never live in the config: they come from the environment
(``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` / optional ``AWS_SESSION_TOKEN``) or from a
JSON file readable by its owner only (mode 0600 or stricter).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import pathlib
import stat
from collections.abc import Mapping
from typing import Any

MIN_PART_SIZE = 5 * 1024 * 1024
"""S3's smallest allowed part (all parts but the last)."""

MAX_PARTS = 10_000
"""S3's largest allowed number of parts in one multipart upload."""


class UploadConfigError(ValueError):
    """An upload setting or the credentials are missing or invalid (the message names which)."""


@dataclasses.dataclass(frozen=True)
class Credentials:
    """An S3 access key pair (and optional session token)."""

    access_key_id: str
    secret_access_key: str
    session_token: str | None = None

    def __repr__(self) -> str:
        return f"Credentials(access_key_id={self.access_key_id!r}, secret_access_key=***)"


@dataclasses.dataclass(frozen=True)
class UploadConfig:
    """Where and how completed recordings are uploaded.

    Attributes:
        bucket: Bucket name.
        endpoint_url: S3 endpoint (``https://minio.example:9000``); ``None`` means AWS.
        region: Signing region.
        prefix: Key prefix template; ``{device_id}`` and ``{date}`` (the recording's UTC start
            date, ``YYYY-MM-DD``) are filled in. Objects go to ``<prefix>/<recording_id>/...``.
        device_id: This device's id (used in the prefix).
        credentials_file: JSON file ``{"access_key_id", "secret_access_key"[, "session_token"]}``
            with mode 0600; ``None`` reads the ``AWS_*`` environment variables.
        ca_bundle: PEM file of the CA that signed the endpoint's certificate.
        verify_tls: Verify the endpoint's certificate (only turn off for tests).
        part_size: Multipart part size in bytes (>= 5 MiB).
        max_bandwidth: Upload rate cap in bytes/s; ``None`` is unlimited.
        only_on_wifi: Upload only while the ``on_wifi`` predicate says so.
        only_when_idle: Upload only while the ``is_recording`` predicate says no recording runs.
        delete_after_upload: Delete local files once the remote copy is verified.
        include_perception: Also upload perception session folders.
        state_dir: Where upload state is kept; ``None`` is ``<recordings_dir>/.upload``.
        retry_initial_s: First back-off after an error.
        retry_max_s: Longest back-off.
        poll_interval_s: How often the background loop looks for new recordings.
        addressing_style: ``"path"`` (MinIO, moto, Ceph) or ``"virtual"`` (AWS).
    """

    bucket: str
    endpoint_url: str | None = None
    region: str = "us-east-1"
    prefix: str = "{device_id}/{date}"
    device_id: str = "omgrab"
    credentials_file: pathlib.Path | None = None
    ca_bundle: pathlib.Path | None = None
    verify_tls: bool = True
    part_size: int = 16 * 1024 * 1024
    max_bandwidth: int | None = None
    only_on_wifi: bool = False
    only_when_idle: bool = False
    delete_after_upload: bool = False
    include_perception: bool = True
    state_dir: pathlib.Path | None = None
    retry_initial_s: float = 1.0
    retry_max_s: float = 300.0
    poll_interval_s: float = 30.0
    addressing_style: str = "path"

    def __post_init__(self) -> None:
        if not isinstance(self.bucket, str) or not 3 <= len(self.bucket) <= 63:
            raise UploadConfigError(
                f"upload.bucket must be a bucket name of 3 to 63 characters, got {self.bucket!r}"
            )
        if self.endpoint_url is not None and not str(self.endpoint_url).startswith(
            ("http://", "https://")
        ):
            raise UploadConfigError(
                f"upload.endpoint_url must start with http:// or https://, got "
                f"{self.endpoint_url!r}"
            )
        if not isinstance(self.part_size, int) or self.part_size < MIN_PART_SIZE:
            raise UploadConfigError(
                f"upload.part_size must be an integer >= {MIN_PART_SIZE} (5 MiB), got "
                f"{self.part_size!r}"
            )
        if self.max_bandwidth is not None and (
            not isinstance(self.max_bandwidth, int) or self.max_bandwidth <= 0
        ):
            raise UploadConfigError(
                f"upload.max_bandwidth must be a positive number of bytes/s, got "
                f"{self.max_bandwidth!r}"
            )
        for name in ("retry_initial_s", "retry_max_s", "poll_interval_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise UploadConfigError(f"upload.{name} must be a positive number, got {value!r}")
        if self.addressing_style not in ("path", "virtual", "auto"):
            raise UploadConfigError(
                f"upload.addressing_style must be path, virtual or auto, got "
                f"{self.addressing_style!r}"
            )
        try:
            self.prefix.format(device_id="d", date="2000-01-01")
        except (KeyError, IndexError, ValueError) as exc:
            raise UploadConfigError(
                f"upload.prefix {self.prefix!r} may only use {{device_id}} and {{date}}: {exc}"
            ) from exc

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> UploadConfig:
        """Build the config from a parsed ``[upload]`` table.

        Raises:
            UploadConfigError: an unknown key, a missing bucket or a value of the wrong type.
        """
        if not isinstance(mapping, Mapping):
            raise UploadConfigError("upload settings must be a table")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in mapping.items():
            if key not in fields:
                raise UploadConfigError(
                    f"unknown upload setting {key!r} (known: {', '.join(sorted(fields))})"
                )
            if key in ("credentials_file", "ca_bundle", "state_dir") and value is not None:
                if not isinstance(value, str | os.PathLike):
                    raise UploadConfigError(f"upload.{key} must be a path, got {value!r}")
                value = pathlib.Path(value)
            elif key in (
                "verify_tls",
                "only_on_wifi",
                "only_when_idle",
                "delete_after_upload",
                "include_perception",
            ):
                if not isinstance(value, bool):
                    raise UploadConfigError(f"upload.{key} must be true or false, got {value!r}")
            elif key in (
                "bucket",
                "region",
                "prefix",
                "device_id",
                "addressing_style",
            ) and not isinstance(value, str):
                raise UploadConfigError(f"upload.{key} must be a string, got {value!r}")
            kwargs[key] = value
        if "bucket" not in kwargs:
            raise UploadConfigError("upload.bucket is required")
        return cls(**kwargs)

    def key_prefix(self, started: datetime.datetime | None) -> str:
        """Return the key prefix for a recording that started at ``started`` (UTC)."""
        date = started.astimezone(datetime.UTC).strftime("%Y-%m-%d") if started else "undated"
        return self.prefix.format(device_id=self.device_id, date=date).strip("/")


def load_credentials(config: UploadConfig, environ: Mapping[str, str] | None = None) -> Credentials:
    """Return the credentials the config points to.

    Raises:
        UploadConfigError: the file is missing, readable by others than its owner, not JSON or
            lacks a key; or (without a file) the environment variables are not set.
    """
    env = os.environ if environ is None else environ
    if config.credentials_file is None:
        key_id = env.get("AWS_ACCESS_KEY_ID")
        secret = env.get("AWS_SECRET_ACCESS_KEY")
        if not key_id or not secret:
            raise UploadConfigError(
                "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or "
                "upload.credentials_file"
            )
        return Credentials(key_id, secret, env.get("AWS_SESSION_TOKEN") or None)
    path = config.credentials_file
    try:
        info = path.stat()
    except OSError as exc:
        raise UploadConfigError(f"credentials file {path} cannot be read: {exc}") from exc
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        raise UploadConfigError(
            f"credentials file {path} has mode {mode:04o}; it must be readable by its owner "
            "only (chmod 600)"
        )
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UploadConfigError(f"credentials file {path} is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise UploadConfigError(f"credentials file {path} must hold a JSON object")
    for key in ("access_key_id", "secret_access_key"):
        if not isinstance(doc.get(key), str) or not doc[key]:
            raise UploadConfigError(f"credentials file {path} lacks {key!r}")
    token = doc.get("session_token")
    return Credentials(doc["access_key_id"], doc["secret_access_key"], token or None)
