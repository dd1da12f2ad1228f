"""Capture-safe encoder settings: what the writer passes to each video encoder, and why.

A frame handed to an encoder is in no file until the encoder gives its packet back. Encoders
tuned for offline compression hold many frames: libx264's defaults keep ~40 frames of
look-ahead and B-frame reordering (1.6 s at 25 fps), libx265 and libvpx-vp9 ~25, SVT-AV1 more.
A crash or power loss takes all of them. So unless a stream opts out
(``VideoStreamConfig(capture_safe=False)``), the writer adds the settings that make the encoder
return every frame's packet before it takes the next frame:

============== ======================================================= ==================
codec          settings added                                          frames held
============== ======================================================= ==================
libx264(rgb)   ``tune`` += ``zerolatency`` (no B-frames, no look-ahead, 0
               sliced instead of frame threads); ``preset`` =
               ``superfast`` when not given
libx265        ``x265-params`` += ``bframes=0:b-adapt=0:rc-lookahead=0 0
               :cutree=0:frame-threads=1``; ``preset`` = ``superfast``
               when not given
libsvtav1      ``svtav1-params`` += ``pred-struct=1`` (low delay), and 0
               ``rc=2`` (CBR, the rate control SVT-AV1 allows then)
               unless ``crf``/``qp`` is given
libvpx(-vp9)   ``lag-in-frames`` = ``0``                               0
intra-only     none needed (MJPEG, FFV1, ...)                          0
other          ``bf`` = ``0`` when not given                            unknown
============== ======================================================= ==================

Options of the caller that would undo these (``bf`` or ``rc-lookahead`` other than 0 for
libx264, ``lag-in-frames`` for libvpx) are refused with a ``ValueError`` that names
``capture_safe=False``. The worker also measures how many frames its encoder actually held
(``StreamStats.encoder_delay_frames``).

Loss bound: a SIGKILL costs the frames the encoder holds plus the frame being encoded plus the
backlog (items queued in the ring, ``StreamStats.backlog_s``) at that moment::

    loss <= (delay_frames + 1) / fps + backlog_s        (+ fsync interval on power loss)

``EncoderPlan.to_dict`` is written to ``recording.json`` (``streams.<name>.encoder``) and from
there to the manifest.
"""

from __future__ import annotations

import dataclasses
import fractions
import functools
import logging
from typing import Any

import av

from omgrab.recording import config as config_mod

logger = logging.getLogger(__name__)

#: Encoders that code every frame on its own: nothing is held back.
INTRA_ONLY = frozenset(
    {
        "mjpeg",
        "ffv1",
        "ffvhuff",
        "huffyuv",
        "utvideo",
        "magicyuv",
        "png",
        "qoi",
        "ljpeg",
        "jpegls",
        "jpeg2000",
        "rawvideo",
        "prores",
        "prores_ks",
        "prores_aw",
        "dnxhd",
    }
)

_X264 = ("libx264", "libx264rgb")
_VPX = ("libvpx", "libvpx-vp9")
_X265_PARAMS = "bframes=0:b-adapt=0:rc-lookahead=0:cutree=0:frame-threads=1"

#: Encoders tried (on a tiny frame) when listing what works on this machine.
_COMMON_ENCODERS = (
    "libx264",
    "libx265",
    "libsvtav1",
    "libvpx-vp9",
    "mjpeg",
    "ffv1",
    "h264_v4l2m2m",
    "hevc_v4l2m2m",
    "h264_vaapi",
    "h264_nvenc",
    "h264_qsv",
)


@dataclasses.dataclass(frozen=True)
class EncoderPlan:
    """The encoder settings of one video stream as the writer applies them.

    Attributes:
        codec: FFmpeg encoder name.
        options: The options passed to the encoder (the caller's plus capture-safe ones).
        capture_safe: Whether the capture-safe settings were applied.
        added: The options the writer added or changed (a subset of ``options``).
        delay_frames: Frames the encoder holds before giving a packet back under these
            settings; None when unknown (an encoder not in the table, or opted out).
    """

    codec: str
    options: dict[str, str]
    capture_safe: bool
    added: dict[str, str]
    delay_frames: int | None

    def sigkill_loss_bound_s(self, fps: float) -> float | None:
        """The most a SIGKILL costs beyond the backlog: the frames held plus the one in work."""
        if self.delay_frames is None:
            return None
        return round((self.delay_frames + 1) / fps, 6)

    def to_dict(self, fps: float) -> dict[str, Any]:
        """Return the ``recording.json`` / manifest form."""
        return {
            "codec": self.codec,
            "options": dict(self.options),
            "capture_safe": self.capture_safe,
            "added_options": dict(self.added),
            "delay_frames": self.delay_frames,
            "loss_bound_s": self.sigkill_loss_bound_s(fps),
            "loss_bound": "loss_bound_s + backlog_s at the kill (+ fsync interval on power loss)",
        }


@functools.cache
def video_encoders() -> tuple[str, ...]:
    """Return the names of the video encoders PyAV has on this machine, sorted."""
    names = []
    for name in av.codecs_available:
        try:
            codec = av.codec.Codec(name, "w")
        except Exception:  # a decoder only, or not built in
            continue
        if codec.type == "video":
            names.append(name)
    return tuple(sorted(names))


