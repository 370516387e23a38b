"""`order_logic.evolve.replace` is `dataclasses.replace`, only cheaper: for the order logic's
records, any set of field changes gives an equal, equally frozen and equally hashable copy; an
unknown field is the same TypeError; classes the short path would get wrong take the long one."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.order_logic.evolve import replace
from actors.order_logic.model import BondRecord, OrderRecord, OrderState
from adapters.nostr.protocol.enums import Status
from tests.logic.kit import pending_order, state_of, taken_order

ORDER_FIELDS = [f.name for f in dataclasses.fields(OrderRecord)]
VALUES = st.one_of(st.none(), st.integers(), st.text(max_size=8), st.booleans(),
                   st.sampled_from(list(Status)))


# a loaded CI machine can make the first draws slow: that is no failure of the code
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(ORDER_FIELDS), VALUES, max_size=6),
       st.booleans())
def test_an_order_record_copy_is_what_dataclasses_gives(changes: dict, taken: bool) -> None:
    order = taken_order() if taken else pending_order()
    ours, theirs = replace(order, **changes), dataclasses.replace(order, **changes)
    assert type(ours) is OrderRecord
    assert ours == theirs and vars(ours) == vars(theirs)
    assert order == (taken_order() if taken else pending_order())  # the original untouched
    with pytest.raises(dataclasses.FrozenInstanceError):
        ours.status = Status.ACTIVE  # type: ignore[misc]
    try:
        assert hash(ours) == hash(theirs)
    except TypeError:  # an unhashable value was put in: both refuse alike
        with pytest.raises(TypeError):
            hash(theirs)


def test_states_and_bonds_copy_alike() -> None:
    state = state_of(pending_order())
    assert replace(state, bonds=()) == dataclasses.replace(state, bonds=())
    assert type(replace(state, dispute=None)) is OrderState
    bond_fields = {f.name for f in dataclasses.fields(BondRecord)}
    assert "state" in bond_fields  # the field the bond logic replaces most


def test_an_unknown_field_is_the_same_error() -> None:
    order = pending_order()
    with pytest.raises(TypeError):
        dataclasses.replace(order, no_such_field=1)
    with pytest.raises(TypeError):
        replace(order, no_such_field=1)


@dataclass(frozen=True)
class _Checked:
    amount: int
    doubled: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "doubled", 2 * self.amount)


@dataclass(frozen=True, slots=True)
class _Slotted:
    a: int
    b: int = 0


def test_classes_the_short_path_would_get_wrong_take_the_long_one() -> None:
    assert replace(_Checked(1), amount=5).doubled == 10  # __post_init__ ran again
    assert replace(_Slotted(1), b=2) == _Slotted(1, 2)
