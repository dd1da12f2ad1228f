"""omgrab: SDK and device runtime for edge capture rigs.

Subpackages:
    cameras: camera sources (synthetic, video file replay, USB/V4L2).
    sensors: data sources such as the IMU.
    devices: capture devices bundling cameras and sensors.
    recording: crash-safe chunked recording, merge, manifest and recovery.
    runtime: recording manager/session, network, status, battery, GPIO and WiFi.
    workflows: the button-driven state machine.
    gpio: LED, buzzer and button controllers (gpiod and simulated).
    output: the OutputManager persisting perception output.
    testing: fakes and pytest fixtures for users' own tests.
"""

__version__ = "0.2.0"
