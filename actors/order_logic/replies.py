"""The one place that builds outgoing messages for the order logic.

Every refusal goes through ``cant_do`` and every notice through ``notify``, so
reply shapes (id, request_id, trade_index echo) are decided once. The wire
``version`` is stamped later by the transport (1 on gift wrap, 2 on nip44).
"""

from __future__ import annotations

from adapters.nostr.protocol.enums import Action, CantDoReason, WrapperKey
from adapters.nostr.protocol.payloads import CantDo, Message, Payload

from .model import ClientRequest, SendMessage


def notify(
    recipient: str,
    action: Action,
    order_id: str | None,
    payload: Payload | None = None,
    *,
    request_id: int | None = None,
    trade_index: int | None = None,
) -> SendMessage:
    """A daemon → client message about one order."""
    return SendMessage(
        recipient,
        Message(
            action=action,
            wrapper=WrapperKey.ORDER,
            request_id=request_id,
            trade_index=trade_index,
            id=order_id,
            payload=payload,
        ),
    )


def cant_do(request: ClientRequest, reason: CantDoReason) -> SendMessage:
    """Refuse a client request: to its trade key, echoing its order id and request id."""
    return SendMessage(
        request.sender,
        Message(
            action=Action.CANT_DO,
            wrapper=WrapperKey.CANT_DO,
            request_id=request.message.request_id,
            trade_index=None,
            id=request.message.id,
            payload=CantDo(reason),
        ),
    )
