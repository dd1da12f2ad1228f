"""Fault campaign settings: short form in ``make test``, long form with ``OMGRAB_FAULTS=1``."""

from __future__ import annotations

import os
import shutil

import pytest

LONG = os.environ.get("OMGRAB_FAULTS") == "1"


def iterations(short: int, long: int) -> int:
    """The iteration count of a campaign for this run."""
    return long if LONG else short


@pytest.fixture(autouse=True)
def _needs_validators() -> None:
    for tool in ("ffprobe", "mkvmerge"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (make sysdeps)")
