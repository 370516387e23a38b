"""Intake pipeline (PROTOCOL.md §4.1/§4.3) on a real migrated SQLite database.

Client events are built with our transport and content builders, signed with fresh trade and
identity keys; each case in data/intake_cases.json names a recipe (how the event is made) and the
exact outcome: the drop reason, the cant-do reason of the reply, or the routed action.
"""

from __future__ import annotations

import dataclasses
import json
import pickle
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import storage
from actors.intake import Intake, IntakeResult
from actors.intake_precheck import IntakePrecheck
from adapters.nostr import keys, nip59, transport
from adapters.nostr.keys import KeyPair, generate_keypair
from adapters.nostr.pow import pow_bits
from adapters.nostr.protocol.codec import serialize_message
from adapters.nostr.protocol.content import IDENTITY_PROOF_PREFIX, build_content, sign_text
from adapters.nostr.protocol.enums import Action, CantDoReason, Kind, Status, Transport, WrapperKey
from adapters.nostr.protocol.payloads import (
    CantDo,
    Ids,
    Message,
    OrderPayload,
    Orders,
    PaymentRequest,
    RestoreData,
    SmallOrder,
    TextMessage,
)
from adapters.nostr.relay_pool import verify_event
from config.examples import EXAMPLE_PUBKEY_HEX, example_settings
from storage import repository

CASES = json.loads((Path(__file__).parent / "data" / "intake_cases.json").read_text())["cases"]
MODES = ("nip44", "gift-wrap")
NEW_ORDER = OrderPayload(SmallOrder(
    amount=0, fiat_code="EUR", fiat_amount=100, payment_method="cash", premium=0,
    kind=Kind.SELL, status=Status.PENDING))
INVOICE = "lnbcrt1"  # never decoded by intake: pay-invoice is refused before any invoice check


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Any]:
    db = storage.open_database(f"sqlite:///{tmp_path}/db.sqlite")
    storage.migrate(db)
    yield db
    db.close()


@dataclasses.dataclass
class Client:
    """One client of the node: a trade key and (unless full privacy) a separate identity key."""

    mode: str
    trade: KeyPair
    identity: KeyPair

    @property
    def transport(self) -> Transport:
        return Transport(self.mode)

    def message(self, action: Action, **fields: Any) -> Message:
        version = 2 if self.mode == "nip44" else 1
        return Message(action=action, version=version, request_id=7, **fields)

    def content(self, message: Message) -> str:
        identity = self.identity.secret_hex if self.mode == "nip44" else None
        return build_content(message, self.transport, self.trade.secret_hex, identity)

    def event(self, plaintext: str, now: int, **options: Any) -> dict[str, Any]:
        return transport.wrap_client_message(
            plaintext, self.trade.secret_hex, self.identity.secret_hex,
            options.pop("recipient", EXAMPLE_PUBKEY_HEX), self.mode, now, **options)

    def send(self, message: Message, now: int, **options: Any) -> dict[str, Any]:
        return self.event(self.content(message), now, **options)


def _client(mode: str) -> Client:
    return Client(mode, generate_keypair(), generate_keypair())


def _intake(mode: str, **mostro: Any) -> Intake:
    return Intake(example_settings(mostro={"transport": mode, **mostro}))


def _insert_order(order_id: str, now: int, **fields: Any) -> None:
    row = {
        "id": order_id, "kind": "sell", "creator_pubkey": "a" * 64, "status": "pending",
        "payment_method": "face to face", "fiat_code": "EUR", "fiat_amount": 100,
        "amount": 10_000, "created_at": now, "expires_at": now + 86400,
    }
    repository.upsert_order({**row, **fields})


# --- recipes: case → (client, event, now) -----------------------------------------------------

Recipe = Callable[[Client, dict[str, Any], int], dict[str, Any]]


def _take_sell(client: Client, case: dict[str, Any], now: int) -> dict[str, Any]:
    return client.send(client.message(Action.TAKE_SELL, id=case["order_id"], trade_index=1), now)


def _raw_plaintext(client: Client, case: dict[str, Any], now: int) -> dict[str, Any]:
    return client.event(case["plaintext"], now)


def _wrong_payload(client: Client, case: dict[str, Any], now: int) -> dict[str, Any]:
    message = client.message(Action.ADD_INVOICE, id=case["order_id"], payload=TextMessage("hi"))
    return client.send(message, now)


def _bad_outer_sig(client: Client, case: dict[str, Any], now: int) -> dict[str, Any]:
    event = _take_sell(client, case, now)
    flipped = "0" if event["sig"][0] != "0" else "1"
    return {**event, "sig": flipped + event["sig"][1:]}


