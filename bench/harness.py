"""What the daemon benchmarks (2)-(4) start and watch: relays, the LND simulator, the daemon, /proc.

Each part is a real process: the `nostr-relay` relay (`adapters.nostr.local_relay`), a null relay
(`bench.sink_relay`), the LND simulator (`python -m adapters.lnd.sim`), and the daemon itself
(`actors.daemon.Daemon` on a multiprocess thespian base, whose actor processes are children of
the benchmark's process; on simpleSystemBase every actor runs in one thread of the benchmark's
process, driven by a `SystemPump` as the end-to-end tests' `pump` does). `Workbench` starts what a benchmark asks for and stops all of it, even
after a failure, then checks that none of the processes it started is left. CPU time and memory
are read from /proc (psutil is not a dependency).

It must not measure anything by itself or know what a benchmark does with the parts.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters.nostr.local_relay import LocalRelay, free_port

REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


class BenchSetupError(RuntimeError):
    """A part of the bench could not start (a broken environment, not a measurement)."""


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def stop_process(process: subprocess.Popen[Any] | None, timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM its process group, wait, SIGKILL what is left."""
    if process is None:
        return
    for signum in (signal.SIGTERM, signal.SIGKILL):
        if process.poll() is not None:
            break
        try:
            os.killpg(process.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            continue
    try:
        os.killpg(process.pid, signal.SIGKILL)  # children of the group, if any stayed
    except (ProcessLookupError, PermissionError):
        pass


def _spawn_ready(argv: list[str], log_path: Path, what: str) -> tuple[subprocess.Popen[str], dict]:
    """Start a child that prints one JSON line with `"ready": true`; return it and that line."""
    with open(log_path, "a") as log:
        process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, text=True,
            env=child_env(), cwd=REPO, start_new_session=True,
        )
    assert process.stdout is not None
    line = process.stdout.readline()
    try:
        ready = json.loads(line)
    except ValueError:
        ready = {}
    if not ready.get("ready"):
        stop_process(process)
        raise BenchSetupError(f"{what} did not start (see {log_path})")
    return process, ready


# --- /proc -------------------------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()  # after "pid (comm) "


def parent_of(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[1]) if fields else None


