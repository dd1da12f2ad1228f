"""Walk the omgrab.runtime API reference (the seed) and check the package against it.

Every module, class, function, method and property the reference names must exist; every
signature it prints must match parameter for parameter, with the same defaults.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import pathlib
import re

import pytest

SEED = pathlib.Path(__file__).parent / "data" / "seed_runtime_api.txt"

_MODULE = re.compile(r"^(omgrab\.runtime\.\w+)$")
_CALL = re.compile(r"^([A-Za-z_]\w*)\((.*)\)$")
_NAME = re.compile(r"^([A-Za-z_]\w*)$")


@dataclasses.dataclass(frozen=True)
class Entry:
    module: str
    owner: str | None  # class name for methods/properties, None for module level
    name: str
    params: tuple[tuple[str, object], ...] | None  # None when the seed prints no signature
    kind: str  # "class", "callable" or "property"

    @property
    def id(self) -> str:
        where = f"{self.owner}." if self.owner else ""
        return f"{self.module.rsplit('.', 1)[1]}:{where}{self.name}"


_NO_DEFAULT = object()


def _parse_params(text: str) -> tuple[tuple[str, object], ...]:
    params = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if "=" in part:
            name, default = part.split("=", 1)
            params.append((name.strip(), ast.literal_eval(default.strip())))
        else:
            params.append((part, _NO_DEFAULT))
    return tuple(params)


def _parse() -> list[Entry]:
    lines = [line.strip() for line in SEED.read_text().splitlines()]
    entries: list[Entry] = []
    module: str | None = None
    owner: str | None = None
    for i, line in enumerate(lines):
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if m := _MODULE.match(line):
            module, owner = m.group(1), None
            continue
        if module is None:
            continue
        after = lines[i + 1 : i + 4]
        if nxt not in ("¶", "dataclass", "property") and not (nxt == "¶" or "Bases:" in nxt):
            continue
        if m := _CALL.match(line):
            name, params = m.group(1), _parse_params(m.group(2))
            if name[0].isupper():
                owner = name
                entries.append(Entry(module, None, name, params, "class"))
            else:
                entries.append(Entry(module, owner, name, params, "callable"))
        elif m := _NAME.match(line):
            name = m.group(1)
            if nxt == "property":
                entries.append(Entry(module, owner, name, None, "property"))
            elif name[0].isupper() and ("¶" in after):
                owner = name
                entries.append(Entry(module, None, name, None, "class"))
    return entries


ENTRIES = _parse()


def test_the_seed_parses_into_the_whole_api() -> None:
    ids = {e.id for e in ENTRIES}
    assert len(ENTRIES) > 60
    for expected in (
        "recording_manager:RecordingManager.start_recording",
        "recording_session:RecordingSession.join",
        "network_monitor:Config",
        "device_status:DeviceStatus",
        "battery_monitor:BatteryMonitor.available",
        "gpio_manager:ButtonConfig.button_monitor_loop",
        "wifi_connect:WifiManager.is_wifi_connect_running",
    ):
        assert expected in ids


def _resolve(entry: Entry) -> object:
    module = importlib.import_module(entry.module)
    if entry.owner is None:
        return getattr(module, entry.name)
    cls = getattr(module, entry.owner)
    if hasattr(cls, entry.name):
        return inspect.getattr_static(cls, entry.name)
    # A function printed after a class that is not its method is module level (e.g.
    # button_monitor_loop after ButtonConfig).
    return getattr(module, entry.name)


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.id for e in ENTRIES])
def test_seed_name_exists_with_its_signature(entry: Entry) -> None:
    obj = _resolve(entry)
    if entry.kind == "property":
        assert isinstance(obj, property), f"{entry.id} must be a property"
        return
    if entry.kind == "class":
        assert inspect.isclass(obj), f"{entry.id} must be a class"
    if entry.params is None:
        return
    target = obj.__init__ if inspect.isclass(obj) else obj
    if isinstance(target, (staticmethod, classmethod)):
        target = target.__func__
    signature = inspect.signature(target)
    actual = [
        p
        for p in signature.parameters.values()
        if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    positional = [p for p in actual if p.kind is not p.KEYWORD_ONLY]
    expected_names = [name for name, _ in entry.params]
    assert [p.name for p in positional[: len(expected_names)]] == expected_names, entry.id
    # Anything we add beyond the seed must be optional, so code written against it still runs.
    for extra in actual[len(expected_names) :]:
        assert extra.default is not inspect.Parameter.empty, f"{entry.id}: extra {extra.name}"
    for (name, default), param in zip(entry.params, positional, strict=False):
        if default is _NO_DEFAULT:
            assert param.default is inspect.Parameter.empty, f"{entry.id}: {name} is required"
        else:
            assert param.default == default, f"{entry.id}: default of {name}"
