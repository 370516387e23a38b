"""Storage faults: a database `mostro-py run` cannot use gets one clear line and exit 3.

The daemon must never crash-loop on storage: a database locked by another
process (one holding SQLite's exclusive lock), a file that is not a database,
a folder that does not exist, or a read-only file each end the run with exit
code 3 and a line naming the problem, before any actor process is started
(the admin port stays closed). A lock taken *while* the daemon runs must not
lose an LND event: once the lock is gone the trade goes on.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from adapters.nostr.local_relay import port_is_open
from storage import migrate
from storage.database import connect_database

from .conftest import STOP_TIMEOUT, FaultStack, wait_until
from .test_kill_restart import check_final_state
from .trade_kit import SellTrade

EXIT_STORAGE = 3

# holds a SQLite lock on a file until its stdin closes (a separate process, as an operator's
# second daemon or a backup tool would be): "exclusive" keeps everyone out, even readers;
# "write" is the WAL write lock (BEGIN IMMEDIATE), which only writers wait for
LOCK_HOLDER = """
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
if sys.argv[2] == "exclusive":
    connection.execute("PRAGMA locking_mode=EXCLUSIVE")
    connection.execute("BEGIN EXCLUSIVE")
else:
    connection.execute("BEGIN IMMEDIATE")
connection.execute("CREATE TABLE IF NOT EXISTS lock_probe (x)")
print("locked", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def lock_holder() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    holders: list[subprocess.Popen[str]] = []

    def hold(path: Path, mode: str = "exclusive") -> subprocess.Popen[str]:
        process = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(path), mode],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        holders.append(process)
        assert process.stdout is not None and process.stdout.readline().strip() == "locked"
        return process

    yield hold
    for process in holders:
        release(process)


def release(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        assert process.stdin is not None
        process.stdin.close()
        process.wait(STOP_TIMEOUT)


def expect_storage_exit(stack: FaultStack, words: str) -> None:
    """The run ends with exit 3 and one line containing `words`; no actor system was left."""
    stack.daemon.spawn()
    assert stack.daemon.wait_exit(STOP_TIMEOUT + 10) == EXIT_STORAGE
    wait_until(lambda: any(words in line for line in stack.daemon.log_lines()),
               what="the storage problem in the log")
    problem_lines = [line for line in stack.daemon.log_lines() if words in line]
    assert len(problem_lines) == 1 and "CRITICAL" in problem_lines[0]
    assert "Traceback" not in "".join(stack.daemon.log_lines())
    assert not port_is_open(stack.daemon.admin_port)


def migrated(stack: FaultStack) -> None:
    """Create the database with the current schema, as a first run would."""
    database = connect_database(f"sqlite:///{stack.database_path}")
    try:
        migrate(database)
    finally:
        database.close()


@pytest.mark.multiproc
def test_database_locked_by_another_process(fault_stack_factory: Callable[..., FaultStack],
                                            lock_holder: Callable[..., object]) -> None:
    stack = fault_stack_factory(start=False)
    migrated(stack)
    lock_holder(stack.database_path)
    expect_storage_exit(stack, "is locked by another process")


def test_file_that_is_not_a_database(fault_stack_factory: Callable[..., FaultStack]) -> None:
    stack = fault_stack_factory(start=False)
    stack.database_path.write_bytes(b"this is not a SQLite database\n" * 200)
    expect_storage_exit(stack, "cannot be used")


def test_missing_database_folder(fault_stack_factory: Callable[..., FaultStack],
                                 tmp_path: Path) -> None:
    stack = fault_stack_factory(start=False, database={
        "url": f"sqlite:///{tmp_path / 'no' / 'such' / 'folder' / 'mostro.db'}"})
    expect_storage_exit(stack, "cannot open the database")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only files")
def test_read_only_database(fault_stack_factory: Callable[..., FaultStack]) -> None:
    stack = fault_stack_factory(start=False)
    migrated(stack)
    for path in stack.database_path.parent.glob("mostro.db*"):
        path.chmod(0o444)
    stack.database_path.parent.chmod(0o555)
    try:
        expect_storage_exit(stack, "read-only")
    finally:
        stack.database_path.parent.chmod(0o755)


@pytest.mark.multiproc
def test_lock_held_while_lnd_reports(fault_stack: FaultStack,
                                     lock_holder: Callable[..., subprocess.Popen[str]]) -> None:
    """Another process holds the database's write lock (longer than the busy timeout) while
    LND reports the escrow ACCEPTED, and again while the buyer's payout succeeds. Neither
    LND result may be lost (each is delivered once): the order actor and the outbox keep the
    event and try again; once the lock is gone the trade ends as an uninterrupted one."""
    stack = fault_stack
    buyer_before = stack.balance_sat(1)
    trade = SellTrade.listed(stack)
    trade.take()

    def hold_until_logged(words: str, under_lock: Callable[[], object]) -> None:
        """Hold the lock until the daemon logs that it met it (at most 20 s), then let go;
        the end state, not this log line, is what the test checks."""
        mark = stack.daemon.log_size()
        holder = lock_holder(stack.database_path, "write")
        try:
            under_lock()
            wait_until(lambda: any(words in line for line in stack.daemon.log_lines(mark)),
                       timeout=20.0, what=f"the daemon met the lock ({words})")
        except TimeoutError:
            pass
        finally:
            release(holder)

    hold_until_logged("cannot store the decision for InvoiceAccepted", trade.pay_escrow)
    trade.wait_active()
    trade.fiat_sent()
    stack.lnsim.sim.delay("SendPaymentV2", 2000, node="mostro")  # the lock lands before it
    trade.release()  # the escrow is settled; the payout is on its way
    hold_until_logged("cannot use the database for PaymentResult",
                      lambda: wait_until(lambda: stack.invoice_state(trade.payout_hash)
                                         == "SETTLED", what="the buyer paid"))
    stack.lnsim.sim.clear_faults()
    trade.wait_success()
    check_final_state(stack, trade, buyer_before)
    assert stack.daemon.process is not None and stack.daemon.process.poll() is None
