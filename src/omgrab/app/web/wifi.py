"""The Wi-Fi setup page's API: networks the device sees, credentials, the outcome.

* ``GET /api/wifi/networks`` — ``WifiManager.scan_networks()`` (nmcli, run off the loop).
* ``POST /api/wifi/connect`` — JSON ``{"ssid": ..., "password": ...}`` handed to
  ``WifiManager.submit_credentials``; 409 when the device is not in Wi-Fi setup.
* The outcome (``wifi`` in the status snapshot, see :func:`wifi_state`): ``waiting`` while the
  hotspot waits, then ``joined`` or ``failed`` with the error.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from starlette import requests, responses, routing

if TYPE_CHECKING:
    from omgrab.app import device_app


def wifi_state(app: device_app.DeviceApp) -> dict[str, Any] | None:
    """The Wi-Fi setup state for the status snapshot (None without a Wi-Fi manager)."""
    manager = app.wifi_manager
    if manager is None:
        return None
    provider = manager.provider
    running = manager.is_wifi_connect_running()
    result = provider.last_result if provider is not None else None
    return {
        "setup_active": app.state_machine.state.value == "wifi_setup",
        "running": running,
        "outcome": "waiting" if running else {True: "joined", False: "failed", None: None}[result],
        "last_error": (provider.last_error if provider is not None else None) or manager.last_error,
        "hotspot_ssid": provider.ssid if provider is not None else None,
    }


class WifiRoutes:
    """The Wi-Fi setup routes of ``app``."""

    def __init__(self, app: device_app.DeviceApp) -> None:
        self._app = app

    def routes(self) -> list[routing.Route]:
        """The Starlette routes."""
        return [
            routing.Route("/api/wifi/networks", self.networks),
            routing.Route("/api/wifi/connect", self.connect, methods=["POST"]),
        ]

    async def networks(self, _request: requests.Request) -> responses.Response:
        """``GET /api/wifi/networks``."""
        manager = self._app.wifi_manager
        if manager is None:
            return responses.JSONResponse({"error": "this device has no Wi-Fi manager"}, 404)
        try:
            found = await asyncio.to_thread(manager.scan_networks)
        except Exception as exc:
            return responses.JSONResponse({"error": f"scan failed: {exc}"}, 502)
        return responses.JSONResponse(
            [{"ssid": n.ssid, "signal": n.signal, "security": n.security} for n in found]
        )

    async def connect(self, request: requests.Request) -> responses.Response:
        """``POST /api/wifi/connect``."""
        manager = self._app.wifi_manager
        if manager is None:
            return responses.JSONResponse({"error": "this device has no Wi-Fi manager"}, 404)
        try:
            body = json.loads(await request.body())
            ssid = body["ssid"]
            password = body.get("password") or None
            if not isinstance(ssid, str) or not (password is None or isinstance(password, str)):
                raise TypeError("ssid and password must be strings")
        except (ValueError, KeyError, TypeError) as exc:
            return responses.JSONResponse(
                {"error": f'body must be {{"ssid": str, "password": str}}: {exc}'}, 400
            )
        try:
            await asyncio.to_thread(manager.submit_credentials, ssid, password)
        except ValueError as exc:
            return responses.JSONResponse({"error": str(exc)}, 400)
        except RuntimeError as exc:
            return responses.JSONResponse({"error": str(exc)}, 409)
        return responses.JSONResponse({"submitted": ssid})
