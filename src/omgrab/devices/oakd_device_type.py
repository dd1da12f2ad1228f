"""OAK-D hardware variant from the EEPROM product name (omgrab 0.1.2's public module path).

A thin compatibility module: code written for omgrab 0.1.2 imports
``omgrab.devices.oakd_device_type`` to tell an OAK-D Pro W, an OAK-D W and an OAK-D Lite
apart. It holds no state and starts nothing; :func:`detect_from_pipeline` only reads the
calibration EEPROM of a pipeline's device and reports None (logged) when that fails.
"""

from __future__ import annotations

import enum
import logging
import re
from typing import Any

logger = logging.getLogger(__name__)


class OakDDeviceType(enum.Enum):
    """OAK-D hardware variant; the value is the name recorded in manifests."""

    OAKD_PRO_WIDE = "oakd_pro_wide"
    OAKD_WIDE = "oakd_wide"
    OAKD_LITE = "oakd_lite"


# Checked in this order: a Pro W name also contains the "W" of a plain wide unit.
_PATTERNS: tuple[tuple[re.Pattern[str], OakDDeviceType], ...] = (
    (re.compile(r"PRO[-_ ]W"), OakDDeviceType.OAKD_PRO_WIDE),
    (re.compile(r"LITE"), OakDDeviceType.OAKD_LITE),
    (re.compile(r"OAK-D[- ]W|WIDE"), OakDDeviceType.OAKD_WIDE),
)


def parse_device_type(product_name: str) -> OakDDeviceType:
    """Return the variant an EEPROM product name (e.g. ``'OAK-D-PRO-W-97'``) names.

    Matching ignores case.

    Raises:
        ValueError: If the name matches no known variant (the message quotes it).
    """
    upper = (product_name or "").upper()
    for pattern, device_type in _PATTERNS:
        if pattern.search(upper):
            return device_type
    raise ValueError(f"Unknown OAK-D product name: {product_name!r}")


def detect_from_pipeline(pipeline: Any) -> OakDDeviceType | None:
    """Read the variant from the EEPROM of a running depthai pipeline's device.

    Args:
        pipeline: A running depthai pipeline (``getDefaultDevice()``).

    Returns:
        The variant, or None when there is no device, no product name, an unknown name, or the
        read fails (each case is logged as a warning).
    """
    try:
        device = pipeline.getDefaultDevice()
        if device is None:
            logger.warning("OAK-D type: the pipeline has no device")
            return None
        eeprom = device.readCalibration().getEepromData()
        product_name = getattr(eeprom, "productName", None)
        if not product_name:
            logger.warning("OAK-D type: the EEPROM holds no product name")
            return None
        return parse_device_type(product_name)
    except Exception as exc:
        logger.warning("OAK-D type: could not read the EEPROM: %s", exc)
        return None
