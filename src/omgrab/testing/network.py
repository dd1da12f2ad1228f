"""Network-monitor helpers for users' tests."""

from __future__ import annotations

from omgrab.runtime import network_monitor


def make_snapshot(
    status: network_monitor.Status = network_monitor.Status.ONLINE,
    detail: str = "",
    changed_at: float = 0.0,
) -> network_monitor.Snapshot:
    """Build a network-monitor snapshot, e.g. to feed a fake monitor or a callback.

    Args:
        status: Network health level.
        detail: Human-readable description.
        changed_at: Monotonic timestamp of the last change.

    Returns:
        A frozen :class:`omgrab.runtime.network_monitor.Snapshot`.

    Raises:
        TypeError: If ``status`` is not a ``network_monitor.Status``.
    """
    if not isinstance(status, network_monitor.Status):
        raise TypeError(f"status must be a network_monitor.Status, got {status!r}")
    return network_monitor.Snapshot(status=status, detail=detail, changed_at=float(changed_at))
