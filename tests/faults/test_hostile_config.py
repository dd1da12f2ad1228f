"""Hostile rig config files: every input is accepted or rejected with a ConfigError naming the key.

Property-based (the suite's deterministic hypothesis profile): documents built from the real
schema of :mod:`omgrab.app.rig_config` with hostile values (wrong types, huge and non-finite
numbers, NUL and control characters, deep nesting, unknown sections and keys), fed both as
parsed tables (``from_dict``) and as TOML text through ``load``; plus random bytes as the file.
A handful go through ``omgrab config --check FILE`` in a real process: exit 2, every stderr
line an ``omgrab: error:`` line, no traceback.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import pathlib
import typing
from typing import Any

import hypothesis
import pytest
from hypothesis import strategies as st

from omgrab.app import rig_config
from tests import cli_process
from tests.faults import conftest

pytestmark = pytest.mark.faults

EXAMPLES = conftest.iterations(300, 5000)
UPLOAD_KEYS = ("bucket", "region", "prefix", "verify_tls", "state_dir", "enabled", "max_bytes")


def _schema() -> dict[str, list[str]]:
    """``{section path: [key, ...]}`` of the real config, nested stream sections included."""
    out: dict[str, list[str]] = {}

    def walk(cls: type, path: str) -> None:
        hints = typing.get_type_hints(cls)
        out[path] = []
        for field in dataclasses.fields(cls):
            if dataclasses.is_dataclass(hints[field.name]):
                walk(hints[field.name], f"{path}.{field.name}")
            out[path].append(field.name)

    for name, cls in rig_config.SECTIONS.items():
        walk(cls, name)
    out[rig_config.UPLOAD] = list(UPLOAD_KEYS)
    return out


SCHEMA = _schema()

scalars = st.one_of(
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.sampled_from([0, -1, 1, 65535, 65536, 2**63 - 1, -(2**63), 10**30]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1e-300, 1e308, math.inf, -math.inf, math.nan]),
    st.text(st.characters(exclude_categories=("Cs",)), max_size=40),
    st.sampled_from(["", "\x00", "a\x00b", "../../etc/passwd", "/dev/null", "x" * 5000]),
    st.sampled_from(["simulated", "usb", "video_file", "oakd", "gpiod", "ina219", "h264"]),
    st.datetimes(timezones=st.none()),
    st.dates(),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
paths = st.sampled_from(sorted(SCHEMA))


@st.composite
def hostile_settings(draw: st.DrawFn) -> list[tuple[str, str, Any]]:
    """A few ``(section path, key, value)`` settings: real keys mostly, some unknown."""
    settings = []
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.one_of(paths, paths, paths, st.text(min_size=1, max_size=10)))
        keys = SCHEMA.get(path, [])
        key = draw(st.sampled_from(keys) if keys else st.text(min_size=1, max_size=10))
        if keys and draw(st.integers(0, 9)) == 0:
            key = draw(st.text(min_size=1, max_size=10))
        settings.append((path, key, draw(values)))
    return settings


def _document(settings: list[tuple[str, str, Any]]) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for path, key, value in settings:
        node = doc
        for part in path.split("."):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):  # a previous setting put a value here
                child = node[part] = {}
            node = child
        node[key] = value
    return doc


def _named(problems: list[str], settings: list[tuple[str, str, Any]]) -> bool:
    """Whether each problem names one of the keys (or sections) the document set."""
    words = set()
    for path, key, _ in settings:
        parts = path.split(".")
        words.update(parts)
        words.add(key)
    return all(any(w in p for w in words) for p in problems)


def _check(doc: dict[str, Any], settings: list[tuple[str, str, Any]], where: str) -> None:
    try:
        rig_config.from_dict(doc, where, env={})
    except rig_config.ConfigError as exc:
        assert exc.problems, "a ConfigError with no problem"
        assert _named(exc.problems, settings), (exc.problems, settings)


@hypothesis.settings(max_examples=EXAMPLES, deadline=None)
@hypothesis.given(hostile_settings())
def test_hostile_tables_are_accepted_or_rejected_naming_the_key(
    settings: list[tuple[str, str, Any]],
) -> None:
    _check(_document(settings), settings, "rig.toml")


def _toml(value: Any) -> str:
    """TOML text of a value (only the subset the strategies produce)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a TOML basic string
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + "}"


