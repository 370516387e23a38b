"""`inspect stuck --lnd`: bond states are compared with what a real LND (the simulator, over
gRPC) reports now, not only with the last state stored in `invoice_state`."""

from __future__ import annotations

import io
import json

from actors.tools_cli import inspect_main
from adapters.lnd.client import ConnectionSettings, LndClient
from storage import repository
from tests.fixtures.lnsim import lnsim, lnsim_factory  # noqa: F401

from .conftest import free_port, install_case, load_data, write_settings

DATA = load_data("stuck_cases.json")
NOW = DATA["now"]
HEALTHY_LOCKED = next(i for i, c in enumerate(DATA["cases"])
                      if c["name"] == "healthy active with a locked bond")


def test_lnd_state_overrides_the_stored_invoice_state(db, settings, tmp_path, lnsim):  # noqa: F811
    node = lnsim.mostro
    config = write_settings(tmp_path / "lnd.toml", tmp_path / "mostro.db", free_port(),
                            lnd=(node.address, str(node.tls_cert_path), str(node.macaroon_path)))
    order_id = install_case(DATA, HEALTHY_LOCKED)
    bond = repository.bonds_of_order(order_id)[0]
    # LND has the bond's invoice, but nobody ever paid it: still OPEN, not accepted
    client = LndClient.connect(ConnectionSettings(node.address, str(node.tls_cert_path),
                                                  str(node.macaroon_path)))
    assert not isinstance(client, str)
    try:
        assert client.add_hold_invoice(bond.hash, 2000, "bond", 3600, 144).payment_request
        # and the order's escrow, which the order believes held, is not paid either
        escrow = repository.find_order(order_id).hash
        assert client.add_hold_invoice(escrow, 200600, "escrow", 3600, 144).payment_request
    finally:
        client.close()

    def stuck(*extra: str) -> list[dict]:
        out = io.StringIO()
        inspect_main(["stuck", "--config", str(config), "--now", str(NOW), "--json", *extra], out)
        return json.loads(out.getvalue())

    assert stuck("--bond-grace", "60") == []  # the stored state says accepted: consistent
    findings = stuck("--lnd", "--bond-grace", "60")
    assert [(f["order_id"], f["rule"]) for f in findings] == [
        (order_id, "bond-invoice-mismatch"), (order_id, "escrow-invoice-mismatch")]
    assert "locked but LND reports the invoice open" in findings[0]["reason"]
    assert "LND now: open" in findings[0]["reason"]
    assert "order is active but LND reports its escrow invoice" in findings[1]["reason"]
    assert "open, expected accepted" in findings[1]["reason"]


def test_lnd_option_without_a_reachable_node_is_an_error(db, config_path, capsys):
    out = io.StringIO()
    assert inspect_main(["stuck", "--config", str(config_path), "--lnd"], out) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --lnd:") and "Traceback" not in err
