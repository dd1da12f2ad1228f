"""The Matroska form of a data (sensor) track: ``S_TEXT/ASS`` with its codec private header.

A data stream's items (IMU JSON batches, ...) are stored one item per block, the block's bytes
exactly the item's bytes. The track is declared ``S_TEXT/ASS`` (the published SDK's choice, kept
so its files and ours merge alike), and Matroska requires an ASS track to carry the script
header (``[Script Info]`` ... ``[Events]``) as its codec private element: without it
``mkvextract`` refuses the track. ``ASS_HEADER`` is that header; its ``Format`` line is the one
Matroska's ASS blocks use.

FFmpeg's ``ass`` *encoder* would overwrite the header with an empty one, so the track is added
from a template stream: the header demuxed from memory by FFmpeg's ``ass`` demuxer
(``template_stream``), which carries it as extradata into the muxer. Items are not ASS events
(the payload is the item's bytes), so text tools that parse events (mkvextract, an ``.srt``
conversion) warn about or skip them; read the items with PyAV or ``omgrab``.
"""

from __future__ import annotations

import functools
import io
from typing import Any

import av

#: Codec private (script header) of every data track written.
ASS_HEADER = (
    b"[Script Info]\r\n"
    b"; omgrab data track: each block holds one item's bytes, not an ASS event\r\n"
    b"ScriptType: v4.00+\r\n"
    b"\r\n"
    b"[V4+ Styles]\r\n"
    b"Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, "
    b"BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, "
    b"BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding\r\n"
    b"Style: Default,Arial,16,&Hffffff,&Hffffff,&H0,&H0,0,0,0,0,100,100,0,0,1,1,0,2,10,10,10,0\r\n"
    b"\r\n"
    b"[Events]\r\n"
    b"Format: ReadOrder, Layer, Style, Name, MarginL, MarginR, MarginV, Effect, Text\r\n"
)


@functools.cache
def _template_container() -> Any:
    # Kept open for the life of the process: streams added from it refer to its parameters.
    return av.open(io.BytesIO(ASS_HEADER), format="ass")


def template_stream() -> Any:
    """Return an ``ass`` stream carrying ``ASS_HEADER``, to ``add_stream_from_template``."""
    return _template_container().streams[0]


def lacks_header(stream: Any) -> bool:
    """Whether ``stream`` is an ASS track without its header (published SDK, omgrab < 0.2)."""
    ctx = stream.codec_context
    return ctx is not None and ctx.name in ("ass", "ssa") and not ctx.extradata