def process_tree() -> dict[int, list[int]]:
    """pid -> its live children, from one scan of /proc (a scan costs milliseconds: on
    simpleSystemBase the CPU meter's scans run in the daemon's process, under its GIL)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            parent = parent_of(int(entry))
            if parent is not None:
                children.setdefault(parent, []).append(int(entry))
    return children


def descendants(root: int, tree: dict[int, list[int]] | None = None) -> list[int]:
    """Every live process below `root` (children, their children, ...), in `tree` if given."""
    children = process_tree() if tree is None else tree
    found, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return sorted(found)


# A process (pid) or one thread of a process ((pid, native thread id)): CpuMeter measures both.
CpuKey = int | tuple[int, int]


def _thread_stat_fields(pid: int, tid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()


def cpu_seconds(key: CpuKey) -> float:
    """User + system CPU seconds of a process, or of one thread `(pid, tid)`, so far (0 when
    it is gone)."""
    fields = _thread_stat_fields(*key) if isinstance(key, tuple) else _stat_fields(key)
    if not fields:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def thread_ids(pid: int) -> list[int]:
    try:
        return sorted(int(tid) for tid in os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return []


class SystemPump:
    """Runs a simpleSystemBase actor system in one thread of this process.

    That base runs actors only while a thread is inside `tell`/`ask`/`listen` (the end-to-end
    tests' `pump` calls `listen` between steps); it is not thread-safe, so this thread is the only
    one that runs the system after start. Other threads hand it messages with `tell`, through a
    private external context of the system (thespian's way for other threads): the message joins
    the pending sends at once, under the system's lock, instead of waiting for the actors to go
    idle, as the relay pool's reads reach the daemon without waiting for its actors.
    """

    def __init__(self, system: Any, slice_s: float = 0.01) -> None:
        self._system = system
        self._slice_s = slice_s
        self._external: Any = None
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="daemon-actor-pump", daemon=True)
        self.native_id: int | None = None

    def start(self) -> SystemPump:
        self._thread.start()
        self._ready.wait(START_TIMEOUT)
        return self

    def tell(self, address: Any, message: Any) -> None:
        self._external.tell(address, message)

    def _run(self) -> None:
        self.native_id = threading.get_native_id()
        with self._system.private() as external:
            self._external = external
            self._ready.set()
            while not self._stop.is_set():
                self._system.listen(self._slice_s)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(STOP_TIMEOUT)


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def pss_kb(pid: int) -> int:
    """Proportional set size: shared (forked, copy-on-write) pages split among their sharers,
    so the sum over processes is what they really occupy."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def thread_names(pid: int) -> set[str]:
    names = set()
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                names.add(Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip())
            except OSError:
                continue
    except OSError:
        pass
    return names


@dataclass(frozen=True)
class Memory:
    processes: int
    rss_mb: float
    pss_mb: float

    def as_dict(self) -> dict[str, Any]:
        return {"processes": self.processes, "rss_mb": round(self.rss_mb, 1),
                "pss_mb": round(self.pss_mb, 1)}


def memory_of(pids: Iterable[int]) -> Memory:
    pids = list(pids)
    return Memory(len(pids), sum(rss_kb(p) for p in pids) / 1024,
                  sum(pss_kb(p) for p in pids) / 1024)


class CpuMeter:
    """CPU seconds each process used between `start()` and `stop()`, by label.

    A sampling thread re-reads /proc every `interval` seconds, so processes that start during the
    window (a new order actor) are counted from their birth and ones that exit (a passivated one)
    keep the CPU last seen. `discover` returns the processes to watch (pid -> label) now.
    """

    def __init__(self, discover: Any, interval: float = 0.25) -> None:
        self._discover = discover if callable(discover) else (lambda: dict(discover))
        self._interval = interval
        self.labelled: dict[CpuKey, str] = {}
        self._before: dict[CpuKey, float] = {}
        self._last: dict[CpuKey, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._wall = 0.0
        self.used: dict[CpuKey, float] = {}
        self.wall_s = 0.0

    def _sample(self) -> None:
        for pid, label in self._discover().items():
            if pid not in self.labelled:
                self.labelled[pid] = label
                self._before.setdefault(pid, 0.0)  # born during the window
        for pid in self.labelled:
            seconds = cpu_seconds(pid)
            if seconds > 0.0:
                self._last[pid] = seconds

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    def start(self) -> None:
        self.labelled = dict(self._discover())
        self._before = {pid: cpu_seconds(pid) for pid in self.labelled}
        self._last = dict(self._before)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="bench-cpu-meter", daemon=True)
        self._wall = time.perf_counter()
        self._thread.start()

    def stop(self) -> None:
        self.wall_s = time.perf_counter() - self._wall
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()
        self.used = {pid: max(0.0, self._last.get(pid, 0.0) - self._before.get(pid, 0.0))
                     for pid in self.labelled}

    def by_label(self) -> dict[str, dict[str, float]]:
        """label -> {cpu_s, busiest process's share of one core, processes}."""
        out: dict[str, dict[str, float]] = {}
        for pid, seconds in self.used.items():
            label = self.labelled[pid]
            entry = out.setdefault(label, {"cpu_s": 0.0, "max_core_share": 0.0, "processes": 0})
            entry["cpu_s"] += seconds
            entry["processes"] += 1
            share = seconds / self.wall_s if self.wall_s > 0 else 0.0
            entry["max_core_share"] = max(entry["max_core_share"], share)
        for entry in out.values():
            entry["cpu_s"] = round(entry["cpu_s"], 3)
            entry["max_core_share"] = round(entry["max_core_share"], 3)
        return out


# --- the parts ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """A simulated LND node as the simulator's ready line describes it."""

    name: str
    address: str
    tls_cert_path: Path
    macaroon_path: Path

    @classmethod
    def from_json(cls, node: dict[str, Any]) -> Endpoint:
        return cls(node["name"], node["address"], Path(node["tls_cert_path"]),
                   Path(node["macaroon_path"]))


@dataclass
class Workbench:
    """Starts the processes of one benchmark run under a temporary folder; `close()` stops all."""

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="mostro-bench-")))
    processes: list[subprocess.Popen[Any]] = field(default_factory=list)
    relays: list[LocalRelay] = field(default_factory=list)
    daemons: list[Any] = field(default_factory=list)
    labels: dict[int, str] = field(default_factory=dict)
    admins: list[int] = field(default_factory=list)  # thespian admins that detached from us
    pumps: dict[int, SystemPump] = field(default_factory=dict)  # id(daemon) -> its pump

    def __enter__(self) -> Workbench:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def lnsim(self, wallets: int = 2, wallet_balance_sat: int = 10_000_000) -> dict[str, Endpoint]:
        """The LND simulator with the mostro node and `wallets` funded wallets, in its own process."""
        state = self.root / f"lnsim{len(self.processes)}"
        process, ready = _spawn_ready(
            [sys.executable, "-m", "adapters.lnd.sim", "--state-dir", str(state),
             "--wallets", str(wallets), "--wallet-balance-sat", str(wallet_balance_sat),
             "--control-port", "-1"],
            self.root / "lnsim.log", "the LND simulator")
        self.processes.append(process)
        self.labels[process.pid] = "lnd-sim"
        return {node["name"]: Endpoint.from_json(node) for node in ready["nodes"]}

    def sink_relay(self) -> str:
        """A null relay (OK to every EVENT); its URL."""
        port = free_port()
        process, _ = _spawn_ready([sys.executable, "-m", "bench.sink_relay", "--port", str(port)],
                                  self.root / "sink.log", "the sink relay")
        self.processes.append(process)
        self.labels[process.pid] = "sink-relay"
        return f"ws://127.0.0.1:{port}"

    def relay(self) -> LocalRelay:
        """A real `nostr-relay` process (uvicorn, one process)."""
        relay = LocalRelay(self.root / f"relay{len(self.relays)}")
        relay.start(START_TIMEOUT)
        self.relays.append(relay)
        assert relay.pid is not None
        self.labels[relay.pid] = "relay"
        return relay

    def daemon(self, settings: Any) -> Any:
        """The daemon on `settings` (database migrated first); its actor processes are ours."""
        from actors.daemon import Daemon
        from storage import migrate, open_database
        from supervisor import tune_collector

        migrate(open_database(settings.database.url))
        tune_collector()  # as `mostro-py run` does: the daemon's process is this one
        daemon = Daemon(settings)
        self.daemons.append(daemon)
        daemon.start()
        if daemon.base == "simpleSystemBase":
            self.pumps[id(daemon)] = SystemPump(daemon.system).start()
        admin = find_admin(settings.actors.admin_port if daemon.base == "multiprocTCPBase"
                           else None)
        if admin is not None:
            self.admins.append(admin)
            print(f"bench: daemon admin pid {admin} (profile its actors with `py-spy record "
                  f"--subprocesses --pid {admin}`)", file=sys.stderr, flush=True)
        return daemon

    def tell(self, daemon: Any, address: Any, message: Any) -> None:
        """Send `message` to one of `daemon`'s actors (through its pump on simpleSystemBase)."""
        pump = self.pumps.get(id(daemon))
        if pump is not None:
            pump.tell(address, message)
        else:
            daemon.system.tell(address, message)

    def daemon_pids(self) -> list[int]:
        """The daemon's processes: the actor system's admin and every actor below it.

        On multiprocTCPBase the admin detaches (its parent is init) and is found by the title
        thespian gives it (`MultiProcAdmin ActorAddr-(T|:<admin port>)`); on the other bases the
        actor processes are children of this process.
        """
        tree = process_tree()
        others: set[int] = set()
        for pid in self.labels:
            others.add(pid)
            others.update(descendants(pid, tree))
        found = {pid for pid in descendants(os.getpid(), tree)
                 if pid not in others and not _zombie(pid)}
        for admin in self.admins:
            if not _zombie(admin):
                found.add(admin)
                found.update(descendants(admin, tree))
        return sorted(found)

    def labelled_pids(self) -> dict[int, str]:
        """pid -> label for every process of the run: the parts, and the daemon's by actor."""
        labelled: dict[Any, str] = {pid: label for pid, label in self.labels.items()}
        for pid in self.daemon_pids():
            labelled[pid] = daemon_role(pid)
        labelled.update(self.own_threads())
        return labelled

    def own_threads(self) -> dict[tuple[int, int], str]:
        """simpleSystemBase: this process's threads, split into the daemon's (the pump running
        every actor; the relay pool's, LND streams' and gRPC's threads) and the benchmark's
        (the main thread and threads named `bench-…`). Empty on the multiprocess bases."""
        if not self.pumps:
            return {}
        pid = os.getpid()
        pumps = {pump.native_id for pump in self.pumps.values()}
        bench_threads = {thread.native_id for thread in threading.enumerate()
                         if thread.name.startswith("bench-")}
        bench_threads.add(threading.main_thread().native_id)
        labelled: dict[tuple[int, int], str] = {}
        for tid in thread_ids(pid):
            if tid in pumps:
                labelled[(pid, tid)] = "daemon:simple (all actors, one thread)"
            elif tid in bench_threads:
                labelled[(pid, tid)] = "bench (clients, polling)"
            else:
                labelled[(pid, tid)] = "daemon:threads (relay pool, LND, gRPC)"
        return labelled

    def close(self) -> None:
        # every daemon process alive now: an actor orphaned by its parent's exit is found too
        before_admins = self.daemon_pids()
        before = set(descendants(os.getpid())) | set(before_admins)
        for pump in self.pumps.values():
            pump.stop()
        self.pumps.clear()
        for daemon in self.daemons:
            try:
                daemon.stop()
            except Exception:  # noqa: BLE001 - keep stopping the rest
                pass
        self.daemons.clear()
        for process in self.processes:
            stop_process(process)
        self.processes.clear()
        for relay in self.relays:
            relay.stop()
        self.relays.clear()
        deadline = time.monotonic() + STOP_TIMEOUT
        while True:
            left = [pid for pid in descendants(os.getpid()) + before_admins
                    if pid in before and not _zombie(pid)]
            if not left:
                break
            if time.monotonic() >= deadline:
                for pid in left:  # only processes this run started
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                break
            time.sleep(0.05)  # shutdown poll
        try:
            for _ in range(64):
                if os.waitpid(-1, os.WNOHANG) == (0, 0):
                    break
        except ChildProcessError:
            pass
        shutil.rmtree(self.root, ignore_errors=True)  # databases, simulator and relay state


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def _zombie(pid: int) -> bool:
    fields = _stat_fields(pid)
    return not fields or fields[0] == "Z"


