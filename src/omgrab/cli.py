"""The ``omgrab`` command: demo, device runtime, one-off recording, recovery and inspection.

Every user mistake (a bad option value, a missing or read-only directory, a port in use, a
data directory another omgrab process is using, an unreadable manifest) ends in one line on
stderr, ``omgrab: error: ...``, and exit status 2; tracebacks are kept for bugs. ``run``,
``record``, ``merge`` and ``recover`` hold the spool's instance lock
(:mod:`omgrab.app.instance_lock`) while they run.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import pathlib
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from typing import Annotated, Any, NoReturn

import typer
from rich import console as rich_console
from rich import live as rich_live
from rich import table as rich_table

import omgrab
from omgrab import cli_transfer, devices
from omgrab.app import config as config_mod
from omgrab.app import demo as demo_mod
from omgrab.app import (
    device_app,
    inspect_summary,
    instance_lock,
    mqtt_console,
    record_once,
    rig_build,
    rig_config,
)
from omgrab.app.web import security as web_security
from omgrab.recording import manifest as manifest_mod
from omgrab.recording import merge as merge_mod
from omgrab.recording import recovery
from omgrab.upload import config as upload_config

app = typer.Typer(add_completion=False, help="omgrab: capture-rig SDK and device runtime.")
console = rich_console.Console(soft_wrap=True)
err_console = rich_console.Console(stderr=True)

#: Exit status of every user mistake.
USAGE_EXIT = 2


class UserError(Exception):
    """A mistake of the user's; the message is shown as one line, exit status 2."""


def _fail(message: str) -> NoReturn:
    raise UserError(message)


