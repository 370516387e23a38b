"""In which order statuses each client action is allowed, and the refusal when it is not.

This table *is* the documentation of the (status, action) pairs (STYLE.md:
transitions as a table, handlers below). Handlers call ``status_refusal`` at
the step where the Rust handler checks the status, so check order stays the
spec's. The reasons differ per action on purpose (trap 12).
"""

from __future__ import annotations

from adapters.nostr.protocol.enums import Action, CantDoReason, Status

_S = Status
_R = CantDoReason

# action -> (statuses in which it proceeds, reason when the order is elsewhere)
ALLOWED_STATUSES: dict[Action, tuple[frozenset[Status], CantDoReason]] = {
    Action.TAKE_SELL: (frozenset({_S.PENDING, _S.WAITING_TAKER_BOND}), _R.INVALID_ORDER_STATUS),
    Action.TAKE_BUY: (frozenset({_S.PENDING, _S.WAITING_TAKER_BOND}), _R.INVALID_ORDER_STATUS),
    Action.ADD_INVOICE: (
        frozenset({_S.WAITING_BUYER_INVOICE, _S.SETTLED_HOLD_INVOICE}),
        _R.NOT_ALLOWED_BY_STATUS,
    ),
    Action.FIAT_SENT: (frozenset({_S.ACTIVE}), _R.INVALID_ORDER_STATUS),
    Action.RELEASE: (frozenset({_S.FIAT_SENT, _S.DISPUTE}), _R.NOT_ALLOWED_BY_STATUS),
    Action.CANCEL: (
        frozenset(
            {
                _S.PENDING,
                _S.WAITING_TAKER_BOND,
                _S.WAITING_PAYMENT,
                _S.WAITING_BUYER_INVOICE,
                _S.ACTIVE,
                _S.FIAT_SENT,
                _S.DISPUTE,
            }
        ),
        _R.NOT_ALLOWED_BY_STATUS,
    ),
    Action.DISPUTE: (frozenset({_S.ACTIVE, _S.FIAT_SENT}), _R.NOT_ALLOWED_BY_STATUS),
    Action.RATE_USER: (
        frozenset({_S.SUCCESS, _S.SETTLED_HOLD_INVOICE}),
        _R.INVALID_ORDER_STATUS,
    ),
}

CANCELED_STATUSES = frozenset({_S.CANCELED, _S.COOPERATIVELY_CANCELED, _S.CANCELED_BY_ADMIN})


def status_refusal(action: Action, status: Status) -> CantDoReason | None:
    """None if ``action`` may proceed in ``status``, else the handler's own refusal reason."""
    allowed, reason = ALLOWED_STATUSES[action]
    return None if status in allowed else reason
