"""Perception output: the OutputManager, its writers, operator sinks and the storage ladder.

Public names::

    OutputManager, OutputConfig, ColorOrder
    Detection, DetectionLogEntry, HealthLogEntry, StorageStatus, WriteError, InvalidEntryError
    OperatorReport, OperatorSink, CallbackSink, QueueSink, MqttSink, NdjsonHub
    read_jsonl, iter_jsonl
"""

from omgrab.output.config import ColorOrder, OutputConfig
from omgrab.output.manager import OutputManager
from omgrab.output.mqtt_sink import MqttSink
from omgrab.output.ndjson_hub import NdjsonHub
from omgrab.output.operator import (
    CallbackSink,
    OperatorDelivery,
    OperatorReport,
    OperatorSink,
    QueueSink,
)
from omgrab.output.serialize import iter_jsonl, read_jsonl
from omgrab.output.types import (
    Detection,
    DetectionLogEntry,
    HealthLogEntry,
    InvalidEntryError,
    StorageStatus,
    WriteError,
)

__all__ = [
    "CallbackSink",
    "ColorOrder",
    "Detection",
    "DetectionLogEntry",
    "HealthLogEntry",
    "InvalidEntryError",
    "MqttSink",
    "NdjsonHub",
    "OperatorDelivery",
    "OperatorReport",
    "OperatorSink",
    "OutputConfig",
    "OutputManager",
    "QueueSink",
    "StorageStatus",
    "WriteError",
    "iter_jsonl",
    "read_jsonl",
]