def _toml_document(doc: dict[str, Any], prefix: str = "") -> str:
    lines = [f"[{prefix}]"] if prefix else []
    tables = []
    for key, value in doc.items():
        if isinstance(value, dict) and key and all(c.isalnum() or c in "_-" for c in key):
            tables.append((key, value))
        else:
            lines.append(f"{json.dumps(key)} = {_toml(value)}")
    text = "\n".join(lines) + "\n"
    for key, value in tables:
        text += _toml_document(value, f"{prefix}.{key}" if prefix else key)
    return text


@hypothesis.settings(max_examples=EXAMPLES // 2, deadline=None)
@hypothesis.given(settings=hostile_settings())
def test_hostile_toml_files_are_accepted_or_rejected_naming_the_key(
    tmp_path_factory: pytest.TempPathFactory, settings: list[tuple[str, str, Any]]
) -> None:
    file = tmp_path_factory.mktemp("cfg") / "rig.toml"
    file.write_text(_toml_document(_document(settings)))
    try:
        rig_config.load(file, env={})
    except rig_config.ConfigError as exc:
        assert exc.problems
        assert _named(exc.problems, settings) or str(file) in exc.problems[0], exc.problems


@hypothesis.settings(max_examples=EXAMPLES // 2, deadline=None)
@hypothesis.given(data=st.binary(max_size=300))
def test_binary_garbage_files_are_rejected_with_a_config_error(
    tmp_path_factory: pytest.TempPathFactory, data: bytes
) -> None:
    file = tmp_path_factory.mktemp("cfg") / "rig.toml"
    file.write_bytes(data)
    try:
        rig_config.load(file, env={})
    except rig_config.ConfigError as exc:
        assert exc.problems and all(str(file) in p or "." in p for p in exc.problems)


ENV_KEYS = {
    f"OMGRAB_{p.replace('.', '_').upper()}_{k.upper()}": (p, k) for p in SCHEMA for k in SCHEMA[p]
}


@hypothesis.settings(max_examples=EXAMPLES // 3, deadline=None)
@hypothesis.given(
    env=st.dictionaries(
        st.sampled_from(sorted(ENV_KEYS)),
        st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=30),
        max_size=4,
    )
)
def test_hostile_environment_overrides_are_rejected_naming_the_key(env: dict[str, str]) -> None:
    try:
        rig_config.from_dict({}, "rig.toml", env=env)
    except rig_config.ConfigError as exc:
        assert exc.problems
        assert _named(exc.problems, [(*ENV_KEYS[var], None) for var in env]), (exc.problems, env)


HOSTILE_FILES: dict[str, bytes] = {
    "binary": bytes(range(256)) * 4,
    "non_utf8": b'[rig]\nid = "\xff\xfe"\n',
    "nul": b'[rig]\nid = "a\x00b"\n',
    "huge_number": b"[dashboard]\nport = 99999999999999999999999999999999\n",
    "wrong_type": b'[recording]\nchunk_length_s = "sixty"\n',
    "deep_nesting": b"[device]\nsource = " + b"[" * 3000 + b"]" * 3000 + b"\n",
    "deep_tables": b"[" + b".".join([b"device"] + [b"a"] * 500) + b"]\nx = 1\n",
    "unknown_section": b"[kinect]\nenabled = true\n",
    "nan": b"[storage]\nreduce_below = nan\n",
}


@pytest.mark.parametrize("name", sorted(HOSTILE_FILES))
def test_config_check_cli_gives_one_error_line_and_exit_2(
    tmp_path: pathlib.Path, name: str
) -> None:
    file = tmp_path / "rig.toml"
    file.write_bytes(HOSTILE_FILES[name])
    done = cli_process.omgrab("config", "--check", str(file), cwd=tmp_path, timeout=60)
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("omgrab: error: "), lines[0]
