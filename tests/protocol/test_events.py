"""Published event builders: kind 38383 tag lists, the status mapping, 38385 and kind 0."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters.nostr.events import (
    INFO_EVENT_KIND,
    ORDER_EVENT_KIND,
    BondPolicy,
    InfoEventFields,
    LndInfo,
    MakerRating,
    OrderEventFields,
    info_event,
    metadata_event,
    order_event,
    public_status,
    rust_f64_display,
)
from adapters.nostr.protocol import Kind, Status, Transport

_DATA = Path(__file__).resolve().parent / "data"
NOW = 1_700_000_000
NODE = "9a0e40e008c6dcfdb3c608a65ddf1c4e72eed7eeefbe1eb88ea0f1ea8b43dc4d"
RELAYS = ("wss://relay.mostro.network", "wss://nos.lol")


def _rows(name: str) -> list[dict]:
    return [json.loads(line) for line in (_DATA / name).read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("row", _rows("order_events.jsonl"), ids=lambda r: r["case"])
def test_order_event_tags(row: dict) -> None:
    o = row["order"]
    fields = OrderEventFields(
        id=o["id"],
        kind=Kind(o["kind"]),
        status=Status(o["status"]),
        fiat_code=o["fiat_code"],
        amount=o["amount"],
        fiat_amount=o["fiat_amount"],
        payment_method=o["payment_method"],
        premium=o["premium"],
        expires_at=o["expires_at"],
        min_amount=o["min_amount"],
        max_amount=o["max_amount"],
    )
    rating = row["maker_rating"]
    event = order_event(
        fields,
        node_pubkey=NODE,
        relays=RELAYS,
        networks=row["networks"],
        instance_name=row["instance_name"],
        maker_rating=None if rating is None else MakerRating(**rating),
        now=NOW,
        previous_created_at=row["previous_created_at"],
    )
    if row["expected_tags"] is None:
        assert event is None
        return
    assert event is not None
    assert event.kind == ORDER_EVENT_KIND
    assert event.content == ""
    assert event.tag_lists() == row["expected_tags"]
    assert event.created_at == row["expected_created_at"]
    assert event.to_dict()["tags"] == row["expected_tags"]


@pytest.mark.parametrize(
    "row", _rows("status_mapping.jsonl"), ids=lambda r: f"{r['status']}-{r['kind']}"
)
def test_public_status_mapping_row_by_row(row: dict) -> None:
    assert public_status(Status(row["status"]), Kind(row["kind"])) == row["published"]


def test_mapping_table_covers_every_status_and_kind() -> None:
    covered = {(r["status"], r["kind"]) for r in _rows("status_mapping.jsonl")}
    assert covered == {(s.value, k.value) for s in Status for k in Kind}


def _lnd() -> LndInfo:
    return LndInfo(
        version="0.18.4-beta",
        node_pubkey="02abcd",
        commit_hash="v0.18.4",
        node_alias="alice",
        chains=("bitcoin",),
        networks=("regtest",),
        uris=("02abcd@127.0.0.1:9735", "02abcd@10.0.0.1:9735"),
    )


def _info(**overrides: object) -> InfoEventFields:
    values: dict = dict(
        mostro_version="0.1.0",
        commit_hash="abc123",
        max_order_amount=1_000_000,
        min_payment_amount=100,
        expiration_hours=24,
        expiration_seconds=900,
        fiat_currencies_accepted=("USD", "EUR"),
        max_orders_per_response=10,
        fee=0.006,
        pow=0,
        transport=Transport.NIP44,
        hold_invoice_expiration_window=300,
        hold_invoice_cltv_delta=144,
        lnd=_lnd(),
        instance_name="Demo",
        pow_first_contact=8,
    )
    values.update(overrides)
    return InfoEventFields(**values)


def test_info_event_tags_in_order_without_bonds() -> None:
    event = info_event(_info(), NODE, NOW)
    assert (event.kind, event.created_at, event.content) == (INFO_EVENT_KIND, NOW, "")
    assert event.tag_lists() == [
        ["d", NODE],
        ["mostro_version", "0.1.0"],
        ["mostro_commit_hash", "abc123"],
        ["max_order_amount", "1000000"],
        ["min_order_amount", "100"],
        ["expiration_hours", "24"],
        ["expiration_seconds", "900"],
        ["fiat_currencies_accepted", "USD,EUR"],
        ["max_orders_per_response", "10"],
        ["fee", "0.006"],
        ["pow", "0"],
        ["pow_first_contact", "8"],
        ["protocol_version", "2"],
        ["hold_invoice_expiration_window", "300"],
        ["hold_invoice_cltv_delta", "144"],
        ["invoice_expiration_window", "300"],
        ["lnd_version", "0.18.4-beta"],
        ["lnd_node_pubkey", "02abcd"],
        ["lnd_commit_hash", "v0.18.4"],
        ["lnd_node_alias", "alice"],
        ["lnd_chains", "bitcoin"],
        ["lnd_networks", "regtest"],
        ["lnd_uris", "02abcd@127.0.0.1:9735,02abcd@10.0.0.1:9735"],
        ["y", "mostro", "Demo"],
        ["z", "info"],
        ["bond_enabled", "false"],
    ]


def test_info_event_bond_tags_and_gift_wrap_pow() -> None:
    bond = BondPolicy(
        enabled=True,
        amount_pct=0.01,
        base_amount_sats=1000,
        apply_to="both",
        slash_on_waiting_timeout=True,
        slash_node_share_pct=0.5,
        payout_claim_window_days=14,
    )
    tags = info_event(
        _info(transport=Transport.GIFT_WRAP, pow=4, bond=bond, fiat_currencies_accepted=()),
        NODE,
        NOW,
    ).tag_lists()
    by_name = {tag[0]: tag[1:] for tag in tags}
    assert by_name["protocol_version"] == ["1"]
    assert by_name["pow_first_contact"] == ["4"]  # gift wrap advertises plain pow
    assert by_name["fiat_currencies_accepted"] == [""]
    assert tags[-7:] == [
        ["bond_enabled", "true"],
        ["bond_amount_pct", "0.01"],
        ["bond_base_amount_sats", "1000"],
        ["bond_apply_to", "both"],
        ["bond_slash_on_waiting_timeout", "true"],
        ["bond_slash_node_share_pct", "0.5"],
        ["bond_payout_claim_window_days", "14"],
    ]
    disabled = info_event(_info(bond=BondPolicy(enabled=False)), NODE, NOW).tag_lists()
    assert disabled[-1] == ["bond_enabled", "false"]
    assert not any(tag[0].startswith("bond_amount") for tag in disabled)


def test_nip44_first_contact_pow_is_at_least_pow() -> None:
    tags = info_event(_info(pow=10, pow_first_contact=3), NODE, NOW).tag_lists()
    assert ["pow_first_contact", "10"] in tags
    tags = info_event(_info(pow=5, pow_first_contact=None), NODE, NOW).tag_lists()
    assert ["pow_first_contact", "5"] in tags


@pytest.mark.parametrize(
    ("value", "text"), [(0.006, "0.006"), (2.0, "2"), (0.5, "0.5"), (1e-7, "0.0000001"), (0.0, "0")]
)
def test_rust_display_of_f64(value: float, text: str) -> None:
    assert rust_f64_display(value) == text


def test_metadata_event() -> None:
    assert metadata_event(None, None, None, None, NOW) is None
    assert metadata_event(None, None, "not a url", None, NOW) is None
    event = metadata_event(
        "Mostro ñ", "P2P", "https://Example.com", "https://mostro.network/x", NOW
    )
    assert event is not None
    assert (event.kind, event.created_at, event.tags) == (0, NOW, ())
    assert event.content == (
        '{"name":"Mostro ñ","about":"P2P","website":"https://mostro.network/x",'
        '"picture":"https://example.com/"}'
    )


def _settings():
    from config.examples import example_settings

    return example_settings(
        mostro={"name": " Demo "},
        nostr={"relays": ["wss://relay.one", "wss://relay.two"]},
        expiration={"order_days": 10, "dispute_days": 2},
    )


def test_order_event_for_record_reads_the_settings() -> None:
    from types import SimpleNamespace

    record = SimpleNamespace(
        id="308e1272-d5f4-47e6-bd97-3504baea9c23",
        kind=Kind.BUY,
        status=Status.CANCELED,
        fiat_code="USD",
        amount=1000,
        fiat_amount=10,
        payment_method="bank",
        premium=0,
        expires_at=NOW + 60,
        min_amount=None,
        max_amount=None,
    )
    from adapters.nostr.events import order_event_for_record

    event = order_event_for_record(record, "canceled", NODE, _settings(), ("regtest",), NOW, 0)
    assert event is not None and event.created_at == NOW
    tags = event.tag_lists()
    assert ["expiration", str(NOW + 10 * 86400)] in tags
    assert ["y", "mostro", "Demo"] in tags
    pending = SimpleNamespace(**{**vars(record), "status": Status.PENDING})
    source = order_event_for_record(pending, "pending", NODE, _settings(), None, NOW).tag_lists()
    assert [
        "source",
        f"mostro:{record.id}?relays=wss://relay.one,wss://relay.two&mostro={NODE}",
    ] in source
    with pytest.raises(ValueError):
        order_event_for_record(record, "pending", NODE, _settings(), None, NOW)
    active = SimpleNamespace(**{**vars(record), "status": Status.ACTIVE})
    assert order_event_for_record(active, None, NODE, _settings(), None, NOW) is None


def test_dispute_event_tags_and_monotonic_created_at() -> None:
    from types import SimpleNamespace

    from adapters.nostr.events import DISPUTE_EVENT_KIND, dispute_event_for_record

    dispute = SimpleNamespace(
        id="efc75871-2568-40b9-a6ee-c382d4d6de01", status="initiated", created_at=NOW - 5
    )
    event = dispute_event_for_record(dispute, "seller", _settings(), NOW, NOW)
    assert (event.kind, event.created_at, event.content) == (DISPUTE_EVENT_KIND, NOW + 1, "")
    assert event.tag_lists() == [
        ["d", dispute.id],
        ["expiration", str(NOW + 2 * 86400)],
        ["s", "initiated"],
        ["initiator", "seller"],
        ["created_at", str(NOW - 5)],
        ["y", "mostro", "Demo"],
        ["z", "dispute"],
    ]


def test_template_signs_into_a_verifiable_event() -> None:
    from adapters.nostr import keys

    signer = keys.keypair("110e43647eae221ab1da33ddc17fd6ff423f2b2f49d809b9ffa40794a2ab996c")
    template = info_event(_info(), signer.public_hex, NOW)
    event = template.sign(signer)
    assert event.verify()
    assert (event.pubkey, event.kind, event.created_at) == (signer.public_hex, INFO_EVENT_KIND, NOW)
    assert [list(tag) for tag in event.tags] == template.tag_lists()
