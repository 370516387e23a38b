"""What a journal entry records of a decided state, and how to get that state back.

An order with N bonds decides N ``InvoiceAccepted`` events in a take storm; journaling the
whole state with each decision cost O(N²) serialisation in the one actor every loser waits
for. So a decision whose state follows an earlier one records only what changed
(``changes``): the order record if it differs, the bonds that are new or differ, the dispute
if it differs, and the bonds' id order only when it is not "the old ones, then the new ones".
A decision that starts an order (nothing before) or ends in no state records the whole
``state``, as every entry did before this format existed; readers accept both, so journals
written before the change (and a daemon upgraded mid-trade) still replay.

Pure functions over the logic's values: no database, no JSON text (``records_json`` turns
the values into text and back). It must not decide anything.
"""

from __future__ import annotations

from typing import Any

from .order_logic.model import OrderState

# keys of a journal decision (records_json-decoded) that describe the state
STATE = "state"
CHANGES = "changes"
SUBJECT = "subject"  # the id of the order the changes apply to


def state_changes(before: OrderState, after: OrderState) -> dict[str, Any]:
    """What differs from `before` to `after` (both present); `apply_changes` undoes it."""
    changes: dict[str, Any] = {}
    if before.order is not after.order and before.order != after.order:
        changes["order"] = after.order
    old = {bond.id: bond for bond in before.bonds}
    changed = []
    added: list[str] = []
    for bond in after.bonds:
        previous = old.get(bond.id)
        if previous is None:
            added.append(bond.id)
            changed.append(bond)
        elif previous is not bond and previous != bond:
            changed.append(bond)
    changes["bonds"] = tuple(changed)
    after_ids = [bond.id for bond in after.bonds]
    if after_ids != [bond.id for bond in before.bonds] + added:
        changes["bond_ids"] = tuple(after_ids)  # a bond removed or moved: keep the exact order
    if before.dispute is not after.dispute and before.dispute != after.dispute:
        changes["dispute"] = after.dispute  # None too: a dispute removed
    return changes


def apply_changes(before: OrderState, changes: dict[str, Any]) -> OrderState:
    """The state `state_changes(before, after)` was computed for: `after`, rebuilt."""
    bonds = {bond.id: bond for bond in before.bonds}
    changed = changes.get("bonds", ())
    new_ids = [bond.id for bond in changed if bond.id not in bonds]
    bonds.update((bond.id, bond) for bond in changed)
    ids = changes.get("bond_ids")
    if ids is None:
        ids = [bond.id for bond in before.bonds] + new_ids
    return OrderState(
        order=changes.get("order", before.order),
        bonds=tuple(bonds[bond_id] for bond_id in ids),
        dispute=changes["dispute"] if "dispute" in changes else before.dispute,
    )


def journal_state(before: OrderState | None, after: OrderState | None) -> dict[str, Any]:
    """The state part of a journal decision: changes when both states exist, else the state."""
    if before is None or after is None:
        return {STATE: after}
    return {SUBJECT: after.order.id, CHANGES: state_changes(before, after)}


def recorded_state(before: OrderState | None, recorded: dict[str, Any]) -> OrderState | None:
    """The state a decoded journal decision recorded, given the state it was decided from
    (either format). A changes entry needs `before`: without one it is a broken journal."""
    if CHANGES not in recorded:
        return recorded.get(STATE)
    if before is None:
        raise ValueError("a journal entry records changes but there is no state before it")
    return apply_changes(before, recorded[CHANGES])


def subject_id(recorded: dict[str, Any]) -> str | None:
    """The id of the order a plain-JSON (not decoded) journal decision is about, if it says."""
    subject = recorded.get(SUBJECT)
    if isinstance(subject, str):
        return subject
    state = recorded.get(STATE)
    if isinstance(state, dict):
        order = state.get("order")
        if isinstance(order, dict) and isinstance(order.get("id"), str):
            return order["id"]
    return None
