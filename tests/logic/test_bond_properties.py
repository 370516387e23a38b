"""Property test: any interleaving of takes, payments, cancels, expiries and restarts keeps I1–I9.

Hypothesis generates a race of 2–6 takers on one order — take / retake, pay
(alone or back-to-back), taker and maker cancels, bond and order expiry,
LND's own expiry, LND refusing cancels, LND answering late, stream replays,
restarts (with payments while down) and waiting-state timeouts — and runs it
through the pure scenario runner, which checks the invariants after every
step. At the end LND recovers and the run is checked with final strictness,
plus an independent look at the fake LND and the inboxes. Deterministic
(``derandomize``) so CI sees the same cases; a failure prints the steps as a
scenario you can paste into tests/scenarios/.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from actors.order_logic.model import BondRole
from adapters.nostr.protocol.enums import Action
from tests.scenario_runner.format import FormatError, parse_scenario
from tests.scenario_runner.pure import PureRun, ScenarioFailed

# step kinds, repeated by how often they should come up (faults often enough to matter)
STEP_WEIGHTS = {
    "take": 5,
    "pay": 4,
    "pay_burst": 2,
    "cancel": 3,
    "lnd_cancel_fails": 2,
    "lnd_recovers": 1,
    "expire_bond": 1,
    "lnd_expires": 1,
    "redeliver": 1,
    "pay_while_down": 1,
    "crash_after_pay": 1,
    "maker_cancel": 1,
    "restart": 1,
    "expire_order": 1,
    "lnd_slow": 1,
    "lnd_refuses_invoices": 1,
    "timeout": 1,
}
STEP_KINDS = [kind for kind, weight in STEP_WEIGHTS.items() for _ in range(weight)]


def _step(kind: str, who: str, burst: list[str]) -> dict:
    """One scenario step of the given kind (``who``/``burst`` used where a taker is needed)."""
    if kind in ("take", "pay", "cancel", "expire_bond", "lnd_expires", "redeliver"):
        return {"do": kind, "who": who}
    if kind == "pay_burst":
        return {"do": "pay", "who": burst}
    if kind == "pay_while_down":
        return {"do": "restart", "while_down": [{"do": "pay", "who": who}]}
    if kind == "crash_after_pay":
        return {"do": "pay", "who": who, "crash_after_commit": True}
    if kind == "maker_cancel":
        return {"do": "cancel", "who": "M"}
    return {"do": kind}


@st.composite
def races(draw: st.DrawFn) -> dict:
    takers = [f"T{n}" for n in range(1, draw(st.integers(2, 6)) + 1)]
    # one "hot" taker acts about half the time, so take/cancel/pay of the same key meet often
    who = st.one_of(st.just(takers[0]), st.sampled_from(takers))
    step = st.builds(_step, st.sampled_from(STEP_KINDS), who, st.lists(who, min_size=2, max_size=4))
    steps = draw(st.lists(step, min_size=8, max_size=30))
    steps.append({"do": "lnd_recovers", "note": "quiesce for the final check"})
    return {
        "title": "generated race",
        "order": {"kind": draw(st.sampled_from(["buy", "sell"])), "expires_in": 172_800},
        "steps": steps,
    }


def _as_toml(raw: dict) -> str:
    """The generated race as a scenario file, ready to paste into tests/scenarios/."""
    lines = ['title = "regression"', "", "[order]", f'kind = "{raw["order"]["kind"]}"']
    lines.append("expires_in = 172800")
    for step in raw["steps"]:
        lines.extend(["", "[[steps]]"])
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in step.items())
    return "\n".join(lines)


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    return str(value)


def _independent_outcome_problems(run: PureRun) -> list[str]:
    """Cross-check the end state from outside the invariants module: LND and the inboxes."""
    problems = []
    bonds = [b for b in run.state.bonds if b.role == BondRole.TAKER]
    for bond in bonds:
        if run.lnd.state_of(bond.hash) == "settled":
            problems.append(f"bond HTLC {bond.hash[:8]} was settled")
    locked = [b for b in bonds if str(b.state) == "locked"]
    if len(locked) > 1:
        problems.append("more than one locked taker bond")
    ever_won = {b.pubkey for b in bonds if b.id in run.history.ever_locked}
    for bond in bonds:
        paid = bond.hash in run.history.accepted
        if not paid or bond.pubkey in ever_won:
            continue
        if run.lnd.state_of(bond.hash) != "canceled":
            problems.append(f"a paid loser's HTLC {bond.hash[:8]} is {run.lnd.state_of(bond.hash)}")
        told = [m for m in run.inbox.get(bond.pubkey, []) if m.action == Action.CANCELED]
        own_bonds = sum(1 for b in bonds if b.pubkey == bond.pubkey)
        if not 1 <= len(told) <= own_bonds:
            problems.append(
                f"a paid loser got {len(told)} canceled for {own_bonds} bond(s) on the order"
            )
    # BONDS.md §4.6: a racer released by anything but its own invoice's expiry is told once
    silent_causes = {"DeadlineReached:bond-expiry", "InvoiceCanceled"}
    for bond in bonds:
        cause = run.release_causes.get(bond.id)
        if cause is None or cause in silent_causes or bond.id in run.history.ever_locked:
            continue
        if not bond.canceled_notice_sent or run.history.bond_notices[bond.id] != 1:
            problems.append(
                f"racer bond {bond.id[:8]} released by {cause} was told "
                f"{run.history.bond_notices[bond.id]}×"
            )
    return problems


@settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(races())
def test_any_interleaving_keeps_the_bond_invariants(raw: dict) -> None:
    scenario = parse_scenario(Path("generated.toml"), raw)
    assert not isinstance(scenario, FormatError), str(scenario)
    note(_as_toml(raw))
    run = PureRun(scenario)
    try:
        run.run()
    except ScenarioFailed as failed:
        raise AssertionError(f"{failed}\n\nsteps:\n{_as_toml(raw)}") from None
    problems = _independent_outcome_problems(run)
    assert not problems, "\n".join(problems) + "\n\ntrace:\n" + "\n".join(run.trace)
