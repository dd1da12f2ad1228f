"""LEDs, buzzer and button: the contract, the gpiod v2 backend and the software twin.

Importing this package never imports ``gpiod``; :class:`GpiodController` does so when built.

``GPIOController`` is omgrab 0.1.2's class (:mod:`omgrab.gpio.gpio`: ``GPIOController()`` drives
the red/green LEDs, buzzer and button through a GPIO process); ``isinstance`` also accepts every
controller of this package's contract, :class:`omgrab.gpio.controller.GPIOController` (the
protocol to use in type hints).
"""

from omgrab.gpio.button_script import ButtonTimeline, PressKind, PressTimings
from omgrab.gpio.controller import LED, LEDState
from omgrab.gpio.debounce import Debouncer
from omgrab.gpio.gpio import GPIOController
from omgrab.gpio.gpiod_backend import GpiodController, GPIOUnavailableError
from omgrab.gpio.gpiod_twin import GpiodTwin, SimulatedChip
from omgrab.gpio.pins import GPIOPins
from omgrab.gpio.remote import RemoteButton, TriggerFileWatcher
from omgrab.gpio.simulated import SimulatedGPIOController

__all__ = [
    "LED",
    "ButtonTimeline",
    "Debouncer",
    "GPIOController",
    "GPIOPins",
    "GPIOUnavailableError",
    "GpiodController",
    "GpiodTwin",
    "LEDState",
    "PressKind",
    "PressTimings",
    "RemoteButton",
    "SimulatedChip",
    "SimulatedGPIOController",
    "TriggerFileWatcher",
]
