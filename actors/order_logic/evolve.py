"""`replace` for the order logic's frozen records, without a trip through `__init__`.

`dataclasses.replace` builds the copy by calling the class's generated `__init__` with every
field: for an order record (45 fields, frozen, so each one set through `object.__setattr__`)
that is ~11 µs, and a decision makes several copies (a tenth of the actors' thread in
benchmark (2)). A plain dataclass holds its fields in its `__dict__`, so copying that dict and
updating it gives the same record in well under a microsecond.

Only classes where that is exactly `dataclasses.replace` take the short path: dataclasses with
no `__post_init__`, no `__slots__`, and every field an `__init__` field. Everything else, and an
unknown field name (the same `TypeError`), goes through `dataclasses.replace`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

T = TypeVar("T")

# class -> its field names when the short path is exact for it, else None
_SHORT_PATH: dict[type, frozenset[str] | None] = {}


def _field_names(cls: type) -> frozenset[str] | None:
    if cls not in _SHORT_PATH:
        exact = (dataclasses.is_dataclass(cls) and not hasattr(cls, "__post_init__")
                 and "__slots__" not in vars(cls)
                 and all(f.init for f in dataclasses.fields(cls)))
        _SHORT_PATH[cls] = (frozenset(f.name for f in dataclasses.fields(cls))
                            if exact else None)
    return _SHORT_PATH[cls]


def replace(obj: T, /, **changes: Any) -> T:
    """What `dataclasses.replace(obj, **changes)` returns."""
    cls = type(obj)
    names = _field_names(cls)
    if names is None or not names.issuperset(changes):
        return dataclasses.replace(obj, **changes)  # type: ignore[type-var]
    copy = object.__new__(cls)
    state = copy.__dict__
    state.update(obj.__dict__)
    state.update(changes)
    return copy
