"""WiFi Connect manager with injectable container management functions.

The WifiManager class owns the WiFi setup lifecycle (state transitions, callbacks) but
delegates container operations to injected functions. This allows the SDK to be independent of
Docker while applications can provide Docker-specific implementations.

A default provider without Docker is included: :class:`NmcliHotspotProvider` opens a
NetworkManager hotspot with ``nmcli``, waits until WiFi credentials are submitted (e.g. from
the device's web page), the setup is cancelled, times out, or the hotspot goes away, then tears
the hotspot down (``nmcli connection down`` / ``delete``) and, given credentials, connects
(``nmcli device wifi connect``). :meth:`WifiManager.with_nmcli` wires it in.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import subprocess
import threading
import time
from collections.abc import Callable, Sequence

logger = logging.getLogger(__name__)

PSK_FIELD = "802-11-wireless-security.psk"

Callback = Callable[[bool], None]
StartFunction = Callable[[bool, Callback | None], bool]


@dataclasses.dataclass(frozen=True)
class WifiNetwork:
    """A network seen by the device.

    Attributes:
        ssid: Network name.
        signal: Signal strength 0-100.
        security: ``WPA2``, ``WPA1 WPA2``... or ``open``.
    """

    ssid: str
    signal: int
    security: str


class WifiManager:
    """Manages WiFi setup lifecycle with injectable container functions.

    The manager orchestrates the WiFi provisioning flow: 1. Check if the WiFi setup service is
    already running. 2. Start it via the injected function. 3. Wait for completion (via the
    start function's blocking behavior). 4. Invoke a callback when complete.

    Container-specific logic (Docker API calls, process management, etc.) is provided by the
    caller via the constructor arguments. All methods are thread-safe; the injected functions
    are never called while the manager's lock is held, so a blocking start function can be
    cancelled with :meth:`stop_wifi_connect` from another thread.

    Args:
        start_container: Function to start the WiFi setup service. Signature:
            (force_mode, callback) -> bool. Should return True if the service was started,
            False otherwise. The callback (if provided) should be invoked with True/False when
            the service completes.
        stop_container: Function to stop the WiFi setup service. Should return True if
            stopped, False otherwise.
        is_running: Function to check if the service is currently running. Should return True
            if running, False otherwise.
    """

    def __init__(
        self,
        start_container: StartFunction,
        stop_container: Callable[[], bool],
        is_running: Callable[[], bool],
    ) -> None:
        self._start_container = start_container
        self._stop_container = stop_container
        self._is_running = is_running
        self._lock = threading.Lock()  # guards _starting and the error fields
        self._starting = False
        self._error_count = 0
        self._last_error: str | None = None
        #: The provider behind the three functions when built by :meth:`with_nmcli`.
        self.provider: NmcliHotspotProvider | None = None

    @classmethod
    def with_nmcli(
        cls, provider: NmcliHotspotProvider | None = None, **provider_kwargs: object
    ) -> WifiManager:
        """Build a manager on a NetworkManager hotspot.

        Args:
            provider: A configured provider; built from ``provider_kwargs`` if None.
            **provider_kwargs: Arguments for :class:`NmcliHotspotProvider`.

        Returns:
            The manager; its :attr:`provider` is the hotspot provider.
        """
        if provider is None:
            provider = NmcliHotspotProvider(**provider_kwargs)  # type: ignore[arg-type]
        elif provider_kwargs:
            raise TypeError("pass either a provider or provider keyword arguments, not both")
        manager = cls(provider.start, provider.stop, provider.is_running)
        manager.provider = provider
        return manager

    @property
    def error_count(self) -> int:
        """How many injected-function or callback errors were met."""
        with self._lock:
            return self._error_count

    @property
    def last_error(self) -> str | None:
        """The latest error, if any."""
        with self._lock:
            return self._last_error

    def scan_networks(self) -> list[WifiNetwork]:
        """The networks the device sees (through the nmcli provider), strongest first.

        Raises:
            RuntimeError: The manager was not built with :meth:`with_nmcli`.
            NmcliError: ``nmcli`` failed.
        """
        if self.provider is None:
            raise RuntimeError("this WifiManager has no nmcli provider to scan with")
        return self.provider.scan_networks()

    def submit_credentials(self, ssid: str, password: str | None = None) -> None:
        """Hand the network chosen on the setup page to the provider (see its docs).

        Raises:
            RuntimeError: No provider, or no setup is waiting for credentials.
            ValueError: The SSID or password is invalid.
        """
        if self.provider is None:
            raise RuntimeError("this WifiManager has no nmcli provider to submit to")
        self.provider.submit_credentials(ssid, password)

    def start_wifi_connect(self, force_mode: bool = True, callback: Callback | None = None) -> bool:
        """Start the WiFi setup service.

        Args:
            force_mode: If True, forces the portal to start even if WiFi is connected.
            callback: Optional callback invoked when WiFi setup completes.

        Returns:
            True if the service was started, False otherwise.
        """
        with self._lock:
            if self._starting:
                logger.info("WiFi setup is already starting; not starting it again")
                return False
            self._starting = True
        try:
            if self._check_running():
                logger.info("WiFi setup is already running; not starting it again")
                return False
            try:
                # The callback is passed through unchanged (omgrab 0.1.2): the start function
                # owns calling it once; this package's NmcliHotspotProvider does and logs a
                # callback that raises.
                started = bool(self._start_container(force_mode, callback))
            except Exception as exc:
                self._record_error(f"starting WiFi setup failed: {exc!r}")
                return False
            if started:
                logger.info("WiFi setup started (force_mode=%s)", force_mode)
            else:
                logger.warning("WiFi setup did not start")
            return started
        finally:
            with self._lock:
                self._starting = False

    def stop_wifi_connect(self) -> bool:
        """Stop the WiFi setup service if running.

        Returns:
            True if the service was stopped, False otherwise.
        """
        if not self._check_running():
            return False
        try:
            stopped = bool(self._stop_container())
        except Exception as exc:
            self._record_error(f"stopping WiFi setup failed: {exc!r}")
            return False
        logger.info("WiFi setup %s", "stopped" if stopped else "could not be stopped")
        return stopped

    def is_wifi_connect_running(self) -> bool:
        """Check if the WiFi setup service is currently running.

        Returns:
            True if running, False otherwise.
        """
        return self._check_running()

    def _check_running(self) -> bool:
        try:
            return bool(self._is_running())
        except Exception as exc:
            self._record_error(f"checking whether WiFi setup runs failed: {exc!r}")
            return False

    def _record_error(self, message: str) -> None:
        with self._lock:
            self._error_count += 1
            self._last_error = message
        logger.error(message)


class NmcliError(RuntimeError):
    """An ``nmcli`` command failed, timed out or could not be run."""


class NmcliHotspotProvider:
    """WiFi setup through a NetworkManager hotspot driven by ``nmcli``.

    Provides the three functions :class:`WifiManager` needs (:meth:`start`, :meth:`stop`,
    :meth:`is_running`). The hotspot stays up until :meth:`submit_credentials` is called, the
    setup is stopped, ``setup_timeout_s`` passes, or the hotspot connection disappears; it is
    then torn down. Credentials lead to ``nmcli device wifi connect``; the completion callback
    gets True only if that connection succeeded.

    Args:
        ifname: WiFi interface.
        ssid: SSID of the setup hotspot.
        password: WPA2 passphrase of the hotspot (8-63 characters); NetworkManager generates
            one if None (see :attr:`hotspot_password`).
        connection_name: NetworkManager connection profile used for the hotspot.
        nmcli: The ``nmcli`` executable (looked up on ``PATH``).
        command_timeout_s: Time limit for each ``nmcli`` command.
        connect_timeout_s: Time limit for joining the configured network.
        setup_timeout_s: Give up (callback False) after this long without credentials.
        poll_interval_s: How often the hotspot is checked while waiting.
        band: Optional WiFi band for the hotspot (``"bg"`` or ``"a"``).

    Raises:
        ValueError: If an argument is invalid.
    """

    def __init__(
        self,
        ifname: str = "wlan0",
        ssid: str = "omgrab-setup",
        password: str | None = None,
        *,
        connection_name: str = "omgrab-hotspot",
        nmcli: str = "nmcli",
        command_timeout_s: float = 15.0,
        connect_timeout_s: float = 45.0,
        setup_timeout_s: float = 900.0,
        poll_interval_s: float = 2.0,
        band: str | None = None,
    ) -> None:
        if not ifname or not ssid or not connection_name:
            raise ValueError("ifname, ssid and connection_name must not be empty")
        if len(ssid.encode()) > 32:
            raise ValueError(f"ssid {ssid!r} is longer than 32 bytes")
        if password is not None:
            _check_passphrase("hotspot password", password)
        if band not in (None, "a", "bg"):
            raise ValueError(f"band must be 'a', 'bg' or None, got {band!r}")
        for name, value in (
            ("command_timeout_s", command_timeout_s),
            ("connect_timeout_s", connect_timeout_s),
            ("setup_timeout_s", setup_timeout_s),
            ("poll_interval_s", poll_interval_s),
        ):
            if not value > 0:
                raise ValueError(f"{name} must be > 0, got {value!r}")
        self.ifname = ifname
        self.ssid = ssid
        self.connection_name = connection_name
        self._password = password
        self._nmcli = nmcli
        self._command_timeout_s = command_timeout_s
        self._connect_timeout_s = connect_timeout_s
        self._setup_timeout_s = setup_timeout_s
        self._poll_interval_s = poll_interval_s
        self._band = band
        # The lock guards the session fields below; nmcli commands run outside it.
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()
        self._cancel = False
        self._credentials: tuple[str, str | None] | None = None
        self._hotspot_password: str | None = None
        self._last_error: str | None = None
        self._last_result: bool | None = None
        self._done = threading.Event()
        self._done.set()

    # -- the three WifiManager functions --------------------------------------------------

    def start(self, force_mode: bool, callback: Callback | None) -> bool:
        """Open the setup hotspot and wait for the setup in a background thread.

        Args:
            force_mode: Open the hotspot even if the interface is already connected.
            callback: Invoked with True/False when the setup completes.

        Returns:
            True if the hotspot is up and the setup is waiting, False otherwise.
        """
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return False
            self._cancel = False
            self._credentials = None
            self._wake.clear()
            self._done.clear()
        try:
            if not force_mode and self._interface_connected():
                logger.info("%s is already connected; WiFi setup not needed", self.ifname)
                self._finish_without_session()
                return False
            self._run(self._hotspot_command(), self._command_timeout_s)
        except NmcliError as exc:
            self._teardown(quiet=True)  # a half-made profile must not linger
            self._set_error(str(exc))
            self._finish_without_session()
            return False
        self._hotspot_password = self._password or self._query_generated_password()
        thread = threading.Thread(
            target=self._wait_for_setup, args=(callback,), name="omgrab-wifi-setup", daemon=True
        )
        with self._lock:
            self._thread = thread
        thread.start()
        return True

    def stop(self) -> bool:
        """Cancel a running setup (callback False) or remove a hotspot left running.

        Returns:
            True if a setup or hotspot was stopped.
        """
        with self._lock:
            thread = self._thread
            running = thread is not None and thread.is_alive()
            if running:
                self._cancel = True
                self._wake.set()
        if running and thread is not None:
            thread.join(timeout=4 * self._command_timeout_s + self._connect_timeout_s)
            return not thread.is_alive()
        if self._hotspot_active():
            return self._teardown()
        return False

    def is_running(self) -> bool:
        """Return True while a setup waits or the hotspot connection is active."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return True
        return bool(self._hotspot_active())

    # -- portal side ----------------------------------------------------------------------

    def submit_credentials(self, ssid: str, password: str | None = None) -> None:
        """Hand over the network to join; the hotspot closes and the device connects.

        Args:
            ssid: Network to join.
            password: Its passphrase (None for an open network).

        Raises:
            ValueError: If the SSID or passphrase is invalid.
            RuntimeError: If no setup is waiting.
        """
        if not ssid or len(ssid.encode()) > 32:
            raise ValueError(f"ssid {ssid!r} must be 1-32 bytes")
        if password is not None:
            _check_passphrase("network password", password)
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                raise RuntimeError("no WiFi setup is waiting for credentials")
            self._credentials = (ssid, password)
            self._wake.set()

    def scan_networks(self) -> list[WifiNetwork]:
        """List visible networks from NetworkManager's scan cache, strongest first.

        The setup hotspot itself and hidden networks (no SSID) are left out; an SSID seen on
        several access points is listed once with its best signal.

        Raises:
            NmcliError: ``nmcli`` failed.
        """
        out = self._run(
            [
                "-t",
                "-f",
                "SSID,SIGNAL,SECURITY",
                "device",
                "wifi",
                "list",
                "ifname",
                self.ifname,
                "--rescan",
                "auto",
            ],
            self._command_timeout_s,
        )
        best: dict[str, WifiNetwork] = {}
        for line in out.splitlines():
            fields = _split_terse(line)
            if len(fields) != 3 or not fields[0] or fields[0] == self.ssid:
                continue
            ssid, signal, security = fields
            network = WifiNetwork(
                ssid, int(signal) if signal.isdigit() else 0, security.strip() or "open"
            )
            if ssid not in best or network.signal > best[ssid].signal:
                best[ssid] = network
        return sorted(best.values(), key=lambda n: -n.signal)

    def wait_until_done(self, timeout_s: float | None = None) -> bool:
        """Block until the current setup has completed; return False on timeout."""
        return self._done.wait(timeout_s)

    @property
    def hotspot_password(self) -> str | None:
        """The hotspot's passphrase (given or generated by NetworkManager), once started."""
        return self._hotspot_password

    @property
    def last_error(self) -> str | None:
        """The latest nmcli failure, if any."""
        with self._lock:
            return self._last_error

    @property
    def last_result(self) -> bool | None:
        """The result of the latest completed setup."""
        with self._lock:
            return self._last_result

    # -- internals ------------------------------------------------------------------------

    def _hotspot_command(self) -> list[str]:
        args = ["device", "wifi", "hotspot", "ifname", self.ifname]
        args += ["con-name", self.connection_name, "ssid", self.ssid]
        if self._band is not None:
            args += ["band", self._band]
        if self._password is not None:
            args += ["password", self._password]
        return args

    def _wait_for_setup(self, callback: Callback | None) -> None:
        result = False
        try:
            result = self._wait_loop()
        except Exception as exc:
            self._set_error(f"WiFi setup failed: {exc!r}")
            self._teardown()
        finally:
            with self._lock:
                self._last_result = result
            self._done.set()
        if callback is not None:
            try:
                callback(result)
            except Exception as exc:
                self._set_error(f"WiFi setup callback failed: {exc!r}")

    def _wait_loop(self) -> bool:
        deadline = time.monotonic() + self._setup_timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                logger.warning("WiFi setup timed out after %.0f s", self._setup_timeout_s)
                self._teardown()
                return False
            self._wake.wait(min(self._poll_interval_s, remaining))
            with self._lock:
                self._wake.clear()
                cancel = self._cancel
                credentials = self._credentials
            if cancel:
                logger.info("WiFi setup cancelled")
                self._teardown()
                return False
            if credentials is not None:
                self._teardown()
                return self._connect(*credentials)
            if self._hotspot_active() is False:  # None: nmcli failed, keep waiting
                logger.warning("WiFi setup hotspot %s went away", self.connection_name)
                self._teardown()
                return False

    def _connect(self, ssid: str, password: str | None) -> bool:
        args = ["--wait", str(round(self._connect_timeout_s)), "device", "wifi", "connect", ssid]
        if password is not None:
            args += ["password", password]
        args += ["ifname", self.ifname]
        try:
            self._run(args, self._connect_timeout_s + self._command_timeout_s)
        except NmcliError as exc:
            self._set_error(str(exc))
            return False
        logger.info("connected %s to %r", self.ifname, ssid)
        return True

    def _teardown(self, quiet: bool = False) -> bool:
        try:
            self._run(["connection", "down", self.connection_name], self._command_timeout_s)
        except NmcliError as exc:
            logger.debug("hotspot down: %s", exc)  # not active is fine
        try:
            self._run(["connection", "delete", self.connection_name], self._command_timeout_s)
        except NmcliError as exc:
            if quiet:
                logger.debug("hotspot delete: %s", exc)
            else:
                self._set_error(str(exc))
            return False
        return True

    def _finish_without_session(self) -> None:
        self._done.set()

    def _interface_connected(self) -> bool:
        out = self._run(["-t", "-f", "DEVICE,STATE", "device", "status"], self._command_timeout_s)
        for line in out.splitlines():
            device, _, state = line.partition(":")
            if device == self.ifname:
                return state.startswith("connected")
        return False

    def _hotspot_active(self) -> bool | None:
        """Return whether the hotspot connection is active, None if nmcli failed."""
        try:
            out = self._run(
                ["-t", "-f", "NAME", "connection", "show", "--active"], self._command_timeout_s
            )
        except NmcliError as exc:
            self._set_error(str(exc))
            return None
        return self.connection_name in (_unescape(line) for line in out.splitlines())

    def _query_generated_password(self) -> str | None:
        try:
            out = self._run(
                ["-s", "-g", PSK_FIELD, "connection", "show", self.connection_name],
                self._command_timeout_s,
            )
        except NmcliError as exc:
            logger.warning("cannot read the generated hotspot password: %s", exc)
            return None
        return out.strip() or None

    def _run(self, args: Sequence[str], timeout_s: float) -> str:
        command = [self._nmcli, *args]
        shown = _redact(command)
        env = dict(os.environ, LC_ALL="C", LANG="C")
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=timeout_s, env=env, check=False
            )
        except FileNotFoundError as exc:
            raise NmcliError(f"cannot run {shown}: {exc}") from exc
        except subprocess.TimeoutExpired as exc:
            raise NmcliError(f"{shown} timed out after {timeout_s:.0f} s") from exc
        if done.returncode != 0:
            detail = (done.stderr or done.stdout).strip()
            raise NmcliError(f"{shown} exited with status {done.returncode}: {detail}")
        return done.stdout

    def _set_error(self, message: str) -> None:
        with self._lock:
            self._last_error = message
        logger.error(message)


def _check_passphrase(what: str, password: str) -> None:
    if not 8 <= len(password) <= 63 or not password.isprintable():
        raise ValueError(f"{what} must be 8-63 printable characters (WPA2), got {len(password)}")


def _redact(command: Sequence[str]) -> str:
    shown: list[str] = []
    hide_next = False
    for arg in command:
        shown.append("***" if hide_next else arg)
        hide_next = arg == "password"
    return " ".join(shown)


def _unescape(field: str) -> str:
    # nmcli -t escapes ':' and '\' in values with a backslash.
    return field.replace("\\:", ":").replace("\\\\", "\\")


def _split_terse(line: str) -> list[str]:
    """Split one ``nmcli -t`` line on unescaped ':' and unescape the fields."""
    fields: list[str] = []
    current: list[str] = []
    escaped = False
    for char in line:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ":":
            fields.append("".join(current))
            current = []
        else:
            current.append(char)
    fields.append("".join(current))
    return fields
