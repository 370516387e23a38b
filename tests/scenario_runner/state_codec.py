"""Round-trip an ``OrderState`` through JSON, as a restart reloads it from storage.

The pure runner's ``restart`` serializes the state and rebuilds it from the
text, so any field that does not survive (an enum left as a plain string, a
tuple turned into a list) shows up as a difference in the scenarios.
"""

from __future__ import annotations

import json
from dataclasses import asdict

from actors.order_logic.model import (
    BondRecord,
    BondRole,
    BondState,
    DisputeRecord,
    OrderRecord,
    OrderState,
)
from adapters.nostr.protocol.enums import Kind, Status


def dump_state(state: OrderState) -> str:
    return json.dumps(asdict(state), sort_keys=True)


def load_state(text: str) -> OrderState:
    raw = json.loads(text)
    order = dict(raw["order"])
    order["kind"] = Kind(order["kind"])
    order["status"] = Status(order["status"])
    bonds = []
    for bond in raw["bonds"]:
        bond = dict(bond)
        bond["role"] = BondRole(bond["role"])
        bond["state"] = BondState(bond["state"])
        bonds.append(BondRecord(**bond))
    dispute = DisputeRecord(**raw["dispute"]) if raw.get("dispute") else None
    return OrderState(OrderRecord(**order), tuple(bonds), dispute)
