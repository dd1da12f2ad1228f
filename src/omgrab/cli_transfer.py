"""``omgrab export``, ``omgrab upload`` and ``omgrab index``: getting data off the device.

Registered on the main ``omgrab`` Typer app by :func:`register`. A user mistake (a missing
file, a bad option value, a missing optional extra) prints one line on stderr and exits with
status 2; nothing is left half-written.
"""

from __future__ import annotations

import importlib
import json
import pathlib
import sys
from typing import Annotated, Any, NoReturn

import typer

_EXTRAS = {
    "mcap": "export",
    "foxglove_schemas_protobuf": "export",
    "boto3": "upload",
    "botocore": "upload",
    "pyarrow": "fleet",
}


def _fail(command: str, message: str) -> NoReturn:
    typer.echo(f"omgrab {command}: error: {message}", err=True)
    raise typer.Exit(2)


def _require(command: str, *modules: str) -> None:
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            extra = _EXTRAS.get(name, "dev")
            _fail(
                command,
                f"the {name!r} package is missing; install it with pip install 'omgrab[{extra}]'",
            )


def export_command(
    recording: Annotated[pathlib.Path, typer.Argument(help="The merged recording (REC.mkv).")],
    output: Annotated[pathlib.Path, typer.Option("--output", "-o", help="File to write.")],
    format: Annotated[str, typer.Option("--format", help="Output format: mcap.")] = "mcap",
    compression: Annotated[
        str, typer.Option(help="MCAP chunk compression: zstd, lz4 or none.")
    ] = "zstd",
) -> None:
    """Export a merged recording to another format (MCAP for Foxglove)."""
    if format != "mcap":
        _fail("export", f"unsupported --format {format!r} (supported: mcap)")
    _require("export", "mcap", "foxglove_schemas_protobuf")
    from omgrab.export import mcap_export

    try:
        result = mcap_export.export_mcap(recording, output, compression=compression)
    except mcap_export.ExportError as exc:
        _fail("export", str(exc))
    counts = ", ".join(f"{t.topic}: {t.messages}" for t in result.topics.values())
    typer.echo(
        f"wrote {result.output} ({result.output_bytes} bytes; {counts}; "
        f"{result.input_mb_per_s:.1f} MB/s)"
    )


def upload_command(
    recordings_dir: Annotated[
        pathlib.Path, typer.Argument(help="Directory of merged recordings (REC.mkv + REC.json).")
    ],
    config: Annotated[
        pathlib.Path | None,
        typer.Option(help="JSON file with the upload settings (UploadConfig keys)."),
    ] = None,
    bucket: Annotated[str | None, typer.Option(help="Bucket (overrides the config).")] = None,
    endpoint_url: Annotated[
        str | None, typer.Option(help="S3 endpoint URL (overrides the config).")
    ] = None,
    perception_dir: Annotated[
        pathlib.Path | None, typer.Option(help="Directory of perception session folders.")
    ] = None,
    once: Annotated[
        bool, typer.Option(help="Upload what is pending now and exit (default: keep running).")
    ] = True,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Upload every completed recording in RECORDINGS_DIR to S3-compatible storage."""
    _require("upload", "boto3", "botocore")
    from omgrab.upload import config as config_mod
    from omgrab.upload import uploader as uploader_mod

    settings: dict[str, Any] = {}
    if config is not None:
        try:
            settings = json.loads(config.read_text())
        except (OSError, ValueError) as exc:
            _fail("upload", f"cannot read --config {config}: {exc}")
        if not isinstance(settings, dict):
            _fail("upload", f"--config {config} must hold a JSON object")
    if bucket is not None:
        settings["bucket"] = bucket
    if endpoint_url is not None:
        settings["endpoint_url"] = endpoint_url
    if not recordings_dir.is_dir():
        _fail("upload", f"recordings directory {recordings_dir} does not exist")
    try:
        cfg = config_mod.UploadConfig.from_mapping(settings)
        up = uploader_mod.Uploader(cfg, recordings_dir, perception_dir=perception_dir)
    except config_mod.UploadConfigError as exc:
        _fail("upload", str(exc))
    if once:
        outcome = up.run_once()
    else:  # pragma: no cover - interactive
        up.run_forever()
        outcome = up.progress()
    if json_output:
        typer.echo(json.dumps(outcome, default=str))
    else:
        typer.echo(
            f"uploaded {outcome['uploaded_recordings']} recording(s), "
            f"{outcome['pending_recordings']} pending; last error: {outcome['last_error']}"
        )
    if outcome.get("last_error") and outcome["pending_recordings"]:
        sys.exit(1)


def index_command(
    bucket: Annotated[str, typer.Argument(help="Bucket holding the recordings.")],
    output: Annotated[pathlib.Path, typer.Option("--output", "-o", help="Parquet index file.")],
    endpoint_url: Annotated[str | None, typer.Option(help="S3 endpoint URL.")] = None,
    prefix: Annotated[str, typer.Option(help="Only manifests under this key prefix.")] = "",
    region: Annotated[str, typer.Option(help="Signing region.")] = "us-east-1",
) -> None:
    """Build (or extend) a Parquet index of every recording manifest in BUCKET."""
    _require("index", "boto3", "pyarrow")
    from omgrab.fleet import index as index_mod

    try:
        result = index_mod.update_index(
            index_mod.s3_client(endpoint_url, region), bucket, output, prefix=prefix
        )
    except index_mod.FleetIndexError as exc:
        _fail("index", str(exc))
    typer.echo(
        f"{output}: {result.total_rows} recordings ({result.added} new, "
        f"{result.skipped_invalid} invalid manifests skipped)"
    )


def register(app: typer.Typer) -> None:
    """Add the ``export``, ``upload`` and ``index`` commands to ``app``."""
    app.command("export")(export_command)
    app.command("upload")(upload_command)
    app.command("index")(index_command)
