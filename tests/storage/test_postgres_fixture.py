"""The PostgreSQL fixture itself: where it finds the server, and what it says when it cannot."""

from __future__ import annotations

import pytest

from tests.fixtures import postgres


def test_missing_binaries_give_a_skip_reason_naming_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(postgres.shutil, "which", lambda name, path=None: None)
    monkeypatch.setattr(postgres.glob, "glob", lambda pattern: [])
    reason = postgres.find_server_binaries()
    assert isinstance(reason, str) and "initdb" in reason and "`postgresql` package" in reason
    assert postgres.start_postgres_server() == reason


def test_debian_bin_dir_is_searched_when_path_lacks_the_binaries(monkeypatch: pytest.MonkeyPatch) -> None:
    debian = "/usr/lib/postgresql/15/bin"
    monkeypatch.setattr(postgres.glob, "glob", lambda pattern: ["/usr/lib/postgresql/9/bin", debian])
    monkeypatch.setattr(postgres.shutil, "which",  # both installed: the newest one wins
                        lambda name, path=None: f"{path}/{name}" if path else None)
    assert postgres.find_server_binaries() == {"initdb": f"{debian}/initdb", "postgres": f"{debian}/postgres"}
