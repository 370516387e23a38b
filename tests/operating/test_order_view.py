"""`inspect order ID` and the operator-error paths: the row, bonds, deadlines, journal tail,
undone outbox and actor liveness are shown; mistakes are one line and exit 2."""

from __future__ import annotations

import io
import json

from actors.tools_cli import inspect_main
from storage import repository

from .conftest import install_case, install_outbox, load_data, write_settings
from .journal_kit import run_script

DATA = load_data("stuck_cases.json")
NOW = DATA["now"]
LOCKED_CANCELED = next(i for i, c in enumerate(DATA["cases"])
                       if c["name"] == "locked bond whose invoice LND cancelled")


def test_order_table_shows_row_bonds_outbox_deadlines_and_why_stuck(db, config_path):
    order_id = install_case(DATA, LOCKED_CANCELED)
    install_outbox({"effect": "CancelHoldInvoice", "target": "lightning", "created_at": -50,
                    "attempts": 2, "last_error": "UNAVAILABLE"}, order_id, NOW)
    bond = repository.bonds_of_order(order_id)[0]
    out = io.StringIO()
    code = inspect_main(["order", order_id, "--config", str(config_path), "--now", str(NOW)], out)
    text = out.getvalue()
    assert code == 0
    assert f"order {order_id}" in text
    assert "status                    active" in text  # the row, column by column
    assert bond.id in text and bond.hash in text and "locked" in text and "canceled" in text
    assert "escrow-guard" in text  # the active order's deadline
    assert "CancelHoldInvoice" in text and "UNAVAILABLE" in text
    assert "[bond-invoice-mismatch]" in text
    # no daemon on the admin port: said plainly, database view still shown
    assert "actor: unknown — actor system not running" in text


def test_order_json_parses(db, config_path):
    order_id = install_case(DATA, LOCKED_CANCELED)
    out = io.StringIO()
    assert inspect_main(["order", order_id, "--config", str(config_path), "--now", str(NOW),
                         "--json", "--no-actors"], out) == 0
    report = json.loads(out.getvalue())
    assert report["row"]["id"] == order_id and report["row"]["status"] == "active"
    assert report["bonds"][0]["state"] == "locked"
    assert report["bonds"][0]["invoice_state"] == "canceled"
    assert [d["kind"] for d in report["deadlines"]] == ["escrow-guard"]
    assert [f["rule"] for f in report["stuck"]] == ["bond-invoice-mismatch"]
    assert report["actor"]["system_running"] is False


def test_order_after_a_real_trade_shows_its_journal_tail(db, settings, config_path):
    order_id = run_script(load_data("sell_trade.json"), settings)[0]
    out = io.StringIO()
    assert inspect_main(["order", order_id, "--config", str(config_path), "--journal", "3",
                         "--no-actors"], out) == 0
    text = out.getvalue()
    assert "journal: 10 entr(y/ies), last 3:" in text
    assert "rate-user from b2b2b2b2" in text and "PaymentSucceeded" in text
    assert "fiat-sent from" not in text  # older than the tail
    assert "SendMessage(rate-received → b2b2b2b2…)" in text  # an undone effect, summarised


def test_operator_mistakes_are_one_line_and_exit_2(db, config_path, tmp_path, capsys):
    out = io.StringIO()
    assert inspect_main(["order", "no-such-order", "--config", str(config_path), "--no-actors"], out) == 2
    assert capsys.readouterr().err.strip() == "error: no order no-such-order"
    assert inspect_main(["orders", "--config", str(tmp_path / "absent.toml")], out) == 2
    assert "cannot read the settings file" in capsys.readouterr().err
    elsewhere = write_settings(tmp_path / "other.toml", tmp_path / "nothing-here.db", 1)
    assert inspect_main(["stuck", "--config", str(elsewhere)], out) == 2
    err = capsys.readouterr().err
    assert "no database at" in err and "Traceback" not in err
    assert not (tmp_path / "nothing-here.db").exists()  # inspecting never creates a database


def test_an_order_the_logic_cannot_load_is_still_shown(db, config_path):
    index = next(i for i, c in enumerate(DATA["cases"]) if c["name"] == "a status the logic does not know")
    order_id = install_case(DATA, index)
    out = io.StringIO()
    assert inspect_main(["order", order_id, "--config", str(config_path), "--no-actors"], out) == 0
    text = out.getvalue()
    assert "halfway-there" in text
    assert "[no-path-forward] the order logic cannot load this order's rows" in text