def find_admin(admin_port: int | None) -> int | None:
    """The thespian admin this process started: on the TCP base the one titled with
    `admin_port`; on the queue base the one whose session leader is a child of ours (the admin
    detaches through a short-lived child, which stays a zombie of ours until reaped)."""
    ours = set(descendants(os.getpid()))
    marker = f":{admin_port})" if admin_port else "ActorAddr-Q."
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        line = cmdline(int(entry))
        if not (line.startswith("MultiProcAdmin") and marker in line):
            continue
        fields = _stat_fields(int(entry))
        if admin_port or (fields and int(fields[3]) in ours):
            return int(entry)
    return None


def daemon_role(pid: int) -> str:
    """Which daemon process this is: thespian titles each actor process with its class."""
    line = cmdline(pid)
    if "adapters.nostr.nostr_io" in line:
        return "daemon:relay host (relay pool, check and sign links)"
    if "adapters.nostr.check_worker" in line:
        return f"daemon:{line.rsplit(' ', 1)[-1]} worker"
    first = line.split(" ", 1)[0] if line else ""
    if first and not first.startswith(("/", ".")) and first[:1].isupper() or first == "logger":
        return f"daemon:{first}"
    return "daemon:process"


def bench_settings(root: Path, relay_url: str, lnd_node: Endpoint, base: str,
                   **overrides: dict[str, Any]) -> Any:
    """The e2e stack's settings (fixed prices, fee 0.6 %) on this run's files and ports."""
    from config.examples import example_settings

    sections: dict[str, dict[str, Any]] = {
        "mostro": {"fee": 0.006, "fiat_currencies_accepted": ["USD", "EUR"]},
        "lightning": {"lnd_grpc_host": lnd_node.address, "lnd_cert_file": str(lnd_node.tls_cert_path),
                      "lnd_macaroon_file": str(lnd_node.macaroon_path), "network": "regtest"},
        "nostr": {"relays": [relay_url]},
        "database": {"url": f"sqlite:///{root / 'mostro.db'}"},
        "price": {"fixed": {"USD": 100_000.0, "EUR": 90_000.0}},
        "actors": {"base": base, "admin_port": free_port()},
        "logging": {"level": "WARNING"},
    }
    for name, values in overrides.items():
        sections[name] = {**sections.get(name, {}), **values}
    return example_settings(**sections)


def wait_for(condition: Any, timeout: float, what: str, interval: float = 0.01) -> Any:
    """Poll `condition()` until it is truthy; raise TimeoutError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} not reached within {timeout} s")
        time.sleep(interval)


