"""Suite-wide pytest configuration: registers each area's fixture module."""

pytest_plugins = [
    "tests.fixtures_capture",
    "tests.fixtures_recording",
    "tests.fixtures_output",
    "tests.fixtures_runtime",
    "tests.fixtures_gpio",
    "tests.fixtures_network",
    "omgrab.testing.fixtures",
]
