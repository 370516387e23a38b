"""JSON for the order logic's values: events, effects, records and protocol payloads.

The journal and the outbox store these values as text and must get back exactly
what was stored (replay compares decisions with ``==``), so every dataclass and
enum is written with a type tag and rebuilt from a registry of known types.
Only types registered here can be read back: reading never imports by name.
"""

from __future__ import annotations

import dataclasses
import json
from enum import Enum
from types import ModuleType
from typing import Any

import orjson

from adapters.nostr.protocol import enums as protocol_enums
from adapters.nostr.protocol import payloads as protocol_payloads

from .order_logic import model

_TYPE = "__type__"
_ENUM = "__enum__"
_BYTES = "__bytes__"


def _collect(*modules: ModuleType) -> tuple[dict[str, type], dict[str, type[Enum]]]:
    classes: dict[str, type] = {}
    enums: dict[str, type[Enum]] = {}
    for module in modules:
        for name, value in vars(module).items():
            if not isinstance(value, type) or value.__module__ != module.__name__:
                continue
            if issubclass(value, Enum):
                enums[name] = value
            elif dataclasses.is_dataclass(value):
                classes[name] = value
    return classes, enums


_CLASSES, _ENUMS = _collect(model, protocol_enums, protocol_payloads)


def register(cls: type) -> type:
    """Make another dataclass or enum readable (used as a class decorator by other modules)."""
    if issubclass(cls, Enum):
        _ENUMS[cls.__name__] = cls
    else:
        _CLASSES[cls.__name__] = cls
    return cls


_PLAIN = frozenset({str, int, bool, type(None)})


class _StdFloat(float):
    """A float orjson must write as the standard library does: the two differ on some exponents
    (``1e-07`` against ``1e-7``) and on NaN, and stored texts are compared with new ones."""


# field names of each dataclass met so far (None: not a dataclass); `dataclasses.fields` and
# `is_dataclass` per value were a tenth of the encoding's cost
_FIELD_NAMES: dict[type, tuple[str, ...] | None] = {}


def _field_names(cls: type) -> tuple[str, ...] | None:
    names = _FIELD_NAMES.get(cls, ())
    if names == ():
        is_record = dataclasses.is_dataclass(cls) and not issubclass(cls, Enum)
        names = tuple(f.name for f in dataclasses.fields(cls)) if is_record else None
        _FIELD_NAMES[cls] = names
    return names


def _encode(value: Any) -> Any:
    cls = type(value)
    if cls in _PLAIN:
        return value
    names = _field_names(cls)
    if names is not None:
        out: dict[str, Any] = {_TYPE: cls.__name__}
        for name in names:
            item = getattr(value, name)
            # most fields are plain: no call for them (records have up to 50 fields)
            out[name] = item if type(item) in _PLAIN else _encode(item)
        return out
    if cls is float:
        # orjson and json write these alike (checked against json in the tests): no wrapper
        return value if 1e-4 <= abs(value) < 1e16 or value == 0 else _StdFloat(value)
    if isinstance(value, Enum):
        return {_ENUM: cls.__name__, "v": value.value}
    if isinstance(value, tuple | list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, bytes):
        return {_BYTES: value.hex()}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_decode(v) for v in value)
    if not isinstance(value, dict):
        return value
    if _ENUM in value:
        return _ENUMS[value[_ENUM]](value["v"])
    if _BYTES in value:
        return bytes.fromhex(value[_BYTES])
    if _TYPE in value:
        cls = _CLASSES[value[_TYPE]]
        kwargs = {k: _decode(v) for k, v in value.items() if k != _TYPE}
        return cls(**kwargs)
    return {k: _decode(v) for k, v in value.items()}


# one encoder: `json.dumps` with any option builds a new one per call
_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def _std_float(value: Any) -> orjson.Fragment:
    if type(value) is _StdFloat:
        return orjson.Fragment(_COMPACT.encode(float(value)))
    raise TypeError(f"not JSON: {type(value).__name__}")


def dumps(value: Any) -> str:
    """Tagged, compact JSON of a value built from registered dataclasses, enums and plain data.

    The text is the standard library's (`json`, compact, ``ensure_ascii=False``), character for
    character: a re-delivered event is recognised by its stored text. orjson writes it several
    times faster (the journal's and outbox's JSON was a quarter of the order actors' time in
    benchmark (2)); what it cannot write (integers beyond 64 bits, lone surrogates) the
    standard library does."""
    encoded = _encode(value)
    try:
        return orjson.dumps(encoded, default=_std_float).decode()
    except TypeError:
        return _COMPACT.encode(encoded)


def loads(text: str) -> Any:
    """The value ``dumps`` wrote; tuples come back as tuples (lists are never stored)."""
    # not orjson: it reads integers beyond 64 bits as floats
    return _decode(json.loads(text))
