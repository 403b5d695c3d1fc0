"""The Temporal data converter of our processes: the SDK's JSON payloads, decoded with each dataclass's resolved
field types kept instead of resolved again on every decode.

The SDK's decoder calls ``typing.get_type_hints`` on a dataclass for every payload it decodes; our modules use
``from __future__ import annotations``, so that evaluates every field's annotation string each time. Under ten
concurrent call set-ups that was about 5 % of the worker's CPU (py-spy on ``bench.call_setup``). The wire format is
the SDK's and decoding gives the same values (``tests/models/test_payloads.py`` compares the two on every dataclass
that crosses a workflow boundary); only the lookup is cached. Every process that decodes payloads (worker, media
processes) connects with :data:`DATA_CONVERTER`; one that only encodes may use the SDK's default.
"""

from __future__ import annotations

import dataclasses
from typing import Any, get_type_hints
from weakref import WeakKeyDictionary

from temporalio.converter import (
    CompositePayloadConverter,
    DataConverter,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
    JSONTypeConverter,
    JSONTypeConverterUnhandled,
    value_to_type,
)


@dataclasses.dataclass(frozen=True)
class _Field:
    name: str
    hint: Any
    init: bool


# Weak: a sandboxed workflow module's own dataclasses are created again for every workflow instance.
_fields_of: WeakKeyDictionary[type, tuple[_Field, ...]] = WeakKeyDictionary()


def _fields(cls: type) -> tuple[_Field, ...]:
    found = _fields_of.get(cls)
    if found is None:
        hints = get_type_hints(cls)
        found = tuple(_Field(f.name, hints[f.name], f.init) for f in dataclasses.fields(cls))
        _fields_of[cls] = found
    return found


class DataclassDecoder(JSONTypeConverter):
    """Builds a dataclass from its JSON object exactly as the SDK does (unknown keys ignored, a missing required
    field fails the constructor, ``init=False`` fields restored after it), with the field types looked up once."""

    def __init__(self) -> None:
        self._converters = (self,)

    def to_typed_value(self, hint: type, value: Any) -> Any | JSONTypeConverterUnhandled | None:
        if not (isinstance(hint, type) and dataclasses.is_dataclass(hint)):
            return JSONTypeConverter.Unhandled
        if not isinstance(value, dict):
            raise TypeError(f"Cannot convert to dataclass {hint}, value is {type(value)} not dict")
        init: dict[str, Any] = {}
        restored: dict[str, Any] = {}
        for field in _fields(hint):
            if field.name not in value:
                continue
            try:
                converted = value_to_type(field.hint, value[field.name], self._converters)
            except Exception as err:
                raise TypeError(f"Failed converting field {field.name} on dataclass {hint}") from err
            (init if field.init else restored)[field.name] = converted
        decoded = hint(**init)
        for name, field_value in restored.items():
            object.__setattr__(decoded, name, field_value)
        return decoded


_ENCODINGS = tuple(  # stateless, so shared: the SDK builds a payload converter per serialization context
    JSONPlainPayloadConverter(custom_type_converters=[DataclassDecoder()])
    if isinstance(converter, JSONPlainPayloadConverter)
    else converter
    for converter in DefaultPayloadConverter.default_encoding_payload_converters
)


class PayloadConverter(CompositePayloadConverter):
    """The SDK's default encodings, its JSON one decoding dataclasses with :class:`DataclassDecoder`."""

    def __init__(self) -> None:
        super().__init__(*_ENCODINGS)


DATA_CONVERTER = dataclasses.replace(DataConverter.default, payload_converter_class=PayloadConverter)
