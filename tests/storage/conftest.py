"""Fixtures for the storage tests: a migrated SQLite file per test, full sample rows, and a
throwaway PostgreSQL server when its binaries and psycopg2 are installed."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import peewee
import pytest

import storage

DATA = Path(__file__).resolve().parent / "data"
ROWS = json.loads((DATA / "rows.json").read_text())


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'mostro.db'}"


@pytest.fixture
def db(sqlite_url: str) -> Iterator[peewee.Database]:
    database = storage.open_database(sqlite_url)
    storage.migrate(database)
    yield database
    database.close()


@pytest.fixture
def rows() -> dict:
    """Fresh copies of the sample rows (tests may edit them)."""
    return json.loads(json.dumps(ROWS))


def _wait_for(condition, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what}")
        time.sleep(0.05)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of an empty database on a PostgreSQL server started for this session."""
    missing = [name for name in ("initdb", "postgres") if shutil.which(name) is None]
    if missing:
        pytest.skip(f"PostgreSQL server binaries not installed ({', '.join(missing)} not on PATH)")
    try:
        import psycopg2
    except ImportError:
        pytest.skip("psycopg2 not installed (pip install '.[postgres]'); PostgreSQL run skipped")
    # PostgreSQL refuses to run as root: run it as `nobody` in a directory nobody owns.
    as_user: list[str] = []
    workdir = Path(tempfile.mkdtemp(prefix="mostro-pg-"))
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root and setpriv is missing: cannot start PostgreSQL unprivileged")
        as_user = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
        workdir.chmod(0o755)
        os.chown(workdir, 65534, 65534)
    data_dir = workdir / "data"
    port = _free_port()
    subprocess.run(
        [*as_user, "initdb", "-D", str(data_dir), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"],
        check=True, capture_output=True, cwd=workdir,
    )
    server = subprocess.Popen(
        [*as_user, "postgres", "-D", str(data_dir), "-p", str(port), "-k", str(workdir),
         "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=workdir,
    )

    def accepting() -> bool:
        try:
            psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres").close()
            return True
        except psycopg2.OperationalError:
            return False

    try:
        _wait_for(accepting, 30, "PostgreSQL to accept connections")
        admin = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
        admin.autocommit = True
        admin.cursor().execute("CREATE DATABASE mostro")
        admin.close()
        yield f"postgresql://postgres@127.0.0.1:{port}/mostro"
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(workdir, ignore_errors=True)
