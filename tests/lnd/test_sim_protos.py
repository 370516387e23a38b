"""The checked-in proto subset matches LND: names, field numbers, enum values,
method paths and streaming kinds (reference data: data/lnd_field_numbers.json)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from adapters.lnd.protos import invoices_pb2, lightning_pb2, router_pb2

REPO = Path(__file__).resolve().parents[2]
MODULES = (lightning_pb2, invoices_pb2, router_pb2)


def _messages() -> dict:
    found = {}
    for module in MODULES:
        for descriptor in module.DESCRIPTOR.message_types_by_name.values():
            found[descriptor.full_name] = descriptor
    return found


def test_every_field_has_lnds_number(lnd_reference):
    messages = _messages()
    assert set(messages) == set(lnd_reference["messages"])
    for full_name, descriptor in messages.items():
        reference = lnd_reference["messages"][full_name]
        for field_descriptor in descriptor.fields:
            assert reference.get(field_descriptor.name) == field_descriptor.number, (
                f"{full_name}.{field_descriptor.name}"
            )


def test_fields_we_rely_on_are_present(lnd_reference):
    messages = _messages()
    needed = {
        "lnrpc.Invoice": [
            "r_hash",
            "r_preimage",
            "value",
            "memo",
            "payment_request",
            "creation_date",
            "expiry",
            "cltv_expiry",
            "settle_date",
            "amt_paid_sat",
            "state",
            "htlcs",
        ],
        "lnrpc.Payment": [
            "payment_hash",
            "value_sat",
            "fee_sat",
            "payment_preimage",
            "status",
            "failure_reason",
        ],
        "lnrpc.GetInfoResponse": [
            "identity_pubkey",
            "alias",
            "block_height",
            "synced_to_chain",
            "chains",
            "version",
            "commit_hash",
            "uris",
        ],
    }
    for full_name, names in needed.items():
        present = {f.name for f in messages[full_name].fields}
        assert set(names) <= present, full_name


def test_enum_values_match(lnd_reference):
    enums = {
        "lnrpc.Invoice.InvoiceState": lightning_pb2.Invoice.InvoiceState,
        "lnrpc.Payment.PaymentStatus": lightning_pb2.Payment.PaymentStatus,
        "lnrpc.PaymentFailureReason": lightning_pb2.PaymentFailureReason,
        "lnrpc.InvoiceHTLCState": lightning_pb2.InvoiceHTLCState,
    }
    for full_name, wrapper in enums.items():
        assert dict(wrapper.items()) == lnd_reference["enums"][full_name], full_name


def test_method_paths_and_streaming(lnd_reference):
    methods = {}
    for module in MODULES:
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                kind = "server_stream" if method.server_streaming else "unary"
                methods[f"/{service.full_name}/{method.name}"] = kind
    assert methods == lnd_reference["methods"]


def test_regenerating_reproduces_the_checked_in_stubs(tmp_path):
    """The generate command is the source of the stubs: running it changes nothing."""
    relative = Path("adapters") / "lnd" / "protos"
    result = subprocess.run(
        [sys.executable, "-m", "adapters.lnd.protos.generate", "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    checked_in = {p.name: p.read_bytes() for p in (REPO / relative).glob("*_pb2*.py")}
    generated = {p.name: p.read_bytes() for p in (tmp_path / relative).glob("*_pb2*.py")}
    assert len(checked_in) == 8
    assert generated == checked_in
