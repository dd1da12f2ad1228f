"""The ``omgrab`` command: demo, device runtime, recovery and inspection."""

from __future__ import annotations

import json
import logging
import pathlib
import signal
import threading
from typing import Annotated

import typer
from rich import console as rich_console
from rich import table as rich_table

import omgrab
from omgrab import devices
from omgrab.app import config as config_mod
from omgrab.app import demo as demo_mod
from omgrab.app import device_app
from omgrab.recording import merge as merge_mod
from omgrab.recording import recovery

app = typer.Typer(add_completion=False, help="omgrab: capture-rig SDK and device runtime.")
console = rich_console.Console()


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _check_faults(spec: str | None) -> None:
    if spec is None:
        return
    try:
        devices.parse_faults(spec)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--faults") from exc


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.1f} {unit}" if unit != "B" else f"{n} B"
        value /= 1024
    return f"{n} B"


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
    _check_faults(faults)
    config = config_mod.AppConfig(
        data_dir=data_dir,
        device_id="omgrab-demo",
        chunk_length_s=chunk_length,
        faults=faults,
        network_check_host="localhost",
        network_check_port=9,
    )
    if small:
        config.rgb_size = (320, 200)
        config.depth_size = (160, 100)
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
    streams = rich_table.Table("track", "codec", "frames in file", "first ms", "last ms", "dropped")
    for s in report.streams:
        streams.add_row(
            s.name, s.codec, str(s.packets), str(s.first_ms), str(s.last_ms), str(s.dropped)
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


@app.command()
def run(
    data_dir: Annotated[pathlib.Path, typer.Option()] = pathlib.Path("omgrab-data"),
    dashboard_port: Annotated[int, typer.Option(help="0 picks a free port.")] = 8080,
    dashboard_host: Annotated[str, typer.Option()] = "127.0.0.1",
    mqtt_host: Annotated[str | None, typer.Option()] = None,
    mqtt_port: Annotated[int, typer.Option()] = 1883,
    trigger_file: Annotated[
        pathlib.Path | None, typer.Option(help="Touch this file to press the button.")
    ] = None,
    chunk_length: Annotated[float, typer.Option()] = 60.0,
    faults: Annotated[str | None, typer.Option()] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run the device runtime (simulated hardware) until SIGINT/SIGTERM."""
    _logging(verbose)
    _check_faults(faults)
    config = config_mod.AppConfig(
        data_dir=data_dir,
        dashboard_port=dashboard_port,
        dashboard_host=dashboard_host,
        mqtt_host=mqtt_host,
        mqtt_port=mqtt_port,
        trigger_file=trigger_file,
        chunk_length_s=chunk_length,
        faults=faults,
    )
    device = device_app.DeviceApp(config)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    device.start()
    console.print(f"omgrab running; dashboard at {device.dashboard_url}; Ctrl-C to stop")
    try:
        stop.wait()
    finally:
        device.stop()


@app.command()
def recover(
    spool_dir: pathlib.Path,
    output_dir: pathlib.Path,
    cleanup: Annotated[bool, typer.Option(help="Delete spool data once merged.")] = False,
) -> None:
    """Merge every recording a crash left in SPOOL_DIR into OUTPUT_DIR."""
    _logging(True)
    paths = recovery.merge_orphaned_chunks(spool_dir, output_dir, cleanup=cleanup)
    for path in paths:
        console.print(f"recovered {path}")
    if not paths:
        console.print("nothing to recover")


@app.command()
def merge(recording_dir: pathlib.Path, output: pathlib.Path) -> None:
    """Merge one spool recording directory into OUTPUT (an .mkv path or a directory)."""
    path = merge_mod.merge_recording_chunks(recording_dir, output)
    console.print(f"merged {path}")


@app.command()
def inspect(recording: pathlib.Path) -> None:
    """Print the manifest of a merged recording."""
    manifest = recording.with_suffix(".json")
    if not manifest.exists():
        console.print(f"[red]no manifest beside {recording}[/] (expected {manifest})")
        raise typer.Exit(1)
    console.print_json(json.dumps(json.loads(manifest.read_text())))


def main() -> None:
    """Entry point of the ``omgrab`` console script."""
    app()


if __name__ == "__main__":
    main()
