"""The only door from the order flow into the taker-bond logic (``taker_bonds``, BONDS.md).

The bond module is imported lazily, and only when an order really has bonds
or the feature is on, so the bonds-off flow never depends on it (BONDS.md I10:
with the feature off nothing changes). Release and deadlines are *not* gated
on the current setting: bonds created while it was on must still be released.
"""

from __future__ import annotations

from types import ModuleType

from .model import (
    ACTIVE_BOND_STATES,
    BondRecord,
    BondRole,
    BondState,
    Deadline,
    DecisionContext,
    Effect,
    OrderState,
)


def _taker_bonds() -> ModuleType:
    from . import taker_bonds  # the bond helper's module; lazily, see the module docstring

    return taker_bonds


def bonds_on_take(settings) -> bool:
    """Does a take need a bond under the current settings?"""
    if not settings.anti_abuse_bond.enabled:
        return False
    return _taker_bonds().bonds_on_take(settings)


def bond_with_hash(state: OrderState, payment_hash: str) -> BondRecord | None:
    return next((bond for bond in state.bonds if bond.hash == payment_hash), None)


def holds_active_taker_bond(state: OrderState, pubkey: str) -> bool:
    return any(
        bond.pubkey == pubkey and bond.role == BondRole.TAKER and bond.state in ACTIVE_BOND_STATES
        for bond in state.bonds
    )


def has_locked_taker_bond(state: OrderState) -> bool:
    return any(
        bond.role == BondRole.TAKER and bond.state == BondState.LOCKED for bond in state.bonds
    )


def release_taker_bonds(
    state: OrderState, ctx: DecisionContext, *, notify: bool
) -> tuple[OrderState, tuple[Effect, ...]]:
    """Release every active taker bond on an exit; a no-op for an order without bonds."""
    if not any(bond.state in ACTIVE_BOND_STATES for bond in state.bonds):
        return state, ()
    return _taker_bonds().release_taker_bonds(state, ctx, notify)


def bond_deadlines(state: OrderState) -> tuple[Deadline, ...]:
    if not state.bonds:
        return ()
    return tuple(_taker_bonds().bond_deadlines(state))


def taker_bonds_module() -> ModuleType:
    """For the dispatcher's bond routes (take, invoice events, cancel in the bond window)."""
    return _taker_bonds()
