"""Fixtures for the operator tools' tests: a settings file pointing at a migrated SQLite file.

Each test gets its own database (tmp_path) and a free admin port on which
no actor system runs, unless the test starts one.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import peewee
import pytest

import storage
from config import load_settings

DATA = Path(__file__).resolve().parent / "data"
NSEC_HEX = "67dea2ed018072d675f5415ecfaed7d2597555e202d85b3d65ea4e58d2d92ffa"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_settings(
    path: Path, database: Path, admin_port: int, base: str = "multiprocTCPBase",
    lnd: tuple[str, str, str] | None = None,
) -> Path:
    """A settings file; `lnd` = (host:port, tls cert path, macaroon path) of a real node."""
    host, cert, macaroon = lnd or ("127.0.0.1:10009", path.parent / "tls.cert",
                                   path.parent / "admin.macaroon")
    path.write_text(
        "[lightning]\n"
        f'lnd_cert_file = "{cert}"\n'
        f'lnd_macaroon_file = "{macaroon}"\n'
        f'lnd_grpc_host = "{host}"\n'
        "[nostr]\n"
        f'nsec_privkey = "{NSEC_HEX}"\n'
        'relays = ["ws://127.0.0.1:7000"]\n'
        "[mostro]\n"
        "fee = 0.006\n"
        'fiat_currencies_accepted = ["USD", "EUR"]\n'
        "[price]\n"
        "fixed = {USD = 50000.0, EUR = 40000.0}\n"
        "[database]\n"
        f'url = "sqlite:///{database}"\n'
        "[actors]\n"
        f'base = "{base}"\n'
        f"admin_port = {admin_port}\n"
    )
    return path


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    return write_settings(tmp_path / "settings.toml", tmp_path / "mostro.db", free_port())


@pytest.fixture
def settings(config_path: Path) -> Any:
    return load_settings(str(config_path))


@pytest.fixture
def db(settings: Any) -> Iterator[peewee.Database]:
    database = storage.open_database(settings.database.url)
    storage.migrate(database)
    yield database
    database.close()


def load_data(name: str) -> Any:
    return json.loads((DATA / name).read_text())


# --------------------------------------------------------------- manufactured rows
_TIME_COLUMNS = {
    "created_at", "expires_at", "taken_at", "invoice_held_at", "payout_claimed_at", "locked_at",
    "released_at", "release_confirmed_at", "slashed_at", "done_at",
}
_HASH_COLUMNS = {"hash", "payout_payment_hash"}


def _absolute(values: dict[str, Any], now: int) -> dict[str, Any]:
    """Offsets → Unix times; short hex hashes → 64 characters (cases stay readable)."""
    out = {}
    for key, value in values.items():
        if key in _TIME_COLUMNS and isinstance(value, int):
            value = now + value
        if key in _HASH_COLUMNS and isinstance(value, str):
            value = value.ljust(64, "0")
        out[key] = value
    return out


def case_order_id(index: int) -> str:
    return f"00000000-0000-4000-8000-{index:012d}"


def install_case(data: dict[str, Any], index: int) -> str:
    """Write one case's order, bonds, dispute and outbox rows; return the order id."""
    from storage import models, repository

    now = data["now"]
    case = data["cases"][index]
    order_id = case_order_id(index)
    order = {**data["order_defaults"], **case.get("order", {}), "id": order_id}
    repository.upsert_order(_absolute(order, now))
    for number, bond in enumerate(case.get("bonds", [])):
        row = {**data["bond_defaults"], **bond, "order_id": order_id,
               "id": f"{index:08d}-b0bd-4000-8000-{number:012d}"}
        row.setdefault("hash", f"b{index:03d}{number:02d}")
        repository.upsert_bond(_absolute(row, now))
    if "dispute" in case:
        dispute = {**case["dispute"], "order_id": order_id, "id": f"d{order_id[1:]}"}
        repository.upsert_dispute(_absolute(dispute, now))
    for effect in case.get("outbox", []):
        install_outbox(effect, order_id, now)
    del models
    return order_id


def install_outbox(effect: dict[str, Any], order_id: str | None, now: int) -> int:
    from storage import models

    row = _absolute({"payload": "{}", "attempts": 0, **effect}, now)
    return models.OutboxEffect.insert(order_id=order_id, **row).execute()
