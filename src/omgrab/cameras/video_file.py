"""A camera that replays a video file (anything PyAV can decode) as a live stream."""

from __future__ import annotations

import collections.abc
import fractions
import pathlib
from typing import Any, Literal

import av
import numpy as np

from omgrab import clock as clock_mod
from omgrab.cameras import base

Output = Literal["auto", "rgb", "gray16"]

_GRAY16_FORMATS = frozenset({"gray16le", "gray16be", "gray12le", "gray10le", "gray14le"})


def probe_config(path: str | pathlib.Path) -> base.CameraConfig:
    """Return the frame rate and size of the first video stream of ``path``.

    Raises:
        ValueError: When the file has no video stream.
        av.error.FFmpegError: When the file cannot be opened.
    """
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise ValueError(f"{path} has no video stream")
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or fractions.Fraction(25)
        return base.CameraConfig(float(rate), int(stream.width), int(stream.height))


class VideoFileCamera(base.Camera):
    """Replays the first video stream of a file; frames are stamped with the device clock.

    Args:
        path: The video file.
        config: Nominal rate and size; read from the file when None. Frames keep the file's
            size unless ``resize`` is True.
        clock: Device clock used for timestamps; the process-wide clock by default.
        pace: Deliver frames at ``config.fps`` (real time); False replays as fast as asked.
        loop: Start again from the beginning at the end of the file instead of ending.
        output: ``'rgb'`` (``HxWx3`` uint8), ``'gray16'`` (``HxW`` uint16, e.g. depth in mm) or
            ``'auto'``: gray16 when the file's pixel format is 16-bit gray, RGB otherwise.
        resize: Scale frames to ``config.width`` x ``config.height``.

    Raises:
        FileNotFoundError: When ``path`` does not exist.
        ValueError: For an unknown ``output``, or ``resize`` without a ``config``.
    """

    def __init__(
        self,
        path: str | pathlib.Path,
        config: base.CameraConfig | None = None,
        *,
        clock: clock_mod.DeviceClock | None = None,
        pace: bool = True,
        loop: bool = False,
        output: Output = "auto",
        resize: bool = False,
    ) -> None:
        self._path = pathlib.Path(path)
        if not self._path.exists():
            raise FileNotFoundError(f"video file not found: {self._path}")
        if output not in ("auto", "rgb", "gray16"):
            raise ValueError(f"output must be 'auto', 'rgb' or 'gray16', got {output!r}")
        if resize and config is None:
            raise ValueError("resize=True needs a config giving the target size")
        super().__init__(
            config if config is not None else probe_config(self._path), clock=clock, pace=pace
        )
        self._loop = loop
        self._output: Output = output
        self._resize = resize
        self._container: Any = None
        self._frames: collections.abc.Iterator[Any] | None = None
        self._format = "rgb24"
        self._finished = False
        self._frames_delivered = 0
        self._loops = 0

    @property
    def path(self) -> pathlib.Path:
        """The file being replayed."""
        return self._path

    @property
    def finished(self) -> bool:
        """True once the end of the file was reached (never with ``loop``)."""
        return self._finished

    @property
    def frames_delivered(self) -> int:
        """Frames returned since the camera was opened."""
        return self._frames_delivered

    @property
    def loops(self) -> int:
        """How many times replay wrapped around to the start."""
        return self._loops

    def _open(self) -> None:
        self._container = av.open(str(self._path))
        if not self._container.streams.video:
            self._container.close()
            self._container = None
            raise ValueError(f"{self._path} has no video stream")
        stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"
        if self._output == "auto":
            pix_fmt = stream.codec_context.pix_fmt or ""
            self._format = "gray16le" if pix_fmt in _GRAY16_FORMATS else "rgb24"
        else:
            self._format = "rgb24" if self._output == "rgb" else "gray16le"
        self._frames = iter(self._container.decode(stream))
        self._finished = False
        self._frames_delivered = 0
        self._loops = 0

    def _close(self) -> None:
        if self._container is not None:
            self._container.close()
        self._container = None
        self._frames = None

    def _next_av_frame(self) -> Any:
        assert self._frames is not None and self._container is not None
        try:
            return next(self._frames)
        except StopIteration:
            pass
        if not self._loop or self._frames_delivered == 0:
            self._finished = True
            raise base.FrameUnavailableError(f"end of video file {self._path}") from None
        stream = self._container.streams.video[0]
        self._container.seek(0, stream=stream)
        self._frames = iter(self._container.decode(stream))
        self._loops += 1
        try:
            return next(self._frames)
        except StopIteration:
            self._finished = True
            raise base.FrameUnavailableError(f"cannot rewind video file {self._path}") from None

    def _read_frame(self, timeout_s: float | None) -> base.Frame:
        if self._finished:
            raise base.FrameUnavailableError(f"end of video file {self._path}")
        av_frame = self._next_av_frame()
        kwargs: dict[str, Any] = {"format": self._format}
        if self._resize:
            kwargs["width"] = self._config.width
            kwargs["height"] = self._config.height
        image: np.ndarray = av_frame.to_ndarray(**kwargs)
        self._frames_delivered += 1
        return image, self._clock.now()
