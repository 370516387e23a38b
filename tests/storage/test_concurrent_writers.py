"""Several processes writing one database at once lose nothing.

SQLite: WAL + busy timeout + BEGIN IMMEDIATE; PostgreSQL: row locks and ON CONFLICT.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import peewee

import storage
from storage import repository

_WRITER = """
import sys, storage
from storage import repository
db = storage.open_database(sys.argv[1])
writer = sys.argv[2]
for n in range(40):
    with storage.write_transaction():
        seq = repository.append_journal("order-" + writer, "{}", "{}", now=n)
        repository.enqueue_effect("order-" + writer, "SendMessage", "nostr", str(seq), now=n)
        repository.record_seen_event(f"{n:064x}", now=n)
db.close()
"""


def test_parallel_writers(db: peewee.Database, migrated_url: str) -> None:
    repo_root = Path(storage.__file__).resolve().parents[1]
    writers = [
        subprocess.Popen([sys.executable, "-c", _WRITER, migrated_url, str(w)], cwd=repo_root,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for w in range(4)
    ]
    for writer in writers:
        _, err = writer.communicate(timeout=60)
        assert writer.returncode == 0, err
    for w in range(4):
        assert [e.seq for e in repository.journal_of(f"order-{w}")] == list(range(1, 41))
    assert len(repository.undone_outbox()) == 160
    # every writer offered the same 40 ids: each stored once
    assert repository.forget_seen_events_before(10**9) == 40
