"""Every stream config the writer accepts records every frame put, pts exact to the ms.

Each case writes real chunk files with the real worker processes, merges them, decodes every
track and reads each frame's burned-in counter (``omgrab.cameras.frame_counter``), so a frame
lost, duplicated or re-timed anywhere (encoder delay, B-frame reordering, chunk close, merge)
shows. Capture timestamps are irregular at the millisecond (``_pts``) and the recording spans
two 1 s chunks, so every stream's encoder is flushed and reopened once.
"""

from __future__ import annotations

import dataclasses
import datetime
import pathlib
from typing import Any

import numpy as np
import pytest

from omgrab import recording
from omgrab.cameras import frame_counter
from omgrab.recording import encoder_options, manifest, merge
from tests import fixtures_recording as fx
from tests import recording_mkv_probe as probe

FRAMES = 34  # 0 .. ~1.36 s: two chunks
WIDTH, HEIGHT = 144, 96


def _pts(i: int) -> int:
    return i * 40 + (i * 7) % 5  # jitter of 0..4 ms, never a multiple-of-40 grid


@dataclasses.dataclass
class Case:
    config: recording.VideoStreamConfig
    decode_format: str  # what the decoded frame is read as
    delay_bound: int | None = 0  # frames the encoder may hold (None: unbounded, opted out)


def _video(codec: str, **kw: Any) -> recording.VideoStreamConfig:
    kw.setdefault("width", WIDTH)
    kw.setdefault("height", HEIGHT)
    kw.setdefault("bitrate", 400_000)
    return recording.VideoStreamConfig(fps=25, codec=codec, metadata={"type": "test"}, **kw)


def _frame(config: recording.VideoStreamConfig, counter: int) -> np.ndarray:
    fmt = config.input_pixel_format
    h, w = config.height, config.width
    if fmt in ("yuv420p", "nv12"):
        frame = np.full(config.frame_shape, 128, dtype=np.uint8)
        frame[:h] = 60
        frame_counter.draw_frame_counter(frame[:h], counter, 16, 235)
        return frame
    if fmt == "gray16le":
        frame16 = np.full(config.frame_shape, 1000 + counter, dtype=np.uint16)
        frame_counter.draw_frame_counter(frame16, counter, 300, 9000)
        return frame16
    frame = np.empty(config.frame_shape, dtype=np.uint8)
    frame[...] = ((np.arange(w)[None, :] + counter * 3) % 200).astype(np.uint8)[
        (..., None) if frame.ndim == 3 else ...
    ]
    frame_counter.draw_frame_counter(frame, counter, 0, 255)
    return frame


def _record_and_check(tmp_path: pathlib.Path, cases: dict[str, Case]) -> pathlib.Path:
    origin = fx.ORIGIN
    writer = recording.ChunkedWriter(
        "rec",
        tmp_path / "spool",
        {name: case.config for name, case in cases.items()},
        chunk_length_s=1.0,
        origin=origin,
        ring_capacity_s=fx.BURST_RING_S,
    )
    with writer:
        queues = {name: writer.get_encoder_queue(name) for name in cases}
        for i in range(FRAMES):
            ts = origin + datetime.timedelta(milliseconds=_pts(i))
            for name, case in cases.items():
                queues[name].put((_frame(case.config, i), ts), timeout=30)
    stats = writer.stats
    merged = merge.merge_recording_chunks(writer.directory, tmp_path / "out.mkv")
    expected = [_pts(i) for i in range(FRAMES)]
    for index, (name, case) in enumerate(cases.items()):
        assert stats[name].frames_written == FRAMES, (name, stats[name])
        assert stats[name].healthy, stats[name].error
        if case.delay_bound is not None:
            delay = stats[name].encoder_delay_frames
            assert delay is not None and delay <= case.delay_bound, (name, delay)
        frames = probe.decode_frames(merged, index, case.decode_format)
        assert [pts for pts, _ in frames] == expected, name
        counters = [frame_counter.read_frame_counter(image) for _, image in frames]
        assert counters == list(range(FRAMES)), name
    return merged


def test_published_quick_start_config_and_libx264_with_b_frames(tmp_path: pathlib.Path) -> None:
    plain = {"input_pixel_format": "rgb24", "output_pixel_format": "yuv420p"}
    cases = {
        # the published SDK's quick-start config (at a small size): no stream_options
        "quickstart": Case(_video("libx264", **plain), "gray"),
        # libx264's own defaults with B-frames and look-ahead (capture-safe opted out)
        "bframes": Case(_video("libx264", capture_safe=False, **plain), "gray", None),
        "bframes_veryslow": Case(
            _video("libx264", capture_safe=False, stream_options={"preset": "veryslow"}, **plain),
            "gray",
            None,
        ),
        "builtin": Case(
            recording.rgb_stream_config(width=WIDTH, height=HEIGHT, bitrate=400_000), "gray", 3
        ),
    }
    merged = _record_and_check(tmp_path, cases)
    # the manifest states the encoder settings applied and the loss bound they imply
    streams = manifest.read_manifest(manifest.manifest_path_for(merged)).streams
    quick = streams["quickstart"]
    assert quick.encoder is not None and quick.writer is not None
    assert quick.encoder["options"] == {"tune": "zerolatency", "preset": "superfast"}
    assert quick.encoder["added_options"] == {"tune": "zerolatency", "preset": "superfast"}
    assert (quick.encoder["delay_frames"], quick.encoder["loss_bound_s"]) == (0, 0.04)
    assert quick.writer["drops"]["ring_full"] == 0 and quick.writer["encoder_delay_frames"] == 0
    opted_out = streams["bframes"]
    assert opted_out.encoder is not None
    assert opted_out.encoder["capture_safe"] is False and opted_out.encoder["options"] == {}
    assert opted_out.encoder["delay_frames"] is None  # unknown: stated as such
    assert opted_out.writer is not None and opted_out.writer["encoder_delay_frames"] > 0


