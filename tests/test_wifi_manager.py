from __future__ import annotations

import threading

import pytest

from omgrab.runtime import wifi_connect


class FakeService:
    """Injected functions recording their calls; completion is triggered by the test."""

    def __init__(self, start_result: bool = True) -> None:
        self.running = False
        self.start_result = start_result
        self.start_calls: list[bool] = []
        self.stop_calls = 0
        self.callback: wifi_connect.Callback | None = None

    def start(self, force_mode: bool, callback: wifi_connect.Callback | None) -> bool:
        self.start_calls.append(force_mode)
        self.callback = callback
        self.running = self.start_result
        return self.start_result

    def stop(self) -> bool:
        self.stop_calls += 1
        self.complete(False)
        return True

    def is_running(self) -> bool:
        return self.running

    def complete(self, success: bool) -> None:
        self.running = False
        if self.callback is not None:
            self.callback(success)

    def manager(self) -> wifi_connect.WifiManager:
        return wifi_connect.WifiManager(self.start, self.stop, self.is_running)


def test_start_passes_force_mode_and_reports_completion() -> None:
    service = FakeService()
    manager = service.manager()
    results: list[bool] = []
    assert manager.start_wifi_connect(force_mode=False, callback=results.append) is True
    assert service.start_calls == [False]
    assert manager.is_wifi_connect_running() is True
    assert results == []
    service.complete(True)
    assert results == [True]
    assert manager.is_wifi_connect_running() is False


def test_default_force_mode_is_true_and_callback_optional() -> None:
    service = FakeService()
    manager = service.manager()
    assert manager.start_wifi_connect() is True
    assert service.start_calls == [True]
    service.complete(True)  # no callback: nothing to call, no error
    assert manager.error_count == 0


def test_start_while_running_returns_false() -> None:
    service = FakeService()
    manager = service.manager()
    assert manager.start_wifi_connect() is True
    assert manager.start_wifi_connect() is False
    assert service.start_calls == [True]


def test_start_that_does_not_start() -> None:
    service = FakeService(start_result=False)
    manager = service.manager()
    results: list[bool] = []
    assert manager.start_wifi_connect(callback=results.append) is False
    assert manager.is_wifi_connect_running() is False
    assert results == []


def test_stop() -> None:
    service = FakeService()
    manager = service.manager()
    assert manager.stop_wifi_connect() is False  # nothing running
    assert service.stop_calls == 0
    results: list[bool] = []
    manager.start_wifi_connect(callback=results.append)
    assert manager.stop_wifi_connect() is True
    assert results == [False]
    assert manager.is_wifi_connect_running() is False


def test_errors_in_injected_functions_are_counted_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def boom(*_: object) -> bool:
        raise RuntimeError("docker socket gone")

    manager = wifi_connect.WifiManager(boom, boom, lambda: False)
    assert manager.start_wifi_connect() is False
    assert manager.error_count == 1
    assert "docker socket gone" in (manager.last_error or "")
    assert "docker socket gone" in caplog.text
    broken_check = wifi_connect.WifiManager(boom, boom, boom)
    assert broken_check.is_wifi_connect_running() is False
    assert broken_check.stop_wifi_connect() is False
    assert broken_check.error_count == 2
    running = wifi_connect.WifiManager(boom, boom, lambda: True)
    assert running.stop_wifi_connect() is False
    assert running.error_count == 1


def test_callback_is_passed_through_unchanged() -> None:
    # omgrab 0.1.2: the start function gets the caller's callback itself (None when omitted);
    # calling it once is the start function's job (NmcliHotspotProvider's: test_wifi_nmcli).
    service = FakeService()
    manager = service.manager()

    def callback(success: bool) -> None:
        pass

    manager.start_wifi_connect(callback=callback)
    assert service.callback is callback
    service.complete(True)
    manager.start_wifi_connect()
    assert service.callback is None


def test_blocking_start_rejects_concurrent_start_and_can_be_stopped() -> None:
    entered = threading.Event()
    release = threading.Event()
    state = {"running": False}

    def start(force_mode: bool, callback: wifi_connect.Callback | None) -> bool:
        state["running"] = True
        entered.set()
        release.wait(10)  # blocks until stopped, like a foreground container run
        state["running"] = False
        if callback is not None:
            callback(False)
        return True

    def stop() -> bool:
        release.set()
        return True

    manager = wifi_connect.WifiManager(start, stop, lambda: state["running"])
    results: list[bool] = []
    first = threading.Thread(target=lambda: results.append(manager.start_wifi_connect()))
    first.start()
    assert entered.wait(5)
    assert manager.start_wifi_connect() is False  # the first one is still starting
    assert manager.stop_wifi_connect() is True  # no deadlock: the lock is not held
    first.join(5)
    assert results == [True]
    assert manager.is_wifi_connect_running() is False
