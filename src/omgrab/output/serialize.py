"""JSON-lines serialisation (orjson) and a crash-tolerant reader."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import os
import pathlib
from collections.abc import Iterator
from typing import Any

import orjson

from omgrab.output import types

OPTIONS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def default(obj: Any) -> Any:
    """Serialise what orjson does not know natively.

    Paths become strings, sets sorted lists (when sortable), timedeltas seconds, bytes hex,
    enums their value, non-dict dataclass fields via ``dataclasses.asdict``; anything else is a
    ``TypeError`` naming the type.
    """
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, set | frozenset):
        try:
            return sorted(obj)
        except TypeError:
            return list(obj)
    if isinstance(obj, datetime.timedelta):
        return obj.total_seconds()
    if isinstance(obj, bytes | bytearray | memoryview):
        return bytes(obj).hex()
    if isinstance(obj, enum.Enum):
        return obj.value
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    raise TypeError(f"cannot serialise {type(obj).__module__}.{type(obj).__qualname__}")


def dumps_line(obj: Any) -> bytes:
    """Serialise ``obj`` as one newline-terminated JSON line.

    Non-finite floats become ``null`` (orjson's rule).

    Raises:
        InvalidEntryError: Something in ``obj`` cannot be serialised.
    """
    try:
        return orjson.dumps(obj, default=default, option=OPTIONS)
    except orjson.JSONEncodeError as exc:
        raise types.InvalidEntryError(f"entry is not JSON-serialisable: {exc}") from None


def iter_jsonl(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Yield the objects of a JSON-lines log written by the OutputManager.

    The writer only ever writes whole lines, but a power cut (or a kill in the middle of a
    large ``write``) can leave the *last* line incomplete; such a trailing fragment is skipped.
    A corrupt line anywhere else raises ``ValueError`` naming the line number.
    """
    data = pathlib.Path(path).read_bytes()
    lines = data.split(b"\n")
    last = len(lines) - 1
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            yield orjson.loads(raw)
        except orjson.JSONDecodeError:
            if number - 1 == last:
                return  # unterminated tail of an interrupted write
            raise ValueError(f"{os.fspath(path)}:{number}: corrupt JSON line") from None


def read_jsonl(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Return every complete object of a JSON-lines log (see ``iter_jsonl``)."""
    return list(iter_jsonl(path))