@pytest.mark.parametrize(
    "group",
    [
        ["ultrafast", "superfast", "veryfast", "faster", "fast"],
        ["medium", "slow", "slower", "veryslow"],
    ],
)
def test_every_libx264_preset(tmp_path: pathlib.Path, group: list[str]) -> None:
    cases = {
        preset: Case(_video("libx264", stream_options={"preset": preset}), "gray")
        for preset in group
    }
    _record_and_check(tmp_path, cases)


def test_libx264_tunes(tmp_path: pathlib.Path) -> None:
    tunes = ["film", "animation", "grain", "stillimage", "psnr", "ssim", "fastdecode"]
    cases = {tune: Case(_video("libx264", stream_options={"tune": tune}), "gray") for tune in tunes}
    cases["zerolatency"] = Case(_video("libx264", stream_options={"tune": "zerolatency"}), "gray")
    _record_and_check(tmp_path, cases)


def test_other_codecs_and_input_formats(tmp_path: pathlib.Path) -> None:
    cases = {
        "x265": Case(_video("libx265"), "gray"),
        "x265_default": Case(_video("libx265", capture_safe=False), "gray", None),
        "mjpeg": Case(_video("mjpeg", output_pixel_format="yuvj420p"), "gray"),
        "av1": Case(_video("libsvtav1", bitrate=600_000), "gray"),
        "av1_default": Case(_video("libsvtav1", capture_safe=False), "gray", None),
        "ffv1_depth": Case(
            _video("ffv1", input_pixel_format="gray16le", output_pixel_format="gray16le"),
            "gray16le",
        ),
        "ffv1_rgb": Case(
            _video("ffv1", input_pixel_format="rgb24", output_pixel_format="bgr0"), "gray"
        ),
        "bgr_input": Case(_video("libx264", input_pixel_format="bgr24"), "gray"),
        "gray_input": Case(
            _video("libx264", input_pixel_format="gray", output_pixel_format="gray"), "gray"
        ),
        "yuv_input": Case(_video("libx264", input_pixel_format="yuv420p"), "gray"),
        "nv12_input": Case(_video("libx264", input_pixel_format="nv12"), "gray"),
        "odd_ffv1": Case(
            _video(
                "ffv1",
                width=97,
                height=65,
                input_pixel_format="gray16le",
                output_pixel_format="gray16le",
            ),
            "gray16le",
        ),
        "odd_x264_444": Case(
            _video("libx264", width=97, height=65, output_pixel_format="yuv444p"), "gray"
        ),
    }
    _record_and_check(tmp_path, cases)


def test_odd_sizes_get_a_clear_error_where_the_codec_refuses_them(
    tmp_path: pathlib.Path,
) -> None:
    with pytest.raises(ValueError, match="must be even for 4:2:0"):
        _video("libx264", width=97, height=65)
    # SVT-AV1 refuses frames below 64 pixels: the writer says so when it starts
    tiny = {"av1": _video("libsvtav1", width=48, height=32, output_pixel_format="yuv420p")}
    writer = recording.ChunkedWriter("rec", tmp_path, tiny)
    with pytest.raises(RuntimeError, match=r"encoder libsvtav1 refused 48x32 yuv420p"):
        writer.start()


def test_options_that_undo_capture_safety_are_refused_unless_opted_out() -> None:
    with pytest.raises(ValueError, match=r"bf='3'.*capture_safe=False"):
        encoder_options.plan("rgb", _video("libx264", stream_options={"bf": "3"}))
    with pytest.raises(ValueError, match=r"rc-lookahead='40'"):
        encoder_options.plan("rgb", _video("libx264", stream_options={"rc-lookahead": "40"}))
    opted_out = encoder_options.plan(
        "rgb", _video("libx264", capture_safe=False, stream_options={"bf": "3"})
    )
    assert opted_out.options == {"bf": "3"} and opted_out.delay_frames is None
    safe = encoder_options.plan("rgb", _video("libx264", stream_options={"tune": "film"}))
    assert safe.options == {"tune": "film,zerolatency", "preset": "superfast"}
    assert safe.delay_frames == 0 and safe.sigkill_loss_bound_s(25) == 0.04


pytestmark = pytest.mark.skipif(not probe.HAVE_FFPROBE, reason="ffprobe not installed")
