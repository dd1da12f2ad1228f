"""``GET /metrics``: the status snapshot in Prometheus text format (``prometheus_client``).

A custom collector turns the newest :class:`~omgrab.app.web.snapshot.StatusSnapshot` document
into metric families at scrape time, so a scrape never touches the recorder or the disk.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import exposition, registry
from prometheus_client import metrics_core as core
from starlette import requests, responses, routing

from omgrab.workflows import states

StatusSource = Callable[[], dict[str, Any]]
Counters = Callable[[], dict[str, float]]


class ConsoleCollector(registry.Collector):
    """Metric families built from the status document.

    Args:
        status: Returns the newest status document.
        counters: Returns extra console counters (refused requests, live/remux errors).
    """

    def __init__(self, status: StatusSource, counters: Counters | None = None) -> None:
        self._status = status
        self._counters = counters

    def collect(self) -> Iterator[core.Metric]:
        """Build every family from one document."""
        doc = self._status()
        current = (doc.get("recorder") or {}).get("current") or {}
        streams: dict[str, Any] = current.get("streams") or {}
        per_stream = (
            ("omgrab_frames_written", "Frames written to chunk files", "frames_written"),
            ("omgrab_frames_dropped", "Frames dropped (writer and capture)", "dropped"),
            ("omgrab_frames_missed", "Frames the device lost before capture", "missed"),
            ("omgrab_capture_gaps", "Capture gaps seen", "gaps"),
        )
        for name, text, key in per_stream:
            family = core.CounterMetricFamily(name, text + ", current recording", labels=["stream"])
            for stream, values in streams.items():
                family.add_metric([stream], float(values.get(key) or 0))
            yield family
        backlog = core.GaugeMetricFamily(
            "omgrab_encoder_backlog", "Items waiting for the encoder", labels=["stream"]
        )
        for stream, values in streams.items():
            backlog.add_metric([stream], float(values.get("backlog") or 0))
        yield backlog
        storage = doc.get("storage") or {}
        yield core.GaugeMetricFamily(
            "omgrab_disk_free_bytes",
            "Bytes available on the data filesystem",
            value=float(storage.get("available_bytes") or 0),
        )
        yield core.GaugeMetricFamily(
            "omgrab_disk_total_bytes",
            "Size of the data filesystem",
            value=float(storage.get("total_bytes") or 0),
        )
        state = core.StateSetMetricFamily("omgrab_state", "Workflow state", labels=[])
        current_state = doc.get("state")
        state.add_metric([], {s.value: s.value == current_state for s in states.WorkflowState})
        yield state
        yield core.GaugeMetricFamily(
            "omgrab_recording",
            "1 while a recording is active",
            value=1.0 if (doc.get("recorder") or {}).get("is_recording") else 0.0,
        )
        battery = doc.get("battery") or {}
        if battery:
            yield core.GaugeMetricFamily(
                "omgrab_battery_percent", "Battery charge", value=float(battery.get("percent", 0))
            )
        yield core.CounterMetricFamily(
            "omgrab_detections_logged",
            "Detections logged by the OutputManager",
            value=float(storage.get("detections_logged") or 0),
        )
        errors = core.CounterMetricFamily(
            "omgrab_write_errors", "Write errors by component", labels=["component"]
        )
        errors.add_metric(["output"], float((doc.get("output") or {}).get("error_count") or 0))
        errors.add_metric(["recording"], float(len(current.get("errors") or [])))
        errors.add_metric(["status_snapshot"], float(doc.get("snapshot_errors") or 0))
        yield errors
        yield from upload_families(doc.get("upload"))
        if self._counters is not None:
            console = core.CounterMetricFamily(
                "omgrab_console_events", "Console events by kind", labels=["kind"]
            )
            for kind, value in self._counters().items():
                console.add_metric([kind], float(value))
            yield console


UPLOAD_STATES = ("idle", "uploading", "paused", "error", "stopped")


def upload_families(upload: dict[str, Any] | None) -> Iterator[core.Metric]:
    """The uploader's progress and backlog; nothing at all when the device has no uploader.

    Args:
        upload: The status document's ``upload`` section (None without an uploader).
    """
    if not isinstance(upload, dict):
        return
    gauges = (
        ("omgrab_upload_pending_bytes", "Bytes waiting to be uploaded", "pending_bytes"),
        ("omgrab_upload_pending_recordings", "Recordings not yet uploaded", "pending_recordings"),
        (
            "omgrab_upload_uploaded_recordings",
            "Local recordings uploaded and verified remotely",
            "uploaded_recordings",
        ),
    )
    for name, text, key in gauges:
        yield core.GaugeMetricFamily(name, text, value=float(upload.get(key) or 0))
    yield core.CounterMetricFamily(
        "omgrab_upload_uploaded_bytes",
        "Bytes sent to the object store by this process",
        value=float(upload.get("bytes_sent") or 0),
    )
    yield core.CounterMetricFamily(
        "omgrab_upload_errors",
        "Failed upload passes",
        value=float(upload.get("errors") or 0),
    )
    for name, text, key in (
        ("omgrab_upload_eta_seconds", "Estimated time to upload the backlog", "eta_s"),
        ("omgrab_upload_rate_bytes_per_second", "Measured upload rate", "rate_bytes_per_s"),
    ):
        if upload.get(key) is not None:  # unknown until a part was sent: no sample
            yield core.GaugeMetricFamily(name, text, value=float(upload[key]))
    state = core.StateSetMetricFamily("omgrab_upload_state", "Uploader state", labels=[])
    current = upload.get("state")
    state.add_metric([], {s: s == current for s in UPLOAD_STATES})
    yield state
    paused = core.GaugeMetricFamily(
        "omgrab_upload_paused", "1 while the uploader waits on a gate", labels=["reason"]
    )
    if current == "paused":
        paused.add_metric([str(upload.get("pause_reason") or "unknown")], 1.0)
    yield paused


def routes(collector: ConsoleCollector) -> list[routing.Route]:
    """The ``/metrics`` route over its own registry."""
    reg = registry.CollectorRegistry(auto_describe=False)
    reg.register(collector)

    async def scrape(_request: requests.Request) -> responses.Response:
        return responses.Response(
            exposition.generate_latest(reg), media_type=exposition.CONTENT_TYPE_LATEST
        )

    return [routing.Route("/metrics", scrape)]
