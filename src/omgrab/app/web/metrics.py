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
        recorder = doc.get("recorder") or {}
        current = recorder.get("current") or {}
        streams: dict[str, Any] = current.get("streams") or {}
        for family, name, text, key in _PER_STREAM:
            yield _labelled(
                family(name, text, labels=["stream"]),
                {stream: values.get(key) for stream, values in streams.items()},
            )
        storage = doc.get("storage") or {}
        yield from _scalars(storage, _STORAGE)
        state = core.StateSetMetricFamily("omgrab_state", "Workflow state", labels=[])
        current_state = doc.get("state")
        state.add_metric([], {s.value: s.value == current_state for s in states.WorkflowState})
        yield state
        yield core.GaugeMetricFamily(
            "omgrab_recording",
            "1 while a recording is active",
            value=1.0 if recorder.get("is_recording") else 0.0,
        )
        battery = doc.get("battery") or {}
        if battery:
            yield core.GaugeMetricFamily(
                "omgrab_battery_percent", "Battery charge", value=float(battery.get("percent", 0))
            )
        errors = core.CounterMetricFamily(
            "omgrab_write_errors", "Write errors by component", labels=["component"]
        )
        yield _labelled(
            errors,
            {
                "output": (doc.get("output") or {}).get("error_count"),
                "recording": len(current.get("errors") or []),
                "status_snapshot": doc.get("snapshot_errors"),
            },
        )
        yield from upload_families(doc.get("upload"))
        if self._counters is not None:
            console = core.CounterMetricFamily(
                "omgrab_console_events", "Console events by kind", labels=["kind"]
            )
            yield _labelled(console, self._counters())


_Family = type[core.CounterMetricFamily] | type[core.GaugeMetricFamily]
_C = core.CounterMetricFamily
_G = core.GaugeMetricFamily

# (family, name, help, key): one sample per stream of the current recording.
_PER_STREAM: tuple[tuple[_Family, str, str, str], ...] = (
    (
        _C,
        "omgrab_frames_written",
        "Frames written to chunk files, current recording",
        "frames_written",
    ),
    (
        _C,
        "omgrab_frames_dropped",
        "Frames dropped (writer and capture), current recording",
        "dropped",
    ),
    (
        _C,
        "omgrab_frames_missed",
        "Frames the device lost before capture, current recording",
        "missed",
    ),
    (_C, "omgrab_capture_gaps", "Capture gaps seen, current recording", "gaps"),
    (_G, "omgrab_encoder_backlog", "Items waiting for the encoder", "backlog"),
)

# (family, name, help, key): one unlabelled sample from a section of the status document.
_STORAGE: tuple[tuple[_Family, str, str, str], ...] = (
    (_G, "omgrab_disk_free_bytes", "Bytes available on the data filesystem", "available_bytes"),
    (_G, "omgrab_disk_total_bytes", "Size of the data filesystem", "total_bytes"),
    (_C, "omgrab_detections_logged", "Detections logged by the OutputManager", "detections_logged"),
)
_UPLOAD: tuple[tuple[_Family, str, str, str], ...] = (
    (_G, "omgrab_upload_pending_bytes", "Bytes waiting to be uploaded", "pending_bytes"),
    (_G, "omgrab_upload_pending_recordings", "Recordings not yet uploaded", "pending_recordings"),
    (
        _G,
        "omgrab_upload_uploaded_recordings",
        "Local recordings uploaded and verified remotely",
        "uploaded_recordings",
    ),
    (
        _C,
        "omgrab_upload_uploaded_bytes",
        "Bytes sent to the object store by this process",
        "bytes_sent",
    ),
    (_C, "omgrab_upload_errors", "Failed upload passes", "errors"),
)


def _scalars(
    section: dict[str, Any], table: tuple[tuple[_Family, str, str, str], ...]
) -> Iterator[core.Metric]:
    """One family per row of ``table``, valued ``section[key]`` (missing or None: 0)."""
    for family, name, text, key in table:
        yield family(name, text, value=float(section.get(key) or 0))


def _labelled(
    family: core.CounterMetricFamily | core.GaugeMetricFamily, samples: dict[str, Any]
) -> core.Metric:
    """``family`` with one sample per ``label value: value`` (None: 0); returns ``family``."""
    for label, value in samples.items():
        family.add_metric([label], float(value or 0))
    return family


UPLOAD_STATES = ("idle", "uploading", "paused", "error", "stopped")


def upload_families(upload: dict[str, Any] | None) -> Iterator[core.Metric]:
    """The uploader's progress and backlog; nothing at all when the device has no uploader.

    Args:
        upload: The status document's ``upload`` section (None without an uploader).
    """
    if not isinstance(upload, dict):
        return
    yield from _scalars(upload, _UPLOAD)
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
