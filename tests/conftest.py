"""Suite-wide pytest configuration: registers each area's fixture module.

Hypothesis runs derandomized (the same examples every run), so the suite is deterministic; set
``HYPOTHESIS_PROFILE=explore`` to search with fresh random examples.
"""

import os

import hypothesis

hypothesis.settings.register_profile("deterministic", derandomize=True, database=None)
hypothesis.settings.register_profile("explore")
hypothesis.settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))

pytest_plugins = [
    "tests.fixtures_capture",
    "tests.fixtures_recording",
    "tests.fixtures_output",
    "tests.fixtures_runtime",
    "tests.fixtures_gpio",
    "tests.fixtures_network",
    "tests.s3_fixtures",
    "omgrab.testing.fixtures",
]
