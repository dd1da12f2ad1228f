"""A synthetic camera: moving RGB or depth images that carry their own frame number.

Each frame is a window into a precomputed background twice the frame size, shifted a few
pixels per frame (so the content moves and an encoder has real work to do), with the frame
counter burned into the top strip (see ``omgrab.cameras.frame_counter``). Generating a frame
is one slice copy plus a few block fills, so it is cheap enough to stand in for real cameras in
benchmarks.
"""

from __future__ import annotations

import threading
from typing import Literal

import numpy as np

from omgrab import clock as clock_mod
from omgrab.cameras import base, frame_counter

Mode = Literal["rgb", "depth"]

DEPTH_LOW_MM = 500
DEPTH_HIGH_MM = 6000


def _rgb_background(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """Return a ``(2H, 2W, 3)`` uint8 background that tiles seamlessly."""
    h2, w2 = 2 * height, 2 * width
    y = np.linspace(0.0, 2.0 * np.pi, h2, endpoint=False, dtype=np.float32)[:, None]
    x = np.linspace(0.0, 2.0 * np.pi, w2, endpoint=False, dtype=np.float32)[None, :]
    red = 127.5 + 110.0 * np.sin(2 * x + y)
    green = 127.5 + 110.0 * np.sin(3 * y - x + 1.0)
    blue = 127.5 + 110.0 * np.cos(x + 2 * y)
    image = np.stack(np.broadcast_arrays(red, green, blue), axis=-1)
    # Checkerboard of 32 px tiles and a little seeded noise: real texture for the encoder.
    tile = max(8, min(height, width) // 16)
    checker = ((np.arange(h2)[:, None] // tile + np.arange(w2)[None, :] // tile) % 2).astype(
        np.float32
    )
    image += (checker * 30.0 - 15.0)[..., None]
    image += rng.normal(0.0, 4.0, size=(h2, w2, 1)).astype(np.float32)
    return np.clip(image, 0, 255).astype(np.uint8)


def _depth_background(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """Return a ``(2H, 2W)`` uint16 background in millimetres that tiles seamlessly."""
    h2, w2 = 2 * height, 2 * width
    y = np.linspace(0.0, 2.0 * np.pi, h2, endpoint=False)[:, None]
    x = np.linspace(0.0, 2.0 * np.pi, w2, endpoint=False)[None, :]
    depth = 2500.0 + 1200.0 * np.sin(x) * np.cos(y) + 600.0 * np.sin(3 * x + 2 * y)
    depth = depth + rng.normal(0.0, 5.0, size=(h2, w2))
    return np.clip(depth, 600, 5000).astype(np.uint16)


class SyntheticCamera(base.Camera):
    """A camera that generates moving test images with a machine-readable frame counter.

    Args:
        config: Frame rate and size.
        mode: ``'rgb'`` for ``HxWx3`` uint8 RGB frames, ``'depth'`` for ``HxW`` uint16 frames in
            millimetres.
        clock: Device clock used for timestamps; the process-wide clock by default.
        pace: Deliver frames at ``config.fps`` (real time); False delivers as fast as asked.
        seed: Seed of the background texture, for reproducible images.
        start_index: Counter value of the first frame.
        speed_px: Pixels the content moves per frame (horizontally; half that vertically).

    Raises:
        ValueError: For an unknown mode or a frame too small to carry the counter.
    """

    def __init__(
        self,
        config: base.CameraConfig,
        *,
        mode: Mode = "rgb",
        clock: clock_mod.DeviceClock | None = None,
        pace: bool = True,
        seed: int = 0,
        start_index: int = 0,
        speed_px: int = 4,
    ) -> None:
        super().__init__(config, clock=clock, pace=pace)
        if mode not in ("rgb", "depth"):
            raise ValueError(f"SyntheticCamera mode must be 'rgb' or 'depth', got {mode!r}")
        frame_counter.check_size(config.width, config.height)
        self._mode: Mode = mode
        self._speed = int(speed_px)
        rng = np.random.default_rng(seed)
        if mode == "rgb":
            self._background = _rgb_background(config.height, config.width, rng)
            self._low, self._high = 0, 255
        else:
            self._background = _depth_background(config.height, config.width, rng)
            self._low, self._high = DEPTH_LOW_MM, DEPTH_HIGH_MM
        self._index_lock = threading.Lock()
        self._next_index = start_index

    @property
    def mode(self) -> Mode:
        """``'rgb'`` or ``'depth'``."""
        return self._mode

    @property
    def frames_generated(self) -> int:
        """Counter value the next delivered frame will carry."""
        with self._index_lock:
            return self._next_index

    def render(self, index: int) -> np.ndarray:
        """Return frame number ``index`` as a new array (no pacing, no timestamp).

        Args:
            index: Frame number to draw; the image content and the burned-in counter follow it.
        """
        width, height = self._config.width, self._config.height
        x = (index * self._speed) % width
        y = (index * self._speed // 2) % height
        frame = self._background[y : y + height, x : x + width].copy()
        frame_counter.draw_frame_counter(frame, index, self._low, self._high)
        return frame

    def _open(self) -> None:
        pass

    def _close(self) -> None:
        pass

    def _read_frame(self, timeout_s: float | None) -> base.Frame:
        with self._index_lock:
            index = self._next_index
            self._next_index += 1
        timestamp = self._clock.now()
        return self.render(index), timestamp


def read_frame_counter(image: np.ndarray) -> int:
    """Recover the frame number a ``SyntheticCamera`` burned into ``image``.

    See ``omgrab.cameras.frame_counter.read_frame_counter``; it survives H.264 coding.
    """
    return frame_counter.read_frame_counter(image)