def _version_callback(value: bool) -> None:
    if value:
        console.print(f"omgrab {omgrab.__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version_callback, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """omgrab: capture-rig SDK and device runtime."""


def _logging(verbose: bool) -> None:
    # Under systemd (JOURNAL_STREAM set) the journal stamps each line itself.
    stamp = "" if os.environ.get("JOURNAL_STREAM") else "%(asctime)s "
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format=stamp + "%(levelname)s %(name)s: %(message)s",
    )


def _check_faults(spec: str | None) -> None:
    if spec is None:
        return
    try:
        devices.parse_faults(spec)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--faults") from exc


def _check_positive(value: float, option: str) -> None:
    if not value > 0:
        raise typer.BadParameter(f"must be > 0, got {value:g}", param_hint=option)


def _check_port(port: int, option: str) -> None:
    if not 0 <= port <= 65535:
        raise typer.BadParameter(f"must be a TCP port 0..65535, got {port}", param_hint=option)


def _check_port_free(host: str, port: int) -> None:
    """Fail now, with the reason, if the dashboard could not listen on ``host:port``."""
    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        _fail(f"dashboard host {host!r} cannot be resolved: {exc}")
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            _fail(f"dashboard cannot listen on {host}:{port}: {exc.strerror or exc}")


def _prepare_data_dir(data_dir: pathlib.Path) -> None:
    """Create the data directory tree, failing with one line if it cannot be written."""
    try:
        for directory in (data_dir, data_dir / "spool", data_dir / "recordings"):
            directory.mkdir(parents=True, exist_ok=True)
        probe = data_dir / "spool" / f".omgrab-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        _fail(f"data directory {data_dir} is not writable: {exc.strerror or exc}")


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.1f} {unit}" if unit != "B" else f"{n} B"
        value /= 1024
    return f"{n} B"


@contextlib.contextmanager
def _spool_lock(spool: pathlib.Path) -> Iterator[None]:
    """Hold the spool's instance lock; a read-only spool needs none (nobody can write it)."""
    lock = instance_lock.InstanceLock(spool)
    try:
        lock.acquire()
    except OSError as exc:
        if exc.errno != errno.EROFS:
            _fail(f"cannot lock {spool}: {exc.strerror or exc}")
    try:
        yield
    finally:
        lock.release()


def _simulated_config(
    data_dir: pathlib.Path, chunk_length: float, faults: str | None, small: bool, **extra: Any
) -> config_mod.AppConfig:
    """Check the common options and build the config of a local simulated-rig job."""
    _check_positive(chunk_length, "--chunk-length")
    _check_faults(faults)
    _prepare_data_dir(data_dir)
    config = config_mod.AppConfig(
        data_dir=data_dir,
        chunk_length_s=chunk_length,
        faults=faults,
        network_check_host="localhost",
        network_check_port=9,
        **extra,
    )
    if small:
        config.rgb_size = (320, 200)
        config.depth_size = (160, 100)
    return config


@app.command()
def demo(
    seconds: Annotated[float, typer.Option(help="Length of the recording.")] = 6.0,
    data_dir: Annotated[pathlib.Path, typer.Option(help="Where everything is written.")] = (
        pathlib.Path("demo-output")
    ),
    chunk_length: Annotated[float, typer.Option(help="Chunk length in seconds.")] = 2.0,
    small: Annotated[bool, typer.Option(help="320x200 streams instead of 1280x800.")] = False,
    faults: Annotated[
        str | None,
        typer.Option(help="Fault spec for the simulated device, e.g. 'stall:depth@2+1'."),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Record a short RGB + depth + IMU clip on simulated hardware with perception running."""
    _logging(verbose)
    _check_positive(seconds, "--seconds")
    config = _simulated_config(data_dir, chunk_length, faults, small, device_id="omgrab-demo")
    console.print(
        f"[bold]omgrab {omgrab.__version__} demo[/]: simulated device "
        f"(RGB {config.rgb_size[0]}x{config.rgb_size[1]}, depth "
        f"{config.depth_size[0] if config.depth_size else 0}x"
        f"{config.depth_size[1] if config.depth_size else 0} @ {config.fps:g} fps, IMU "
        f"{config.imu_rate_hz:g} Hz), {seconds:g} s in {chunk_length:g} s chunks"
    )
    try:
        report = demo_mod.run_demo(config, seconds)
    except demo_mod.DemoError as exc:
        console.print(f"[red]demo failed:[/] {exc}")
        raise typer.Exit(1) from exc
    _print_report(report)


def _print_report(report: demo_mod.DemoReport) -> None:
    if report.recovered:
        console.print(f"recovered {len(report.recovered)} interrupted recording(s) first:")
        for path in report.recovered:
            console.print(f"  {path}")
    console.print(
        f"\n[bold green]recording[/] {report.recording} ({_size(report.recording_bytes)}, "
        f"{report.duration_s:.2f} s, {report.chunks} chunks merged)"
    )
    console.print(f"manifest  {report.manifest}")
    console.print(f"stop reason: {report.stop_reason}")
    streams = rich_table.Table(
        "track", "codec", "frames in file", "first ms", "last ms", "dropped", "missed"
    )
    for s in report.streams:
        streams.add_row(
            s.name,
            s.codec,
            str(s.packets),
            str(s.first_ms),
            str(s.last_ms),
            str(s.dropped),
            "?" if s.missed is None else str(s.missed),
        )
    console.print(streams)
    console.print(f"[bold green]perception output[/] {report.output_session}")
    out = rich_table.Table("file", "content")
    out.add_row("detections.jsonl", f"{report.detections} detections")
    out.add_row("frames/*.jpg", f"{report.frames} JPEG frames, {_size(report.frame_bytes)}")
    out.add_row("health.jsonl", f"{report.health_lines} health lines")
    out.add_row("gimbal.log", f"{report.gimbal_lines} gimbal commands")
    console.print(out)
    console.print(f"device status  {report.status_file}")
    console.print(f"final state: {report.final_state}; output write errors: {report.output_errors}")


def _build_app(config: config_mod.AppConfig) -> device_app.DeviceApp:
    try:
        return device_app.DeviceApp(config)
    except OSError as exc:
        _fail(f"cannot set up the device: {exc}")


@app.command()
def run(
    config_file: Annotated[
        pathlib.Path | None,
        typer.Option("--config", help="Rig configuration (TOML); none: the simulated rig."),
    ] = None,
    data_dir: Annotated[pathlib.Path | None, typer.Option(help="[rig] data_dir.")] = None,
    dashboard_port: Annotated[
        int | None, typer.Option(help="[dashboard] port; 0 picks a free port.")
    ] = None,
    dashboard_host: Annotated[str | None, typer.Option(help="[dashboard] host.")] = None,
    mqtt_host: Annotated[str | None, typer.Option(help="[mqtt] host.")] = None,
    mqtt_port: Annotated[int | None, typer.Option(help="[mqtt] port.")] = None,
    trigger_file: Annotated[
        pathlib.Path | None, typer.Option(help="[gpio] trigger_file: touch it to press.")
    ] = None,
    chunk_length: Annotated[float | None, typer.Option(help="[recording] chunk_length_s.")] = None,
    faults: Annotated[str | None, typer.Option(help="[device] faults (simulated).")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run the device runtime until SIGINT/SIGTERM (one instance per data directory).

    Settings come from the config file, then OMGRAB_<SECTION>_<KEY> variables, then options.
    """
    _logging(verbose)
    if dashboard_port is not None:
        _check_port(dashboard_port, "--dashboard-port")
    if mqtt_port is not None:
        _check_port(mqtt_port, "--mqtt-port")
    if chunk_length is not None:
        _check_positive(chunk_length, "--chunk-length")
    _check_faults(faults)
    options: dict[str, dict[str, Any]] = {}
    for section, key, value in (
        ("rig", "data_dir", data_dir),
        ("dashboard", "port", dashboard_port),
        ("dashboard", "host", dashboard_host),
        ("mqtt", "host", mqtt_host),
        ("mqtt", "port", mqtt_port),
        ("gpio", "trigger_file", trigger_file),
        ("recording", "chunk_length_s", chunk_length),
        ("device", "faults", faults),
    ):
        if value is not None:
            options.setdefault(section, {})[key] = (
                str(value) if isinstance(value, pathlib.Path) else value
            )
    rig = _load_rig(config_file, options)
    _prepare_data_dir(pathlib.Path(rig.rig.data_dir))
    if rig.dashboard.enabled:
        _check_port_free(rig.dashboard.host, rig.dashboard.port)
    device = _build_rig_app(rig)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        try:
            device.start()
        except (
            web_security.InsecureBindError,
            web_security.TokenFileError,
            mqtt_console.MqttOptionsError,
        ) as exc:
            _fail(str(exc))
        console.print(
            f"omgrab {omgrab.__version__} running (pid {os.getpid()}, {rig.device.type} device, "
            f"data in {rig.rig.data_dir}); dashboard at {device.dashboard_url}; Ctrl-C to stop",
            highlight=False,
        )
        stop.wait()
    finally:
        device.stop()


def _build_rig_app(rig: rig_config.RigConfig, perception: bool = True) -> device_app.DeviceApp:
    try:
        return rig_build.build_app(rig, perception=perception)
    except upload_config.UploadConfigError as exc:
        _fail(f"cannot set up the uploader: {exc}")
    except (OSError, ValueError, ImportError) as exc:
        _fail(f"cannot set up the {rig.device.type} device: {exc}")


def _load_rig(
    config_file: pathlib.Path | None, options: dict[str, dict[str, Any]] | None = None
) -> rig_config.RigConfig:
    try:
        return rig_config.load(config_file, overrides=options)
    except rig_config.ConfigError as exc:
        _fail(str(exc))


config_app = typer.Typer(add_completion=False, help="The rig configuration file (TOML).")
app.add_typer(config_app, name="config")


@config_app.callback(invoke_without_command=True)
def config(
    print_default: Annotated[
        bool, typer.Option("--print-default", help="Print the default file with comments.")
    ] = False,
    check: Annotated[
        pathlib.Path | None,
        typer.Option("--check", help="Validate FILE (with OMGRAB_* overrides) and say so."),
    ] = None,
) -> None:
    """Print the default configuration or check a configuration file."""
    if print_default == (check is not None):
        raise typer.BadParameter("give exactly one of --print-default and --check FILE")
    if print_default:
        sys.stdout.write(rig_config.default_toml())
        return
    assert check is not None
    try:
        rig = rig_config.load(check)
    except rig_config.ConfigError as exc:
        for problem in exc.problems:
            sys.stderr.write(f"omgrab: error: {problem}\n")
        raise typer.Exit(USAGE_EXIT) from exc
    console.print(
        f"{check}: valid ({rig.device.type} device, data in {rig.rig.data_dir}, "
        f"gpio {rig.gpio.backend}, battery {rig.battery.type})",
        highlight=False,
    )


def _progress_table(progress: record_once.Progress, duration: float) -> rich_table.Table:
    table = rich_table.Table(
        "stream",
        "frames",
        "dropped",
        "backlog",
        title=f"recording {progress.elapsed_s:5.1f} / {duration:g} s   "
        f"disk free {_size(progress.disk_free_bytes)}",
    )
    for s in progress.streams:
        table.add_row(s.name, str(s.frames), str(s.dropped), str(s.backlog))
    return table


@app.command()
def record(
    duration: Annotated[float, typer.Option(help="Seconds to record.")],
    config_file: Annotated[
        pathlib.Path | None,
        typer.Option("--config", help="Record with this rig's devices (TOML); no dashboard."),
    ] = None,
    data_dir: Annotated[pathlib.Path, typer.Option()] = pathlib.Path("omgrab-data"),
    chunk_length: Annotated[float, typer.Option()] = 60.0,
    small: Annotated[bool, typer.Option(help="320x200 streams instead of 1280x800.")] = False,
    faults: Annotated[str | None, typer.Option()] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Record once for DURATION seconds with a live progress display, then print the result."""
    _logging(verbose)
    _check_positive(duration, "--duration")
    if config_file is not None:
        rig = _load_rig(config_file, {"dashboard": {"enabled": False}})
        _prepare_data_dir(pathlib.Path(rig.rig.data_dir))
        device = _build_rig_app(rig, perception=False)
    else:
        config = _simulated_config(data_dir, chunk_length, faults, small, perception=False)
        device = _build_app(config)
    with rich_live.Live(console=console, transient=False, auto_refresh=False) as live:

        def show(progress: record_once.Progress) -> None:
            live.update(_progress_table(progress, duration), refresh=True)

        try:
            path = record_once.record_once(device, duration, on_progress=show)
        except record_once.RecordError as exc:
            err_console.print(f"omgrab: recording failed: {exc}", highlight=False)
            raise typer.Exit(1) from exc
    console.print()
    _print_summary(inspect_summary.summarize(path))


@app.command()
def recover(
    spool_dir: pathlib.Path,
    output_dir: pathlib.Path,
    cleanup: Annotated[bool, typer.Option(help="Delete spool data once merged.")] = False,
) -> None:
    """Merge every recording a crash left in SPOOL_DIR into OUTPUT_DIR."""
    _logging(True)
    if not spool_dir.is_dir():
        _fail(f"spool directory {spool_dir} does not exist")
    with _spool_lock(spool_dir):
        output_dir.mkdir(parents=True, exist_ok=True)
        report = recovery.recover_orphans(spool_dir, output_dir, cleanup=cleanup)
    for path in report.merged:
        console.print(f"recovered {path}")
    for directory in report.empty:
        why = report.removed_empty.get(directory)
        state = f"removed: {why}" if why is not None else "kept"
        console.print(f"nothing to salvage in {directory} ({state})", highlight=False)
    if not (report.merged or report.empty or report.failed):
        console.print("nothing to recover")
    for directory, exc in report.failed.items():
        err_console.print(
            f"omgrab: cannot recover {directory} (its spool is kept): {type(exc).__name__}: {exc}",
            highlight=False,
            soft_wrap=True,
        )
    if report.failed:
        raise typer.Exit(1)


@app.command()
def merge(
    recording_dir: pathlib.Path,
    output: pathlib.Path,
    force: Annotated[bool, typer.Option(help="Overwrite an existing merged file.")] = False,
) -> None:
    """Merge one spool recording directory into OUTPUT (an .mkv path or an existing directory)."""
    if not recording_dir.is_dir():
        _fail(f"recording directory {recording_dir} does not exist")
    if not output.is_dir():
        if output.suffix.lower() != ".mkv":
            _fail(f"output {output} is neither an existing directory nor a path ending in .mkv")
        if not output.parent.is_dir():
            _fail(f"output directory {output.parent} does not exist")
    target = merge_mod.resolve_output_path(output, recording_dir.name)
    if not force:
        for existing in (target, manifest_mod.manifest_path_for(target)):
            if existing.exists():
                _fail(f"{existing} already exists (use --force to overwrite)")
    with _spool_lock(recording_dir.parent):
        try:
            path = merge_mod.merge_recording_chunks(recording_dir, target)
        except merge_mod.MergeError as exc:
            _fail(f"cannot merge {recording_dir}: {exc}")
    console.print(f"merged {path}", highlight=False)


def _print_summary(summary: inspect_summary.RecordingSummary) -> None:
    console.print(
        f"[bold]{summary.recording_id or summary.path}[/]  {summary.duration_s:.2f} s, "
        f"{_size(summary.size_bytes)} (from {summary.source})",
        highlight=False,
    )
    console.print(
        f"file {summary.path}\nstarted {summary.started_at or 'unknown'}; "
        f"stop reason {summary.stop_reason or 'unknown'}; "
        f"complete {summary.complete if summary.complete is not None else 'unknown'}; "
        f"recovered {summary.recovered if summary.recovered is not None else 'unknown'}",
        highlight=False,
    )
    table = rich_table.Table(
        "track", "kind", "codec", "frames", "first ms", "last ms", "s", "gaps", "dropped"
    )
    for t in summary.tracks:
        longest = f" (max {t.longest_gap_ms} ms)" if t.gaps else ""
        table.add_row(
            t.name,
            t.kind,
            t.codec,
            str(t.frames),
            str(t.first_ms),
            str(t.last_ms),
            f"{t.duration_s:.2f}",
            f"{t.gaps}{longest}",
            "unknown" if t.dropped is None else str(t.dropped),
        )
    console.print(table)
    for note in summary.notes:
        console.print(f"note: {note}", highlight=False)


@app.command()
def inspect(
    recording: pathlib.Path,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Summarize a merged recording (from its manifest, or the MKV's own tags without one)."""
    try:
        summary = inspect_summary.summarize(recording)
    except inspect_summary.InspectError as exc:
        _fail(str(exc))
    if as_json:
        sys.stdout.write(json.dumps(summary.to_dict(), indent=2) + "\n")
    else:
        _print_summary(summary)


@app.command()
def status(
    data_dir: Annotated[pathlib.Path, typer.Option()] = pathlib.Path("omgrab-data"),
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw status JSON.")] = False,
) -> None:
    """Show the live status file (``<data-dir>/status.json``) of a running device."""
    path = data_dir / "status.json"
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        _fail(f"no status file at {path} (is omgrab running with --data-dir {data_dir}?)")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        _fail(f"status file {path} is unreadable: {exc}")
    if not isinstance(doc, dict):
        _fail(f"status file {path} is not a status object")
    if as_json:
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return
    holder = instance_lock.read_holder_pid(data_dir / "spool" / instance_lock.LOCK_NAME)
    recording = doc.get("recording") or {}
    storage = doc.get("storage") or {}
    battery = doc.get("battery")
    lines = [
        f"device {doc.get('device_id')} (omgrab {doc.get('software_version')}), "
        f"updated {doc.get('updated_at', 'unknown')}",
        f"state {doc.get('state_machine_state')}"
        + (f", held by pid {holder}" if holder is not None else ""),
        "recording "
        + (
            f"{recording.get('recording_id')} for {recording.get('duration_seconds')} s"
            if recording.get("is_recording")
            else "no"
        ),
        f"healthy {doc.get('device_healthy')}"
        + (f": {doc['device_error']}" if doc.get("device_error") else ""),
        f"storage free {_size(int(storage.get('available_bytes') or 0))} of "
        f"{_size(int(storage.get('total_bytes') or 0))}",
        f"network {(doc.get('network') or {}).get('status')}",
        "battery "
        + (f"{battery.get('percent')} %, {battery.get('voltage_v')} V" if battery else "none"),
    ]
    for line in lines:
        console.print(line, highlight=False)


cli_transfer.register(app)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``omgrab`` console script: user mistakes exit 2 with one line."""
    try:
        code = app(argv, standalone_mode=False, prog_name="omgrab")
    except typer.TyperException as exc:
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        sys.stderr.write(f"omgrab: error: {message}\n")
        sys.exit(getattr(exc, "exit_code", USAGE_EXIT) or USAGE_EXIT)
    except (UserError, instance_lock.InstanceLockedError) as exc:
        sys.stderr.write(f"omgrab: error: {exc}\n")
        sys.exit(USAGE_EXIT)
    except KeyboardInterrupt:
        sys.stderr.write("omgrab: interrupted\n")
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