def _bad_seal_sig(client: Client, case: dict[str, Any], now: int) -> dict[str, Any]:
    message = client.message(Action.TAKE_SELL, id=case["order_id"], trade_index=1)
    rumor = nip59.make_rumor(client.trade.public_hex, client.content(message), now)
    seal = nip59.make_seal(rumor, client.identity, EXAMPLE_PUBKEY_HEX, now)
    forged = dataclasses.replace(seal, sig=("0" if seal.sig[0] != "0" else "1") + seal.sig[1:])
    return nip59.make_gift_wrap(forged, EXAMPLE_PUBKEY_HEX, now).to_dict()


def _bad_trade_sig(client: Client, case: dict[str, Any], now: int) -> dict[str, Any]:
    """The tuple is signed by one trade key but the event/rumor is authored by another."""
    message = client.message(Action.TAKE_SELL, id=case["order_id"], trade_index=1)
    content = client.content(message)
    impostor = Client(client.mode, generate_keypair(), client.identity)
    return impostor.event(content, now)


def _bad_identity_proof(client: Client, case: dict[str, Any], now: int) -> dict[str, Any]:
    """A v2 proof that names another identity than the key that signed it."""
    message = client.message(Action.TAKE_SELL, id=case["order_id"], trade_index=1)
    content = client.content(message)
    forged = content.replace(client.identity.public_hex, generate_keypair().public_hex)
    assert forged != content
    return client.event(forged, now)


def _wrong_recipient(client: Client, case: dict[str, Any], now: int) -> dict[str, Any]:
    """Encrypted to another key, but p-tagged to (and fed to) this node."""
    other = generate_keypair().public_hex
    message = client.message(Action.TAKE_SELL, id=case["order_id"], trade_index=1)
    return client.send(message, now, recipient=other)


def _aged(client: Client, case: dict[str, Any], now: int) -> dict[str, Any]:
    return _take_sell(client, case, now - case["age_seconds"])


def _expired(client: Client, case: dict[str, Any], now: int) -> dict[str, Any]:
    message = client.message(Action.TAKE_SELL, id=case["order_id"], trade_index=1)
    return client.send(message, now, expiration=now - 1)


def _trade_index(client: Client, case: dict[str, Any], now: int) -> dict[str, Any]:
    if case["last_trade_index"] is not None:
        repository.upsert_user({"pubkey": client.identity.public_hex, "created_at": now,
                                "last_trade_index": case["last_trade_index"]})
    message = client.message(Action.NEW_ORDER, trade_index=case["trade_index"], payload=NEW_ORDER)
    event = client.send(message, now)
    return event


def _unsigned_with_identity(client: Client, case: dict[str, Any], now: int) -> dict[str, Any]:
    """No trade signature, but an identity other than the trade key (v2 proof / v1 seal)."""
    message = client.message(Action.FIAT_SENT, id=case["order_id"])
    message_json = serialize_message(message)
    if client.mode == "gift-wrap":
        return client.event(f"[{message_json},null]", now)
    proof_sig = sign_text(
        f"{IDENTITY_PROOF_PREFIX}{client.trade.public_hex}:{message_json}", client.identity.secret_hex)
    return client.event(f'[{message_json},null,["{client.identity.public_hex}","{proof_sig}"]]', now)


def _oversized(client: Client, case: dict[str, Any], now: int) -> dict[str, Any]:
    """An outer content far beyond what NIP-44 can carry (a 64 KiB plaintext cap)."""
    from adapters.nostr.nostr_event import NostrEvent

    kind = transport.TRANSPORT_KIND[client.mode]
    author = client.trade if client.mode == "nip44" else generate_keypair()
    event = NostrEvent.signed(author, now, kind, [["p", EXAMPLE_PUBKEY_HEX]], "A" * 200_000)
    return event.to_dict()


def _pay_invoice(client: Client, case: dict[str, Any], now: int) -> dict[str, Any]:
    message = client.message(
        Action.PAY_INVOICE, id=case["order_id"], payload=PaymentRequest(None, INVOICE, None))
    return client.send(message, now)


RECIPES: dict[str, Recipe] = {
    "take_sell": _take_sell, "raw_plaintext": _raw_plaintext, "wrong_payload": _wrong_payload,
    "bad_outer_sig": _bad_outer_sig, "bad_seal_sig": _bad_seal_sig,
    "bad_trade_sig": _bad_trade_sig, "bad_identity_proof": _bad_identity_proof,
    "wrong_recipient": _wrong_recipient, "aged": _aged, "expired": _expired,
    "trade_index": _trade_index, "unsigned_with_identity": _unsigned_with_identity,
    "oversized": _oversized, "pay_invoice": _pay_invoice,
}

