"""Database URL parsing (cases in data/database_urls.json) and password redaction."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from storage.url import PostgresLocation, SqliteLocation, parse_database_url, redact_database_url

CASES = json.loads((Path(__file__).resolve().parent / "data" / "database_urls.json").read_text())["cases"]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case["url"])
def test_parse_database_url(case: dict) -> None:
    parsed = parse_database_url(case["url"])
    if "sqlite" in case:
        assert parsed == SqliteLocation(case["sqlite"])
    elif "postgres" in case:
        assert parsed == PostgresLocation(**case["postgres"])
    else:
        assert isinstance(parsed, str) and case["error"] in parsed


def test_passwords_stay_out_of_reprs_and_redactions() -> None:
    url = "postgresql://mostro:hunter2@db.example:5432/mostro"
    assert "hunter2" not in repr(parse_database_url(url))
    assert redact_database_url(url) == "postgresql://mostro:***@db.example:5432/mostro"
    assert redact_database_url("sqlite://mostro.db") == "sqlite://mostro.db"
