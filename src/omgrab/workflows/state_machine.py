"""The device's workflow: button presses and events move it between states.

Transitions (all others are ignored and logged):

=================  ===============  ==========================================
state              event            result
=================  ===============  ==========================================
BOOT               boot_complete    IDLE
IDLE               short press      RECORDING (stays IDLE with an alert if the
                                    recorder refuses)
RECORDING          short press      IDLE (recording stopped, merged in background)
IDLE               double press     CAMERA_PREVIEW (preview callbacks set and
                                    available; see below)
CAMERA_PREVIEW     short press      IDLE
IDLE / PREVIEW     long press       WIFI_SETUP
WIFI_SETUP         short press      IDLE (setup cancelled)
WIFI_SETUP         setup finished   IDLE
any                shutdown         SHUTDOWN (an active recording is stopped)
=================  ===============  ==========================================

omgrab 0.1.2's interface works too: ``StateMachine(gpio_controller, recording_manager)`` finishes
booting at once (``stay_in_boot=True`` waits for :meth:`StateMachine.boot_complete`), and
``handle_button_press``, ``enter_wifi_setup``, ``exit_wifi_setup``, ``is_recording()``,
``set_show_alert_callback``, ``set_preview_callbacks`` and ``cleanup`` are 0.1.2's. A double press
enters CAMERA_PREVIEW only once preview callbacks are set and say the preview is available (the
start callback failing is alerted). A controller with 0.1.2's API (``set_led_states``,
``buzzer_beep``) shows 0.1.2's red/green patterns and beeps
(:class:`~omgrab.workflows.indicators.V1Indicators`). A recorder without ``is_recording`` (0.1.2's
``RecordingController``) is taken to record from a successful ``start_recording`` until
``stop_recording``, and this machine stops it when its device turns unhealthy (0.1.2); a recorder
that reports ``is_recording`` decides itself (it may ride out a reconnect).

Presses are handled one at a time. A press that arrives while a transition is still running (a
slow stop) is ignored with a "refused" beep rather than queued, so a nervous double-tap on stop
never starts a new recording by accident. Device and recorder events always wait their turn.

Reading and changing state: :attr:`StateMachine.state` and :meth:`StateMachine.get_current_state`
are plain reads (no lock, no side effect). Transitions happen only in the event methods
(``handle_*_press``, ``boot_complete``, ``finish_wifi_setup``, ``on_device_unhealthy``,
``on_recording_error``, ``shutdown``) and in :meth:`StateMachine.sync`, which reconciles with a
recorder that stopped on its own.

Threads and locks: one lock, ``_lock``, serializes every transition. It is held while a press
calls the recorder (a stop may take seconds), so the recorder must never call back into the
state machine synchronously from the thread a stop waits for: the
:class:`~omgrab.runtime.recording_manager.RecordingManager` delivers its callbacks on its own
events thread, which simply waits its turn here. Recorder events carry the recording id
(:class:`~omgrab.recorder_events.RecorderEvent`): an error about an earlier recording
(a failed merge) alerts but never stops the current one.

Error policy: an exception raised by the recorder during a press or an event is logged,
counted (``press_errors`` and the ``button`` loop in :mod:`~omgrab.loop_health`),
alerted, and the state follows what the recorder reports; the lock is always released, so the
next press works.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from omgrab import loop_health, recorder_events
from omgrab.gpio import controller as gpio_controller
from omgrab.workflows import indicators as indicators_mod
from omgrab.workflows import states

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from omgrab.runtime import recording_manager

WorkflowState = states.WorkflowState

#: Messages for the alert callback (0.1.2's).
CHECK_CAMERA = "Check Camera\nConnection"
RECORDING_ERROR = "Recording\nError"

OnStateChange = Callable[[WorkflowState, WorkflowState], None]


class StateMachine:
    """Thread-safe workflow state machine driving the recorder and the indicators.

    Args:
        gpio_controller: LEDs and buzzer (this package's contract or 0.1.2's
            ``GPIOController`` API), or None on a headless device.
        recording_manager: The recorder (normally a RecordingManager).
        on_state_change: Called with ``(old, new)`` after every transition.
        stay_in_boot: Stay in BOOT until :meth:`boot_complete` (the device app does); by
            default the machine is IDLE once built (0.1.2).

    The positional order ``(gpio_controller, recording_manager)`` is omgrab 0.1.2's.
    """

    def __init__(
        self,
        gpio_controller: gpio_controller.GPIOController | None,
        recording_manager: recording_manager.RecordingController,
        *,
        on_state_change: OnStateChange | None = None,
        stay_in_boot: bool = False,
    ) -> None:
        self._recorder = recording_manager
        self._indicators = indicators_mod.for_controller(gpio_controller)
        self._on_state_change = on_state_change
        self._state = WorkflowState.BOOT
        self._lock = threading.Lock()
        self._network_level = 0
        self._network_status: Any = None  # the last snapshot's status, as reported
        self._alerts = 0
        self._ignored_presses = 0
        self._alert_pending_callback = False
        self._press_errors = 0
        self._recording_id: str | None = None  # the recording this machine started
        self._started = False  # a recorder without is_recording: started by this machine
        self._show_alert: Callable[[str], None] | None = None
        self._is_preview_available: Callable[[], bool] | None = None
        self._start_preview_callback: Callable[[], None] | None = None
        self._stop_preview_callback: Callable[[], None] | None = None
        self._indicators.show_state(self._state)
        if not stay_in_boot:
            self.boot_complete()

    # -- queries -----------------------------------------------------------------------------

    @property
    def state(self) -> WorkflowState:
        """The current state: a plain read (see :meth:`sync` to reconcile with the recorder)."""
        return self._state

    def get_current_state(self) -> str:
        """Get the current workflow state as a string (e.g. ``'idle'``); a plain read."""
        return self._state.value

    def is_recording(self) -> bool:
        """True in the RECORDING state (0.1.2); a plain read."""
        return self._state is WorkflowState.RECORDING

    @property
    def press_errors(self) -> int:
        """How many presses or events failed because the recorder raised."""
        return self._press_errors

    @property
    def alerts(self) -> int:
        """How many failure alerts were raised."""
        return self._alerts

    @property
    def ignored_presses(self) -> int:
        """How many presses arrived while a transition was running and were ignored."""
        return self._ignored_presses

    @property
    def indicator_errors(self) -> int:
        """How many LED/buzzer operations failed."""
        return self._indicators.errors

    # -- wiring ------------------------------------------------------------------------------

    def set_show_alert_callback(self, callback: Callable[[str], None]) -> None:
        """Show alerts on a screen: ``callback`` gets a short message (e.g. ``RECORDING_ERROR``)."""
        self._show_alert = callback

    def set_preview_callbacks(
        self, is_available: Callable[[], bool], start: Callable[[], None], stop: Callable[[], None]
    ) -> None:
        """Wire the camera preview: a double press in IDLE enters it when ``is_available()``.

        Args:
            is_available: True if the preview can start now (e.g. a display is connected).
            start: Starts the preview; if it raises, the machine stays IDLE and alerts.
            stop: Stops it (leaving the preview or shutting down); errors are logged.
        """
        self._is_preview_available = is_available
        self._start_preview_callback = start
        self._stop_preview_callback = stop

    def cleanup(self) -> None:
        """Release the GPIO controller (its ``cleanup``, or ``close``)."""
        self._indicators.cleanup()

    # -- button events -----------------------------------------------------------------------

    def handle_button_press(self) -> None:
        """0.1.2's short press: as :meth:`handle_short_press`, but ignored in WIFI_SETUP.

        (0.1.2's button loop cancels WiFi setup itself, then calls :meth:`exit_wifi_setup`.)
        """
        self._press("short", self._button_press)

    def handle_short_press(self) -> None:
        """Toggle recording; leave preview; cancel WiFi setup (state only)."""
        self._press("short", self._short_press)

    def handle_double_press(self) -> None:
        """Enter camera preview from IDLE."""
        self._press("double", self._double_press)

    def handle_long_press(self) -> bool:
        """Enter WiFi setup from IDLE or preview; return True if setup should start."""
        return bool(self._press("long", self._long_press))

    # -- other events ------------------------------------------------------------------------

    def boot_complete(self) -> None:
        """Finish booting: BOOT -> IDLE."""
        with self._lock:
            if self._state is WorkflowState.BOOT:
                self._set(WorkflowState.IDLE)

    def enter_wifi_setup(self) -> bool:
        """Enter WIFI_SETUP from IDLE or BOOT (0.1.2); return whether it did."""
        with self._lock:
            if self._state not in (WorkflowState.IDLE, WorkflowState.BOOT):
                logger.info("WiFi setup refused in state %s", self._state.value)
                return False
            self._set(WorkflowState.WIFI_SETUP)
            return True

    def exit_wifi_setup(self) -> bool:
        """Leave WIFI_SETUP for IDLE (0.1.2); return False if not in WIFI_SETUP."""
        with self._lock:
            if self._state is not WorkflowState.WIFI_SETUP:
                return False
            self._set(WorkflowState.IDLE)
            return True

    def finish_wifi_setup(self, success: bool) -> None:
        """WiFi setup ended (completed, failed or cancelled): back to IDLE."""
        with self._lock:
            if self._state is WorkflowState.WIFI_SETUP:
                logger.info("WiFi setup finished (success=%s)", success)
                self._set(WorkflowState.IDLE)
                if not success:
                    self._indicators.beep(indicators_mod.BEEP_REFUSED)

    def on_device_unhealthy(self, event: recorder_events.RecorderEvent | None = None) -> None:
        """A device became unhealthy while recording: alert, and follow the recorder's state.

        Args:
            event: What happened and to which recording (None from recorders that do not say).
        """
        with self._lock:
            if self._about_other_recording(event):
                return
            self._sync_locked()
            self._alert_once("device unhealthy", CHECK_CAMERA)
            if self._state is WorkflowState.RECORDING and not self._reports_recording():
                # 0.1.2's recorder cannot say whether it still records: stop it (0.1.2).
                self._guarded("device unhealthy", self._stop_recorder)
                self._follow_recorder_locked()

    def on_recording_error(self, event: recorder_events.RecorderEvent | None = None) -> None:
        """The recorder failed (encoder crash, disk nearly full): alert and stop that recording.

        Args:
            event: What happened and to which recording. An event about a recording other than
                the one this machine started (e.g. a failed merge of an earlier recording) only
                alerts. None (recorders that do not say) stops whatever is recording.
        """
        with self._lock:
            if self._about_other_recording(event):
                return
            self._sync_locked()
            self._alert_once("recording error", RECORDING_ERROR)
            if self._state is WorkflowState.RECORDING and self._recorder_active():
                recording_id = getattr(event, "recording_id", None)
                self._guarded("recording error", lambda: self._stop_recorder(recording_id))
                self._follow_recorder_locked()

    def on_network_change(self, snapshot: Any) -> None:
        """Reflect a network status change on the network LED.

        Args:
            snapshot: A ``network_monitor.Snapshot`` (its ``status`` value is 'offline',
                'network_only' or 'online', or an object with an orderable ``status``).
        """
        status = getattr(snapshot, "status", snapshot)
        name = str(getattr(status, "name", status)).lower()
        level = {"offline": 0, "network_only": 1, "online": 2}.get(name, 0)
        with self._lock:
            self._network_level = level
            self._network_status = status
            if self._state is not WorkflowState.WIFI_SETUP:
                self._indicators.show_network(level)
        logger.info("network is now %s", name)

    def shutdown(self) -> None:
        """Stop any recording and enter SHUTDOWN (final); a transition."""
        with self._lock:
            if self._state is WorkflowState.SHUTDOWN:
                return
            if self._state is WorkflowState.CAMERA_PREVIEW:
                self._stop_preview()
            if self._recorder_active():
                self._guarded("shutdown", self._stop_recorder)
            self._set(WorkflowState.SHUTDOWN)

    def sync(self) -> None:
        """Reconcile with the recorder (it may have stopped itself after a failure).

        A transition: RECORDING -> IDLE with an alert when the recorder stopped on its own,
        IDLE -> RECORDING when something other than this machine started a recording. Never
        waits: does nothing while another transition runs.
        """
        if self._lock.acquire(blocking=False):
            try:
                self._sync_locked()
            finally:
                self._lock.release()

    # -- internals ---------------------------------------------------------------------------

    def _press(self, kind: str, handler: Callable[[], Any]) -> Any:
        if not self._lock.acquire(blocking=False):
            self._ignored_presses += 1
            logger.info("%s press ignored: a transition is still running", kind)
            self._indicators.beep(indicators_mod.BEEP_REFUSED)
            return None
        try:
            self._sync_locked()
            return self._guarded(f"{kind} press", handler)
        finally:
            self._lock.release()

    def _guarded(self, what: str, action: Callable[[], Any]) -> Any:
        """Run ``action`` (lock held); an exception is logged, counted and alerted."""
        try:
            return action()
        except Exception as exc:
            self._press_errors += 1
            loop_health.default().record_error("button", exc)
            logger.exception("%s failed", what)
            self._alert(f"{what} failed: {type(exc).__name__}: {exc}", RECORDING_ERROR)
            self._follow_recorder_locked()
            return None

    def _stop_recorder(self, recording_id: str | None = None) -> None:
        """Stop ``recording_id`` only (an event about it), or whatever records (a press)."""
        stop = self._recorder.stop_recording
        if recording_id is not None and recorder_events.takes_argument(stop):
            stop(recording_id)  # type: ignore[call-arg]
        else:
            stop()
        self._recording_id = None
        self._started = False

    def _reports_recording(self) -> bool:
        """True if the recorder says whether it records (``is_recording``)."""
        return getattr(self._recorder, "is_recording", None) is not None

    def _recorder_active(self) -> bool:
        """Whether the recorder records: its ``is_recording``, else what this machine did."""
        value = getattr(self._recorder, "is_recording", None)
        if value is None:
            return self._started
        return bool(value() if callable(value) else value)

    def _follow_recorder_locked(self) -> None:
        """After a failure, make the state say what the recorder does."""
        recording = self._recorder_active()
        if self._state is WorkflowState.RECORDING and not recording:
            self._recording_id = None
            self._set(WorkflowState.IDLE)
        elif self._state is WorkflowState.IDLE and recording:
            self._recording_id = getattr(self._recorder, "active_recording_id", None)
            self._set(WorkflowState.RECORDING)

    def _about_other_recording(self, event: recorder_events.RecorderEvent | None) -> bool:
        """True (after alerting without an LED change) if ``event`` is about another recording."""
        recording_id = getattr(event, "recording_id", None)
        if recording_id is None or recording_id == self._recording_id:
            return False
        self._alerts += 1
        logger.error(
            "alert about recording %s (not the current one): %s",
            recording_id,
            getattr(event, "message", ""),
        )
        self._indicators.beep(indicators_mod.BEEP_REFUSED)
        return True

    def _short_press(self) -> None:
        state = self._state
        if state is WorkflowState.IDLE:
            if self._recorder.start_recording():
                self._started = True
                self._recording_id = getattr(self._recorder, "active_recording_id", None)
                self._set(WorkflowState.RECORDING)
                self._indicators.beep(indicators_mod.BEEP_START)
            else:
                reason = getattr(self._recorder, "last_error", None) or "recorder refused"
                self._alert(f"recording did not start: {reason}", CHECK_CAMERA)
        elif state is WorkflowState.RECORDING:
            self._stop_recorder()
            self._set(WorkflowState.IDLE)
            self._indicators.beep(indicators_mod.BEEP_STOP)
        elif state is WorkflowState.CAMERA_PREVIEW:
            self._stop_preview()
            self._set(WorkflowState.IDLE)
            self._indicators.beep(indicators_mod.BEEP_PREVIEW_EXIT)
        elif state is WorkflowState.WIFI_SETUP:
            self._set(WorkflowState.IDLE)
        else:
            logger.info("short press ignored in state %s", state.value)

    def _button_press(self) -> None:
        if self._state is WorkflowState.WIFI_SETUP:
            logger.info("button press ignored in state wifi_setup")
            return
        self._short_press()

    def _double_press(self) -> None:
        if self._state is not WorkflowState.IDLE:
            logger.info("double press ignored in state %s", self._state.value)
            return
        if self._start_preview_callback is None:
            logger.info("double press ignored: no preview callbacks set")
            return
        if self._is_preview_available is not None and not self._is_preview_available():
            logger.info("double press ignored: preview not available")
            return
        try:
            self._start_preview_callback()
        except Exception as exc:
            logger.exception("starting the preview failed")
            self._alert(f"preview did not start: {type(exc).__name__}: {exc}", CHECK_CAMERA)
            return
        self._set(WorkflowState.CAMERA_PREVIEW)
        self._indicators.beep(indicators_mod.BEEP_PREVIEW)

    def _stop_preview(self) -> None:
        if self._stop_preview_callback is None:
            return
        try:
            self._stop_preview_callback()
        except Exception:
            logger.exception("stopping the preview failed")

    def _long_press(self) -> bool:
        if self._state in (WorkflowState.IDLE, WorkflowState.CAMERA_PREVIEW):
            self._set(WorkflowState.WIFI_SETUP)
            self._indicators.beep(indicators_mod.BEEP_WIFI)
            return True
        logger.info("long press ignored in state %s", self._state.value)
        return False

    def _sync_locked(self) -> None:
        if self._state is WorkflowState.IDLE and self._recorder_active():
            # Someone else (dashboard, API) started a recording: the LED must say so.
            self._recording_id = getattr(self._recorder, "active_recording_id", None)
            self._set(WorkflowState.RECORDING)
            return
        if self._state is WorkflowState.RECORDING and not self._recorder_active():
            # Nobody pressed stop: the recorder stopped itself after a failure. Alert now; the
            # recorder's callback that follows does not alert a second time.
            self._set(WorkflowState.IDLE)
            self._alert("recorder stopped on its own", RECORDING_ERROR)
            self._alert_pending_callback = True

    def _alert_once(self, reason: str, message: str) -> None:
        if self._alert_pending_callback:
            self._alert_pending_callback = False
            logger.info("%s (already alerted)", reason)
            return
        self._alert(reason, message)

    def _alert(self, reason: str, message: str) -> None:
        """Alert: log ``reason``, LEDs/buzzer, and ``message`` to the alert callback."""
        self._alerts += 1
        logger.error("alert: %s", reason)
        self._indicators.alert()
        if self._show_alert is not None:
            try:
                self._show_alert(message)
            except Exception:
                logger.exception("show_alert callback failed")

    def _set(self, new: WorkflowState) -> None:
        old = self._state
        if old is new:
            return
        self._state = new
        logger.info("state %s -> %s", old.value, new.value)
        self._indicators.show_state(new)
        if new is WorkflowState.IDLE:
            self._indicators.show_network(self._network_level)
        if self._on_state_change is not None:
            try:
                self._on_state_change(old, new)
            except Exception:
                logger.exception("on_state_change callback failed")
