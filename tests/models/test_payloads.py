"""Our data converter decodes exactly what the SDK's default decodes: every dataclass that crosses a workflow
boundary, with values Hypothesis builds from its field types, and the SDK's errors on malformed input."""

from __future__ import annotations

import dataclasses
import inspect
import sys
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from temporalio.converter import DataConverter

import workflows  # noqa: F401  (imports every models module whose dataclasses cross a workflow boundary)
from models.calls import CallRoute, StartCall
from models.payloads import DATA_CONVERTER

OURS = DATA_CONVERTER.payload_converter
SDK = DataConverter.default.payload_converter


def _boundary_dataclasses() -> list[type]:
    found = []
    for name, module in sorted(sys.modules.items()):
        if not name.startswith("models.") or name == "models.payloads":
            continue
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if dataclasses.is_dataclass(cls) and cls.__module__ == name:
                found.append(cls)
    return found


BOUNDARY = _boundary_dataclasses()


def test_the_boundary_is_not_empty() -> None:
    assert StartCall in BOUNDARY and CallRoute in BOUNDARY and len(BOUNDARY) > 40


@pytest.mark.parametrize("cls", BOUNDARY, ids=lambda cls: f"{cls.__module__}.{cls.__qualname__}")
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_decodes_as_the_sdk_does(cls: type, data: st.DataObject) -> None:
    try:
        value = data.draw(st.from_type(cls))
    except Exception as exc:  # a field type Hypothesis cannot build: that class is covered by the suite's own calls
        pytest.skip(f"no strategy for {cls.__qualname__}: {exc}")
    [payload] = SDK.to_payloads([value])
    assert OURS.to_payloads([value]) == [payload]  # the same wire format
    # repr: the types of nested values count too, and a NaN equals itself
    assert repr(OURS.from_payloads([payload], [cls])) == repr(SDK.from_payloads([payload], [cls]))


def _error(converter: Any, payload: Any, cls: type) -> str:
    with pytest.raises(Exception) as raised:
        converter.from_payloads([payload], [cls])
    chain: list[str] = []
    exc: BaseException | None = raised.value
    while exc is not None:
        chain.append(f"{type(exc).__name__}: {exc}")
        exc = exc.__cause__
    return " <- ".join(chain)


def test_malformed_payloads_fail_as_with_the_sdk() -> None:
    start = SDK.to_payloads([{"call_id": "c1", "direction": "sideways"}])[0]  # not a CallDirection, fields missing
    assert _error(OURS, start, StartCall) == _error(SDK, start, StartCall)
    not_an_object = SDK.to_payloads([["a", "list"]])[0]
    assert _error(OURS, not_an_object, CallRoute) == _error(SDK, not_an_object, CallRoute)