TABLE = [
    pytest.param(case, mode, path, id=f"{case['id']}-{mode}-{path}")
    for case in CASES for mode in case["transports"] for path in ("inline", "worker")
]


def _handle_as_the_adapter(mode: str, event: dict[str, Any], now: int) -> IntakeResult | None:
    """The Nostr adapter's path: the relay pool verifies the event (None: the pool drops it),
    the check worker's precheck crosses a process boundary (pickled), the intake uses it."""
    if not verify_event(event):
        return None
    settings = example_settings(mostro={"transport": mode})
    check = pickle.loads(pickle.dumps(IntakePrecheck.from_settings(settings)))()
    precheck = pickle.loads(pickle.dumps(check(event, now)))
    return Intake(settings).handle(event, now, verified=True, precheck=precheck)


@pytest.mark.parametrize(("case", "mode", "path"), TABLE)
def test_intake_table(database: Any, case: dict[str, Any], mode: str, path: str) -> None:
    now = int(time.time())
    client = _client(mode)
    case = {**case, "order_id": str(uuid.uuid4())}
    event = RECIPES[case["recipe"]](client, case, now)
    expect = case["expect"]
    if path == "inline":
        result = _intake(mode).handle(event, now)
    else:
        adapter_result = _handle_as_the_adapter(mode, event, now)
        if adapter_result is None:  # the pool drops what the intake drops for its outer sig
            assert expect == {"dropped": "transport:bad_event_signature"}
            return
        result = adapter_result
    if "dropped" in expect:
        assert result.dropped == expect["dropped"], result
    if "dropped_prefix" in expect:
        assert result.dropped is not None and result.dropped.startswith(expect["dropped_prefix"]), result
        assert result.route is None and result.replies == ()
    if "reply_cant_do" in expect:
        (reply,) = result.replies
        assert reply.recipient == client.trade.public_hex
        assert reply.message.action is Action.CANT_DO
        assert reply.message.request_id == 7
        assert reply.message.payload == CantDo(CantDoReason(expect["reply_cant_do"]))
        assert result.route is None
    elif "route" in expect:
        assert result.replies == ()
        assert result.route is not None
        request = result.route.event
        assert request.message.action is Action(expect["route"])
        assert request.sender == client.trade.public_hex
        expected_identity = client.identity.public_hex
        assert request.identity == expected_identity
        assert result.route.order_id == (request.message.id or "")
    else:
        assert result.route is None and result.replies == ()


@pytest.mark.parametrize("mode", MODES)
def test_take_sell_routed_with_all_request_fields(database: Any, mode: str) -> None:
    now = int(time.time())
    client = _client(mode)
    order_id = str(uuid.uuid4())
    event = client.send(client.message(Action.TAKE_SELL, id=order_id, trade_index=3), now)
    result = _intake(mode).handle(event, now)
    assert result.dropped is None and result.replies == ()
    assert result.route is not None and result.route.order_id == order_id
    request = result.route.event
    assert request.message == client.message(Action.TAKE_SELL, id=order_id, trade_index=3)
    assert (request.sender, request.identity) == (client.trade.public_hex, client.identity.public_hex)
    assert request.pending_take_exists is False


@pytest.mark.parametrize("mode", MODES)
def test_take_sell_sees_pending_take_of_same_identity(database: Any, mode: str) -> None:
    now = int(time.time())
    client = _client(mode)
    _insert_order(str(uuid.uuid4()), now, status="waiting-buyer-invoice",
                  master_buyer_pubkey=client.identity.public_hex)
    event = client.send(client.message(Action.TAKE_SELL, id=str(uuid.uuid4()), trade_index=1), now)
    result = _intake(mode).handle(event, now)
    assert result.route is not None and result.route.event.pending_take_exists is True
    # a take-buy is keyed on the other side: the same pending buy does not count
    event = client.send(client.message(Action.TAKE_BUY, id=str(uuid.uuid4()), trade_index=2), now)
    result = _intake(mode).handle(event, now)
    assert result.route is not None and result.route.event.pending_take_exists is False


@pytest.mark.parametrize("mode", MODES)
def test_proof_of_work_policy(database: Any, mode: str) -> None:
    now = int(time.time())
    client = _client(mode)
    intake = _intake(mode, pow=8)
    message = client.message(Action.TAKE_SELL, id=str(uuid.uuid4()), trade_index=1)
    weak = client.send(message, now)
    while pow_bits(weak["id"]) >= 8:  # unmined ids reach 8 bits once in 256 tries
        weak = client.send(message, now)
    assert intake.handle(weak, now) == IntakeResult(dropped="insufficient-pow")
    mined = client.send(message, now, pow_bits=8)
    assert pow_bits(mined["id"]) >= 8
    result = intake.handle(mined, now)
    assert result.dropped is None and result.route is not None
    assert intake.dropped["insufficient-pow"] == 1


