"""What a run looked like from outside (``Observed``) and the check of a scenario's ``expect``.

Every runner — pure logic, actor system, multiprocess — builds the same
``Observed`` from its own world (state, relay inbox, LND) and hands it to
``check_expectations``, so a scenario file means the same in all of them.
This module knows nothing about how events are delivered.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Observed:
    """A neutral view of one order after a step, keyed by party names from the scenario."""

    status: str
    published: str | None
    bonds: dict[str, list[str]] = field(default_factory=dict)  # party -> states, oldest first
    bond_amounts: dict[str, list[int]] = field(default_factory=dict)
    htlc: dict[str, str] = field(default_factory=dict)  # party -> LND state of its latest bond
    messages: dict[str, list[str]] = field(default_factory=dict)  # "cant-do:<reason>" for refusals
    bond_bolt11s: dict[str, list[str]] = field(default_factory=dict)  # from pay-bond-invoice
    taker: dict[str, Any] | None = None  # the order's taker fields (party name under "party")
    payment_failed: list[str] = field(default_factory=list)
    bond_invoices: int = 0  # bond hold invoices LND was asked to create


def _party_bonds(observed: Observed, party: str) -> list[str]:
    return observed.bonds.get(party, [])


def check_expectations(expect: Mapping[str, Any], observed: Observed) -> list[str]:
    """One line per expectation that does not hold; empty when all do."""
    problems: list[str] = []

    def differ(what: str, want: object, got: object) -> None:
        if want != got:
            problems.append(f"{what}: expected {want!r}, got {got!r}")

    if "status" in expect:
        differ("order status", expect["status"], observed.status)
    if "published" in expect:
        differ("published status", expect["published"], observed.published)
    for party, want in expect.get("bonds", {}).items():
        states = _party_bonds(observed, party)
        if isinstance(want, list):
            differ(f"bonds of {party}", want, states)
        elif want == "none":
            differ(f"bonds of {party}", [], states)
        else:
            differ(f"latest bond of {party}", want, states[-1] if states else "none")
    for party, want in expect.get("bond_count", {}).items():
        differ(f"bond count of {party}", want, len(_party_bonds(observed, party)))
    for party, want in expect.get("bond_amount", {}).items():
        amounts = observed.bond_amounts.get(party, [])
        differ(f"bond amount of {party}", want, amounts[-1] if amounts else None)
    for party, want in expect.get("htlc", {}).items():
        differ(f"HTLC of {party}'s bond", want, observed.htlc.get(party, "none"))
    for party, want in expect.get("messages", {}).items():
        differ(f"messages to {party}", list(want), observed.messages.get(party, []))
    for party, want in expect.get("last_message", {}).items():
        got = observed.messages.get(party, [])
        differ(f"last message to {party}", want, got[-1] if got else None)
    for party, counts in expect.get("message_count", {}).items():
        got = observed.messages.get(party, [])
        for action, want in counts.items():
            differ(f"'{action}' messages to {party}", want, got.count(action))
    for party, want in expect.get("distinct_bond_bolt11", {}).items():
        differ(
            f"distinct bolt11s sent to {party}",
            want,
            len(set(observed.bond_bolt11s.get(party, []))),
        )
    if "taker" in expect:
        want = expect["taker"]
        if want == "none":
            differ("order taker", None, observed.taker)
        elif observed.taker is None:
            problems.append(f"order taker: expected {want!r}, the order has none")
        else:
            for key, value in want.items():
                differ(f"order taker {key}", value, observed.taker.get(key))
    if "payment_failed" in expect:
        differ(
            "failed late payments",
            sorted(expect["payment_failed"]),
            sorted(observed.payment_failed),
        )
    if "bond_invoices" in expect:
        differ("bond invoices created", expect["bond_invoices"], observed.bond_invoices)
    all_states = [s for states in observed.bonds.values() for s in states]
    if "locked_count" in expect:
        differ("locked taker bonds", expect["locked_count"], all_states.count("locked"))
    if "released_count" in expect:
        differ("released taker bonds", expect["released_count"], all_states.count("released"))
    if "canceled_count" in expect:
        got = sum(
            msgs.count("canceled")
            for party, msgs in observed.messages.items()
            if party in observed.bonds
        )
        differ("canceled messages to bonded takers", expect["canceled_count"], got)
    return problems
