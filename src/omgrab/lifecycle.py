"""The open/close lifecycle shared by cameras, sensors and capture devices."""

from __future__ import annotations

import abc
import threading
import types
from typing import Self


class OpenCloseContext(abc.ABC):
    """A context manager that calls ``open()`` on entry and ``close()`` on exit."""

    @abc.abstractmethod
    def open(self) -> None:
        """Open (idempotent)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Close (idempotent)."""

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self.close()


class Openable(OpenCloseContext):
    """Something opened once and closed once; a context manager that does both.

    ``open()`` and ``close()`` are idempotent and thread-safe; subclasses implement ``_open``
    and ``_close``, which run under the lock and at most once per open/close cycle.
    """

    def __init__(self) -> None:
        self._open_lock = threading.Lock()
        self._is_open = False

    @property
    def is_open(self) -> bool:
        """True between ``open()`` and ``close()``."""
        return self._is_open

    def open(self) -> None:
        """Open (idempotent)."""
        with self._open_lock:
            if self._is_open:
                return
            self._open()
            self._is_open = True

    def close(self) -> None:
        """Close (idempotent)."""
        with self._open_lock:
            if not self._is_open:
                return
            self._is_open = False
            self._close()

    @abc.abstractmethod
    def _open(self) -> None:
        """Acquire the underlying resource."""

    @abc.abstractmethod
    def _close(self) -> None:
        """Release the underlying resource."""
