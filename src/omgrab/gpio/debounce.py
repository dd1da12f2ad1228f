"""Software debouncing of a sampled input level."""

from __future__ import annotations

import math


class Debouncer:
    """Accept a new level only after it has been sampled unchanged for ``stable_s`` seconds.

    Fed with ``(raw level, time)`` samples from any thread that holds the owner's lock; the
    kernel may debounce too, this guards against lines where it does not.

    Args:
        stable_s: How long a new raw level must persist before it is accepted (0 accepts
            every sample at once).
        initial: The level assumed before the first sample.
    """

    def __init__(self, stable_s: float, initial: bool = False) -> None:
        if not math.isfinite(stable_s) or stable_s < 0:
            raise ValueError(f"debounce period must be finite and >= 0, got {stable_s!r}")
        self._stable_s = stable_s
        self._stable = initial
        self._candidate = initial
        self._candidate_since: float | None = None

    @property
    def stable_s(self) -> float:
        """Seconds a level must persist before it is accepted."""
        return self._stable_s

    @property
    def level(self) -> bool:
        """The debounced level."""
        return self._stable

    def update(self, raw: bool, now: float) -> bool:
        """Feed one sample and return the debounced level.

        Args:
            raw: The raw level read from the line.
            now: Monotonic time of the sample.

        Returns:
            The debounced level after this sample.
        """
        if raw != self._candidate or self._candidate_since is None:
            self._candidate = raw
            self._candidate_since = now
        if self._candidate != self._stable and now - self._candidate_since >= self._stable_s:
            self._stable = self._candidate
        return self._stable
