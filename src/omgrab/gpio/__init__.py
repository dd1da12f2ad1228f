"""LEDs, buzzer and button: the contract, the gpiod v2 backend and the software twin.

Importing this package never imports ``gpiod``; :class:`GpiodController` does so when built.
"""

from omgrab.gpio.button_script import ButtonTimeline, PressKind, PressTimings
from omgrab.gpio.controller import LED, GPIOController, LEDState
from omgrab.gpio.debounce import Debouncer
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