@pytest.mark.parametrize("mode", MODES)
def test_replayed_event_dropped_and_persisted(database: Any, mode: str) -> None:
    now = int(time.time())
    client = _client(mode)
    event = client.send(client.message(Action.TAKE_SELL, id=str(uuid.uuid4()), trade_index=1), now)
    first = _intake(mode)
    assert first.handle(event, now).route is not None
    assert first.handle(event, now) == IntakeResult(dropped="replayed-event")
    restarted = _intake(mode)  # new object, same database: the seen id is stored
    assert restarted.handle(event, now + 1) == IntakeResult(dropped="replayed-event")


@pytest.mark.parametrize("mode", MODES)
def test_orders_answered_directly(database: Any, mode: str) -> None:
    now = int(time.time())
    client = _client(mode)
    mine_id, other_id = str(uuid.uuid4()), str(uuid.uuid4())
    _insert_order(mine_id, now, master_seller_pubkey=client.identity.public_hex,
                  seller_pubkey=client.trade.public_hex, trade_index_seller=1)
    _insert_order(other_id, now, master_seller_pubkey="b" * 64)
    event = client.send(client.message(Action.ORDERS, payload=Ids((mine_id, other_id))), now)
    result = _intake(mode).handle(event, now)
    assert result.route is None and result.dropped is None
    (reply,) = result.replies
    assert reply.recipient == client.trade.public_hex
    assert reply.message.action is Action.ORDERS and reply.message.request_id == 7
    assert isinstance(reply.message.payload, Orders)
    assert [o.id for o in reply.message.payload.orders] == [mine_id]
    assert reply.message.payload.orders[0].seller_trade_pubkey == client.trade.public_hex
    # none of the ids is this identity's: not found
    event = client.send(client.message(Action.ORDERS, payload=Ids((other_id,))), now)
    (reply,) = _intake(mode).handle(event, now).replies
    assert reply.message.payload == CantDo(CantDoReason.NOT_FOUND)


@pytest.mark.parametrize("mode", MODES)
def test_last_trade_index_answered_directly(database: Any, mode: str) -> None:
    now = int(time.time())
    client = _client(mode)
    event = client.send(client.message(Action.LAST_TRADE_INDEX, wrapper=WrapperKey.RESTORE), now)
    (reply,) = _intake(mode).handle(event, now).replies
    assert reply.message.payload == CantDo(CantDoReason.NOT_FOUND)
    repository.upsert_user({"pubkey": client.identity.public_hex, "created_at": now,
                            "last_trade_index": 9})
    event = client.send(client.message(Action.LAST_TRADE_INDEX, wrapper=WrapperKey.RESTORE), now)
    result = _intake(mode).handle(event, now)
    assert result.route is None and result.dropped is None
    (reply,) = result.replies
    assert reply.recipient == client.trade.public_hex
    assert (reply.message.action, reply.message.trade_index) == (Action.LAST_TRADE_INDEX, 9)


@pytest.mark.parametrize("mode", MODES)
def test_restore_session_answered_directly(database: Any, mode: str) -> None:
    now = int(time.time())
    client = _client(mode)
    order_id = str(uuid.uuid4())
    _insert_order(order_id, now, status="active", master_buyer_pubkey=client.identity.public_hex,
                  buyer_pubkey=client.trade.public_hex, trade_index_buyer=4)
    event = client.send(client.message(Action.RESTORE_SESSION, wrapper=WrapperKey.RESTORE), now)
    result = _intake(mode).handle(event, now)
    assert result.route is None and result.dropped is None
    (reply,) = result.replies
    assert reply.recipient == client.trade.public_hex
    assert reply.message.action is Action.RESTORE_SESSION
    payload = reply.message.payload
    assert isinstance(payload, RestoreData)
    assert [(o.order_id, o.trade_index, o.status) for o in payload.orders] == [(order_id, 4, "active")]
    assert payload.disputes == ()


def test_full_privacy_identity_is_trade_key(database: Any) -> None:
    """v1 sealed by the trade key itself / v2 without proof: identity == sender, no index needed."""
    now = int(time.time())
    for mode in MODES:
        trade = generate_keypair()
        client = Client(mode, trade, trade)
        message = client.message(Action.NEW_ORDER, payload=NEW_ORDER)
        plaintext = build_content(message, client.transport, trade.secret_hex, None)
        event = client.event(plaintext, now)
        result = _intake(mode).handle(event, now)
        assert result.route is not None, (mode, result)
        assert result.route.event.identity == result.route.event.sender == keys.public_key_hex(
            trade.secret_hex)