def usable_encoders() -> list[str]:
    """Return the common video encoders that really open here (tried on a 64x64 frame)."""
    return [
        name
        for name in _COMMON_ENCODERS
        if name in video_encoders() and _open_error(name, "yuv420p", 64, 64) is None
    ]


def check_video_codec(stream_name: str, codec: str) -> None:
    """Raise ``ValueError`` naming the available encoders when PyAV lacks ``codec``."""
    if codec in video_encoders():
        return
    raise ValueError(
        f"stream {stream_name!r}: video encoder {codec!r} is not available in this PyAV/FFmpeg "
        f"build; encoders that open here: {', '.join(usable_encoders()) or 'none'} "
        f"(all video encoders: {', '.join(video_encoders())})"
    )


@functools.lru_cache(maxsize=64)
def _open_error(codec: str, pix_fmt: str, width: int, height: int) -> str | None:
    """Open ``codec`` once for ``width`` x ``height`` ``pix_fmt``; the error text, or ``None``.

    The encoder's own defaults are used (the caller's ``stream_options`` are checked when the
    worker opens it at ``start()``), so this answers "can this encoder run here at this size
    and pixel format at all". Cached per (codec, pix_fmt, size): constructing writers stays fast.
    """
    try:
        ctx: Any = av.CodecContext.create(codec, "w")
        ctx.width, ctx.height = width, height
        ctx.pix_fmt = pix_fmt
        ctx.time_base = fractions.Fraction(1, 1000)
        ctx.framerate = 25
        ctx.open()
    except Exception as exc:  # the codec's own refusal: reported to the caller
        return f"{type(exc).__name__}: {exc}"
    del ctx  # frees the encoder (and its frame buffers) now
    return None


def check_encoder_opens(stream_name: str, stream_config: config_mod.VideoStreamConfig) -> None:
    """Raise ``ValueError`` naming the encoders that open here when this one cannot open.

    Catches an encoder PyAV lists but that cannot run on this machine (a board's hardware
    encoder such as ``h264_v4l2m2m`` without its device), a pixel format or a size the codec
    refuses, at construction rather than at ``start()``.
    """
    error = _open_error(
        stream_config.codec,
        stream_config.output_pixel_format,
        stream_config.width,
        stream_config.height,
    )
    if error is None:
        return
    raise ValueError(
        f"stream {stream_name!r}: video encoder {stream_config.codec!r} cannot open "
        f"{stream_config.width}x{stream_config.height} {stream_config.output_pixel_format} "
        f"on this machine ({error}); encoders that open here: "
        f"{', '.join(usable_encoders()) or 'none'}"
    )


def _append_params(options: dict[str, str], key: str, params: str) -> str:
    current = options.get(key, "")
    return f"{current}:{params}" if current else params


def _refuse(stream_name: str, codec: str, key: str, value: str) -> None:
    raise ValueError(
        f"stream {stream_name!r}: stream_options {key}={value!r} lets {codec} hold frames back, "
        "which a crash would lose; pass VideoStreamConfig(capture_safe=False) to opt out of "
        "capture-safe encoding"
    )


def plan(stream_name: str, stream_config: config_mod.VideoStreamConfig) -> EncoderPlan:
    """Return the settings the writer applies to a video stream's encoder.

    Args:
        stream_name: The stream's name (for error messages).
        stream_config: The stream's config.

    Returns:
        The plan.

    Raises:
        ValueError: The codec is not available or cannot open here at the stream's size and
            pixel format, or the caller's options conflict with capture-safe encoding.
    """
    codec = stream_config.codec
    check_video_codec(stream_name, codec)
    check_encoder_opens(stream_name, stream_config)
    options = dict(stream_config.stream_options)
    if codec in INTRA_ONLY:
        return EncoderPlan(codec, options, stream_config.capture_safe, {}, 0)
    if not stream_config.capture_safe:
        return EncoderPlan(codec, options, False, {}, None)
    added: dict[str, str] = {}
    delay: int | None = 0
    if codec in _X264:
        for key in ("bf", "rc-lookahead"):
            if options.get(key, "0") != "0":
                _refuse(stream_name, codec, key, options[key])
        tunes = [t for t in options.get("tune", "").replace("+", ",").split(",") if t]
        if "zerolatency" not in tunes:
            added["tune"] = ",".join([*tunes, "zerolatency"])
        if "preset" not in options:  # x264's 'medium' cannot keep up live on a small board
            added["preset"] = "superfast"
    elif codec == "libx265":
        added["x265-params"] = _append_params(options, "x265-params", _X265_PARAMS)
        if "preset" not in options:
            added["preset"] = "superfast"
    elif codec == "libsvtav1":
        params = "pred-struct=1"
        if "crf" not in options and "qp" not in options:
            params += ":rc=2"
        added["svtav1-params"] = _append_params(options, "svtav1-params", params)
    elif codec in _VPX:
        if options.get("lag-in-frames", "0") != "0":
            _refuse(stream_name, codec, "lag-in-frames", options["lag-in-frames"])
        added["lag-in-frames"] = "0"
    else:
        if "bf" not in options:
            added["bf"] = "0"
        delay = None
    options.update(added)
    return EncoderPlan(codec, options, True, added, delay)
