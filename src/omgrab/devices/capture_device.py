"""Published 0.1.2 import path ``omgrab.devices.capture_device``: a thin compatibility module.

Holds omgrab 0.1.2's ``CaptureDevice`` protocol (label, connected, ready, device_type,
wait_until_ready, context manager, preview) and ``PreviewUnavailableError`` (a
``RuntimeError``), so code that checks a device against that protocol or catches that error
keeps working. This package's richer contract is :class:`omgrab.devices.base.CaptureDevice`
(it adds ``cameras``/``sensors``); every device here satisfies both. Differences: here
``preview()`` returns the latest frame (None while there is none) rather than a preview
context manager, and ``device_type`` is a :class:`~omgrab.devices.base.DeviceType`. See
``docs/compat.md``.
"""

from __future__ import annotations

import types
from typing import Any, Protocol, runtime_checkable


class PreviewUnavailableError(RuntimeError):
    """A device cannot give a preview (not configured for one, or not supported)."""


@runtime_checkable
class CaptureDevice(Protocol):
    """omgrab 0.1.2's capture-device protocol (a structural, runtime-checkable type)."""

    @property
    def label(self) -> str:
        """Human-readable device name."""
        ...

    @property
    def connected(self) -> bool:
        """True while the hardware is present."""
        ...

    @property
    def ready(self) -> bool:
        """True while the device can deliver frames."""
        ...

    @property
    def device_type(self) -> Any:
        """Device type identifier, or None when unknown."""
        ...

    def wait_until_ready(self, timeout: float | None = None) -> bool:
        """Block until ready or ``timeout`` seconds pass; return ``ready``."""
        ...

    def __enter__(self) -> Any: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> Any: ...

    def preview(self) -> Any:
        """Preview of the device (see the module docstring for the difference)."""
        ...


__all__ = ["CaptureDevice", "PreviewUnavailableError"]
