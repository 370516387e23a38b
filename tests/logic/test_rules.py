"""Pure rules as data: published status mapping, fees, invoice validation, rating arithmetic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from actors.order_logic.fees import dev_fee, mostro_fee, routing_fee_cap
from actors.order_logic.invoice_rules import invoice_refusal
from actors.order_logic.publication import public_status
from actors.order_logic.rating import RatingTotals, fold_rating
from adapters.nostr.protocol.enums import Kind, Status

from . import kit

DATA = Path(__file__).resolve().parent / "data"


def load(name: str) -> dict:
    return json.loads((DATA / name).read_text())


@pytest.mark.parametrize("row", load("public_status.json")["cases"], ids=lambda r: f"{r[0]}-{r[1]}")
def test_public_status_mapping(row: list) -> None:
    status, kind, expected = row
    assert public_status(Status(status), Kind(kind)) == expected


def test_every_status_is_in_the_mapping_table() -> None:
    covered = {row[0] for row in load("public_status.json")["cases"]}
    assert covered == {s.value for s in Status}


@pytest.mark.parametrize("case", load("fees.json")["mostro_fee"], ids=str)
def test_mostro_fee(case: dict) -> None:
    assert mostro_fee(case["amount"], case["fee"]) == case["expected"]


@pytest.mark.parametrize("case", load("fees.json")["dev_fee"], ids=str)
def test_dev_fee(case: dict) -> None:
    assert dev_fee(case["total"], case["pct"]) == case["expected"]


@pytest.mark.parametrize("case", load("fees.json")["routing_fee_cap"], ids=str)
def test_routing_fee_cap(case: dict) -> None:
    assert routing_fee_cap(case["payout"], case["max_routing_fee"]) == case["expected"]


@pytest.mark.parametrize("case", load("invoices.json")["cases"], ids=lambda c: c["name"])
def test_buyer_invoice_rules(case: dict) -> None:
    if "raw" in case:
        text = case["raw"]
    else:
        options = dict(case["invoice"])
        options["timestamp"] = kit.NOW + options.pop("timestamp_offset", 0)
        text = kit.invoice(options.pop("amount_sat"), **options)
    refusal = invoice_refusal(
        text, amount=200_000, fee=600, settings=kit.SETTINGS, now=kit.NOW, network="regtest"
    )
    assert (refusal is None) == case["ok"]
    if not case["ok"]:
        assert refusal == "invalid_invoice"


def test_invoice_below_min_payment_amount_is_refused() -> None:
    text = kit.invoice(99)
    assert invoice_refusal(
        text, amount=100, fee=1, settings=kit.SETTINGS, now=kit.NOW, network="regtest"
    ) == ("invalid_invoice")
    assert invoice_refusal(
        text, amount=99, fee=0, settings=kit.SETTINGS, now=kit.NOW, network="regtest"
    ) == ("invalid_invoice")


def test_unknown_network_skips_the_network_check() -> None:
    text = kit.invoice(199_400, currency="tb")
    assert (
        invoice_refusal(
            text, amount=200_000, fee=600, settings=kit.SETTINGS, now=kit.NOW, network=""
        )
        is None
    )


@pytest.mark.parametrize("case", load("rating_folds.json")["cases"], ids=lambda c: str(c["votes"]))
def test_rating_fold(case: dict) -> None:
    totals = RatingTotals()
    for vote in case["votes"]:
        totals = fold_rating(totals, vote)
    assert totals == RatingTotals(**case["expected"])
