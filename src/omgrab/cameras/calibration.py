"""Camera intrinsics from a calibration file (for cameras that cannot report their own).

The file is JSON: ``fx``, ``fy``, ``cx``, ``cy`` in pixels, optionally ``width`` and
``height`` (the size it was calibrated at) and ``distortion`` (coefficients in OpenCV order).
The recorder writes them, as JSON, into the stream's ``intrinsics`` track tag, so they reach
the recording's manifest and the merged MKV.
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any

#: Keys a calibration file must hold (pixels), as written by OpenCV's calibrateCamera users.
INTRINSICS_KEYS = ("fx", "fy", "cx", "cy")


def load_intrinsics(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a camera calibration JSON file: ``fx``, ``fy``, ``cx``, ``cy`` (+ optional extras).

    Optional keys: ``width``, ``height`` (the calibrated size) and ``distortion`` (a list of
    numbers, OpenCV order).

    Raises:
        ValueError: The file is unreadable, not JSON, or lacks a numeric key.
    """
    file = pathlib.Path(path)
    try:
        doc = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{file} is not a readable JSON calibration file: {exc}") from exc
    if not isinstance(doc, dict):
        raise ValueError(f"{file} must hold a JSON object with {', '.join(INTRINSICS_KEYS)}")
    for key in INTRINSICS_KEYS:
        value = doc.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ValueError(f"{file}: {key} = {value!r}: must be a number > 0 (pixels)")
    distortion = doc.get("distortion", [])
    if not isinstance(distortion, list) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in distortion
    ):
        raise ValueError(f"{file}: distortion = {distortion!r}: must be a list of numbers")
    return {k: doc[k] for k in (*INTRINSICS_KEYS, "width", "height", "distortion") if k in doc}
