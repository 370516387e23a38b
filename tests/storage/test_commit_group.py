"""Group commit (storage.commit_group) on a real database, each backend: the members' writes
become visible to other connections together, only at the flush, and only then do their
`committed` callbacks run; a member whose writes fail part way takes the group down (nothing
stored, every member told) unless it writes isolated, then it is undone alone; a COMMIT that
fails stores nothing and tells every member; what the callbacks gather goes out once, after all
of them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import peewee
import pytest

import storage
from storage import commit_group, repository
from storage.fixed_sql import fetch_one
from tests.fixtures.failing_commit import (
    add_dangling_reference,
    create_deferred_reference,
    dangling_rows,
)


@pytest.fixture
def observer(migrated_url: str) -> Iterator[peewee.Database]:
    """A second connection to the same database: what other processes would see."""
    database = storage.connect_database(migrated_url)
    yield database
    database.close()


def users_seen_by(observer: peewee.Database) -> int:
    return observer.execute_sql('SELECT count(*) FROM "users"').fetchone()[0]


def users_here() -> int:
    return fetch_one('SELECT count(*) FROM "users"')[0]


def write_member(group: commit_group.CommitGroup, pubkey: str, log: list[Any],
                 fail: bool = False) -> None:
    """What an order actor does: open the group, write into it (`commit_group.writes`), join."""
    group.open()
    with commit_group.writes():
        repository.record_trade_index(pubkey, 1, 1)
        if fail:
            raise RuntimeError("this member's decision failed")
    group.join(lambda: log.append(("committed", pubkey)),
               lambda error: log.append(("failed", pubkey, type(error).__name__)))


def test_members_are_committed_together_and_told_after_the_commit(
        db: peewee.Database, observer: peewee.Database) -> None:
    group = commit_group.CommitGroup()
    log: list[Any] = []
    seen_at_callback: list[int] = []
    for pubkey in ("aa" * 32, "bb" * 32, "cc" * 32):
        write_member(group, pubkey, log)
    group.join(lambda: seen_at_callback.append(users_seen_by(observer)), lambda error: None)
    assert group.size == 4
    assert users_here() == 3  # this connection reads its own open transaction
    assert users_seen_by(observer) == 0  # nobody else does before the flush

    group.flush()
    assert [entry[1] for entry in log] == ["aa" * 32, "bb" * 32, "cc" * 32]
    assert all(entry[0] == "committed" for entry in log)
    assert seen_at_callback == [3]  # committed before any member heard of it
    assert group.size == 0
    group.flush()  # nothing open: nothing happens
    assert len(log) == 3


def test_a_member_whose_writes_fail_takes_the_group_down(db: peewee.Database,
                                                        observer: peewee.Database) -> None:
    """No savepoint per member: its half-done writes go with everyone's, every member that
    joined hears why, and the next members start a new group on the same connection."""
    log: list[Any] = []
    with commit_group.batching() as group:  # this thread's group: its members write into it
        write_member(group, "aa" * 32, log)
        write_member(group, "bb" * 32, log)
        with pytest.raises(RuntimeError) as failure:
            write_member(group, "cc" * 32, log, fail=True)
        assert group.aborted_by(failure.value) and not group.is_open
        assert log == [("failed", "aa" * 32, "RuntimeError"),
                       ("failed", "bb" * 32, "RuntimeError")]
        assert users_here() == 0  # rolled back, the failing member's own row included
        write_member(group, "dd" * 32, log)
        group.flush()
    assert log[-1] == ("committed", "dd" * 32)
    assert users_seen_by(observer) == 1
    assert not group.aborted_by(RuntimeError())


def test_an_isolated_member_that_fails_is_undone_alone(db: peewee.Database,
                                                       observer: peewee.Database) -> None:
    log: list[Any] = []
    with commit_group.batching() as group:
        write_member(group, "aa" * 32, log)
        with commit_group.isolated(), pytest.raises(RuntimeError) as failure:
            write_member(group, "bb" * 32, log, fail=True)
        assert not group.aborted_by(failure.value)
        write_member(group, "cc" * 32, log)
    assert log == [("committed", "aa" * 32), ("committed", "cc" * 32)]
    assert users_seen_by(observer) == 2
    assert repository.last_trade_index("bb" * 32) is None


def test_a_failed_commit_stores_nothing_and_every_member_hears_why(
        db: peewee.Database, observer: peewee.Database) -> None:
    create_deferred_reference()
    group = commit_group.CommitGroup()
    log: list[Any] = []
    write_member(group, "aa" * 32, log)
    group.open()
    add_dangling_reference()
    write_member(group, "bb" * 32, log)

    group.flush()
    assert [entry[:2] for entry in log] == [("failed", "aa" * 32), ("failed", "bb" * 32)]
    assert {entry[2] for entry in log} == {"IntegrityError"}
    assert users_here() == users_seen_by(observer) == 0
    assert dangling_rows() == 0

    write_member(group, "cc" * 32, log)  # the connection is usable for the next group
    group.flush()
    assert log[-1] == ("committed", "cc" * 32)
    assert users_seen_by(observer) == 1


def test_what_the_callbacks_gather_goes_out_once_per_key_after_all_of_them(
        db: peewee.Database) -> None:
    group = commit_group.CommitGroup()
    log: list[Any] = []

    def member(pubkey: str) -> None:
        group.open()
        with storage.write_transaction():
            repository.record_trade_index(pubkey, 1, 1)

        def committed() -> None:
            log.append(("committed", pubkey))
            for key in ("outbox", "clock"):
                group.gather(key, pubkey, lambda items, key=key, by=pubkey:
                             log.append(("sent", key, by, list(items))))

        group.join(committed, lambda error: log.append(("failed", pubkey)))

    for pubkey in ("aa", "bb", "cc"):
        member(pubkey)
    group.flush()
    assert log == [("committed", "aa"), ("committed", "bb"), ("committed", "cc"),
                   ("sent", "outbox", "aa", ["aa", "bb", "cc"]),
                   ("sent", "clock", "aa", ["aa", "bb", "cc"])]
    group.flush()  # nothing gathered is sent twice
    assert len(log) == 5


def test_a_failed_commit_sends_nothing_gathered(db: peewee.Database) -> None:
    create_deferred_reference()
    group = commit_group.CommitGroup()
    sent: list[Any] = []
    group.open()
    add_dangling_reference()
    group.join(lambda: group.gather("k", 1, sent.append), lambda error: None)
    group.flush()
    assert sent == []


def test_batching_commits_when_the_queue_runs_dry_or_the_group_is_full(
        db: peewee.Database, observer: peewee.Database) -> None:
    assert commit_group.current() is None  # not batching: decisions commit at once
    log: list[Any] = []
    with commit_group.batching() as group:
        assert commit_group.current() is group
        with commit_group.batching() as inner:  # re-entered: the same group
            assert inner is group
        assert commit_group.current() is group
        for index in range(commit_group.MAX_MEMBERS - 1):
            write_member(group, f"{index:064x}", log)
            commit_group.delivered(more=True)
        assert users_seen_by(observer) == 0 and log == []
        write_member(group, "ff" * 32, log)
        commit_group.delivered(more=True)  # full: committed although more are waiting
        assert users_seen_by(observer) == commit_group.MAX_MEMBERS
        assert len(log) == commit_group.MAX_MEMBERS

        write_member(group, "ee" * 32, log)
        commit_group.delivered(more=False)  # the queue ran dry
        assert users_seen_by(observer) == commit_group.MAX_MEMBERS + 1

        write_member(group, "dd" * 32, log)
    assert commit_group.current() is None
    assert users_seen_by(observer) == commit_group.MAX_MEMBERS + 2  # the block's end commits
    assert all(entry[0] == "committed" for entry in log)
