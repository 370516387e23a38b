"""The operator commands `mostro-py inspect ...` and `mostro-py replay ...`: arguments and output.

`inspect_main(argv)` and `replay_main(argv)` each parse their own arguments,
call ``actors.inspection`` / ``actors.replay``, and print human-readable
tables (or JSON with ``--json``). Operator mistakes (no settings, no
database, no such order, a daemon that is not running) are printed as one
line and an exit code, never a traceback. This module decides nothing
about orders.

Exit codes: 0 fine; 1 something was found (stuck orders with ``inspect
stuck``, a divergence with ``replay run``); 2 the command could not run.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from . import inspection, replay
from .stuck_rules import Thresholds

DEFAULT_CONFIG = "config/settings.toml"


class _Failed(Exception):
    """An operator-facing failure: message printed, exit code 2 (raised only inside this module)."""


# ------------------------------------------------------------------ shared setup
def _settings(path: str) -> Any:
    from config import ConfigError, load_settings

    try:
        return load_settings(path)
    except ConfigError as err:
        raise _Failed(f"bad settings ({path}):\n{err}") from None
    except OSError as err:
        raise _Failed(f"cannot read settings {path}: {err.strerror or err}") from None


def _open_database(settings: Any) -> None:
    from storage import DatabaseUrlError, open_database
    from storage.url import SqliteLocation, parse_database_url

    url = settings.database.url
    location = parse_database_url(url)
    if isinstance(location, SqliteLocation) and location.path != ":memory:" \
            and not Path(location.path).exists():
        raise _Failed(f"no database at {location.path} (database.url in the settings)")
    try:
        open_database(url)
    except DatabaseUrlError as err:
        raise _Failed(f"database.url: {err}") from None


def _run(handler: Any, args: argparse.Namespace, out: TextIO) -> int:
    try:
        return handler(args, out)
    except _Failed as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="settings file (TOML)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


# ------------------------------------------------------------------ tables
def format_time(stamp: int | None, now: int | None = None) -> str:
    if not stamp:
        return "-"
    text = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(stamp))
    if now is None:
        return text
    delta = stamp - now
    word = "in" if delta > 0 else "ago"
    span = abs(delta)
    amount = f"{span}s" if span < 120 else f"{span // 60}m" if span < 7200 else f"{span // 3600}h"
    return f"{text} ({'in ' + amount if word == 'in' else amount + ' ago'})"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain text table; the last column is never padded."""
    cells = [[str(h) for h in headers]] + [["-" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for index, row in enumerate(cells):
        padded = [value.ljust(widths[i]) if i < len(row) - 1 else value for i, value in enumerate(row)]
        lines.append("  ".join(padded).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


# ------------------------------------------------------------------ inspect
def _thresholds(args: argparse.Namespace) -> Thresholds:
    return Thresholds(
        deadline_grace=args.deadline_grace, outbox_age=args.outbox_age,
        bond_mismatch_grace=args.bond_grace, payout_in_flight=args.payout_grace,
    )


def _add_stuck_options(parser: argparse.ArgumentParser) -> None:
    defaults = Thresholds()
    parser.add_argument("--deadline-grace", type=int, default=defaults.deadline_grace,
                        help="seconds a deadline may be overdue (default %(default)s)")
    parser.add_argument("--outbox-age", type=int, default=defaults.outbox_age,
                        help="seconds an effect may stay undone (default %(default)s)")
    parser.add_argument("--bond-grace", type=int, default=defaults.bond_mismatch_grace,
                        help="seconds a bond may disagree with LND (default %(default)s)")
    parser.add_argument("--payout-grace", type=int, default=defaults.payout_in_flight,
                        help="seconds a payout may stay in flight (default %(default)s)")
    parser.add_argument("--lnd", action="store_true",
                        help="ask LND (LookupInvoiceV2) for the current state of bond invoices")


def _inspect_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mostro-py inspect", description="look at orders, actors and stuck orders")
    sub = parser.add_subparsers(dest="what", required=True)
    orders = sub.add_parser("orders", help="list orders")
    _common(orders)
    orders.add_argument("--status", action="append", default=[], help="only this status (repeatable)")
    orders.add_argument("--stuck", action="store_true", help="only orders the stuck rules flag")
    _add_stuck_options(orders)
    order = sub.add_parser("order", help="one order: row, bonds, deadlines, journal, outbox, actor")
    _common(order)
    order.add_argument("order_id")
    order.add_argument("--journal", type=int, default=inspection.JOURNAL_TAIL,
                       help="journal entries to show (default %(default)s)")
    order.add_argument("--no-actors", action="store_true", help="do not ask the actor system")
    _add_stuck_options(order)
    actors = sub.add_parser("actors", help="live actors, their kind and mailbox depth")
    _common(actors)
    actors.add_argument("--timeout", type=float, default=5.0, help="seconds per status request")
    stuck = sub.add_parser("stuck", help="stuck orders and why")
    _common(stuck)
    _add_stuck_options(stuck)
    for each in (orders, order, stuck):
        each.add_argument("--now", type=int, default=None, help="judge as of this Unix time")
    return parser


def _lnd_lookup(args: argparse.Namespace, settings: Any) -> Any:
    if not getattr(args, "lnd", False):
        return None
    client = inspection.connect_lnd(settings)
    if isinstance(client, str):
        raise _Failed(f"--lnd: {client}")
    return lambda hashes: inspection.lnd_invoice_states(client, hashes)


def _inspect_orders(args: argparse.Namespace, out: TextIO) -> int:
    settings = _settings(args.config)
    _open_database(settings)
    now = args.now if args.now is not None else int(time.time())
    orders = inspection.list_orders(args.status)
    if args.stuck:
        findings = inspection.find_stuck(settings, now, _thresholds(args), _lnd_lookup(args, settings))
        flagged = inspection.stuck_order_ids(findings)
        orders = [o for o in orders if o.id in flagged]
    if args.json:
        print(inspection.dumps_json(orders), file=out)
        return 0
    rows = [(o.id, o.kind, o.status, o.amount, o.fiat, format_time(o.created_at),
             format_time(o.expires_at), o.range_parent_id) for o in orders]
    print(table(("id", "kind", "status", "sats", "fiat", "created", "expires", "parent"), rows),
          file=out)
    print(f"{len(orders)} order(s)", file=out)
    return 0


def _inspect_order(args: argparse.Namespace, out: TextIO) -> int:
    settings = _settings(args.config)
    _open_database(settings)
    now = args.now if args.now is not None else int(time.time())
    if args.no_actors:
        liveness = inspection.ActorLiveness(False, note="not asked (--no-actors)")
    else:
        liveness = inspection.actor_system_view(settings, walk=False).liveness_of(args.order_id)
    lookup = _lnd_lookup(args, settings)
    lnd_states = None
    if lookup is not None:
        state = inspection.load_state(args.order_id)
        lnd_states = lookup(inspection.hashes_to_check([state] if state else []))
    report = inspection.inspect_order(args.order_id, settings, now, _thresholds(args), liveness,
                                      args.journal, lnd_states)
    if report is None:
        raise _Failed(f"no order {args.order_id}")
    if args.json:
        print(inspection.dumps_json(report), file=out)
        return 0
    print(render_order(report, now), file=out)
    return 0


def render_order(report: inspection.OrderReport, now: int) -> str:
    row = report.row
    parts = [f"order {row['id']}"]
    parts.append(table(("column", "value"), [(k, v) for k, v in row.items()]))
    parts.append(f"\nbonds ({len(report.bonds)}):")
    if report.bonds:
        parts.append(table(
            ("id", "role", "state", "invoice", "sats", "hash", "created", "locked", "released",
             "release confirmed"),
            [(b.id, b.role, b.state, b.invoice_state, b.amount_sats, b.hash, format_time(b.created_at),
              format_time(b.locked_at), format_time(b.released_at),
              format_time(b.release_confirmed_at)) for b in report.bonds]))
    if report.dispute:
        parts.append("\ndispute:")
        parts.append(table(("column", "value"), list(report.dispute.items())))
    parts.append(f"\ndeadlines ({len(report.deadlines)}):")
    if report.deadlines:
        parts.append(table(("kind", "at", "key"),
                           [(d.kind.value, format_time(d.at, now), d.key) for d in report.deadlines]))
    parts.append(f"\njournal: {report.journal_entries} entr(y/ies), last {len(report.journal_tail)}:")
    if report.journal_tail:
        parts.append(table(("seq", "at", "event", "status after", "effects"),
                           [(j.seq, format_time(j.created_at), j.event, j.status_after,
                             ", ".join(j.effects)) for j in report.journal_tail]))
    parts.append(f"\nundone outbox effects ({len(report.undone_outbox)}):")
    if report.undone_outbox:
        parts.append(table(("id", "effect", "target", "created", "attempts", "last error"),
                           [(o.id, o.summary or o.effect, o.target, format_time(o.created_at, now),
                             o.attempts, o.last_error) for o in report.undone_outbox]))
    actor = report.actor
    if not actor.system_running:
        parts.append(f"\nactor: unknown — {actor.note}")
    elif actor.live is None:
        parts.append(f"\nactor: {actor.note}")
    else:
        state = "live" if actor.live else "not live (passivated or never activated)"
        parts.append(f"\nactor: {state}; {actor.buffered} message(s) waiting for it")
    parts.append(f"\nstuck ({len(report.stuck)}):")
    parts += [f"  [{f.rule}] {f.reason}" for f in report.stuck] or ["  no"]
    return "\n".join(parts)


def _inspect_actors(args: argparse.Namespace, out: TextIO) -> int:
    settings = _settings(args.config)
    view = inspection.actor_system_view(settings, args.timeout)
    if args.json:
        print(inspection.dumps_json(view), file=out)
        return 0
    print(render_actors(view), file=out)
    return 0


def render_actors(view: inspection.ActorSystemView) -> str:
    if not view.running:
        return f"{view.note}; no actors to show (the database view still works: inspect orders)"
    rows = [(a.address, a.kind.rsplit(".", 1)[-1], a.global_name, a.parent,
             a.mailbox if a.responsive else "no answer", a.outgoing, a.children)
            for a in view.actors]
    parts = [table(("address", "kind", "name", "parent", "mailbox", "outgoing", "children"), rows),
             f"{len(view.actors)} actor(s)"]
    if view.directory is not None:
        directory = view.directory
        buffered = ", ".join(f"{k}: {v}" for k, v in directory.buffered.items()) or "none"
        parts.append(f"directory: {len(directory.live_orders)} live order actor(s), "
                     f"{directory.handled} event(s) handled, buffered: {buffered}")
        parts += [f"  live {order_id}" for order_id in directory.live_orders]
    return "\n".join(parts)


def _inspect_stuck(args: argparse.Namespace, out: TextIO) -> int:
    settings = _settings(args.config)
    _open_database(settings)
    now = args.now if args.now is not None else int(time.time())
    findings = inspection.find_stuck(settings, now, _thresholds(args), _lnd_lookup(args, settings))
    if args.json:
        print(inspection.dumps_json(findings), file=out)
    else:
        print(table(("order", "rule", "since", "why"),
                    [(f.order_id, f.rule, format_time(f.since, now), f.reason) for f in findings]),
              file=out)
        print(f"{len(findings)} finding(s) on {len(inspection.stuck_order_ids(findings))} order(s)",
              file=out)
    return 1 if findings else 0


_INSPECT = {"orders": _inspect_orders, "order": _inspect_order, "actors": _inspect_actors,
            "stuck": _inspect_stuck}


def inspect_main(argv: list[str], out: TextIO | None = None) -> int:
    """`mostro-py inspect {orders,order ID,actors,stuck} [--config F] [--json]`."""
    args = _inspect_parser().parse_args(argv)
    return _run(_INSPECT[args.what], args, out or sys.stdout)


# ------------------------------------------------------------------ replay
def _replay_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mostro-py replay", description="export an order's journal; replay it through decide")
    sub = parser.add_subparsers(dest="what", required=True)
    export = sub.add_parser("export", help="write an order's journal as JSON lines")
    export.add_argument("order_id")
    export.add_argument("-o", "--output", required=True, help="file to write")
    export.add_argument("--config", default=DEFAULT_CONFIG, help="settings file (TOML)")
    run = sub.add_parser("run", help="replay a journal file; stop at the first divergence")
    run.add_argument("file")
    run.add_argument("--config", default=DEFAULT_CONFIG,
                     help="settings the decisions are replayed with (TOML)")
    run.add_argument("--quiet", action="store_true", help="print only the result")
    return parser


def _replay_export(args: argparse.Namespace, out: TextIO) -> int:
    settings = _settings(args.config)
    _open_database(settings)
    lines = replay.export_journal(args.order_id)
    if isinstance(lines, str):
        raise _Failed(lines)
    try:
        replay.write_export(lines, Path(args.output))
    except OSError as err:
        raise _Failed(f"cannot write {args.output}: {err.strerror or err}") from None
    orders = len({replay.subject_of(line) for line in lines})
    print(f"wrote {len(lines)} journal entr(y/ies) of {orders} order(s) to {args.output}", file=out)
    return 0


def _replay_run(args: argparse.Namespace, out: TextIO) -> int:
    settings = _settings(args.config)
    lines = replay.read_export(Path(args.file))
    if isinstance(lines, str):
        raise _Failed(lines)
    steps = 0
    for item in replay.replay_lines(lines, settings):
        if isinstance(item, replay.ReplayProblem):
            print(f"step {item.number} (order {item.order_id} seq {item.seq}): cannot replay: "
                  f"{item.reason}", file=out)
            return 2
        steps += 1
        if not args.quiet or item.divergences:
            print(render_step(item), file=out)
        if item.divergences:
            print(render_divergence(item), file=out)
            return 1
    print(f"replayed {steps} step(s): no divergence", file=out)
    return 0


def render_step(step: replay.ReplayStep) -> str:
    lines = [f"step {step.number}  order {step.order_id}  seq {step.seq}: {step.event}",
             f"  status {step.status_before or '(none)'} → {step.status_after or '(none)'}"]
    lines += [f"  effect {e}" for e in step.effects]
    lines += [f"  diff   {d}" for d in step.state_diff]
    return "\n".join(lines)


def render_divergence(step: replay.ReplayStep) -> str:
    lines = [f"DIVERGENCE at step {step.number} (order {step.order_id}, seq {step.seq}):"]
    for divergence in step.divergences:
        lines.append(f"  {divergence.part} differ at {divergence.path}:")
        lines.append(f"    recorded: {replay.short_json(divergence.recorded)}")
        lines.append(f"    replayed: {replay.short_json(divergence.replayed)}")
    lines.append("  (decisions are replayed with the settings of --config; changed settings or "
                 "changed code both show up here)")
    return "\n".join(lines)


_REPLAY = {"export": _replay_export, "run": _replay_run}


def replay_main(argv: list[str], out: TextIO | None = None) -> int:
    """`mostro-py replay export ORDER_ID -o FILE` / `mostro-py replay run FILE [--config F]`."""
    args = _replay_parser().parse_args(argv)
    return _run(_REPLAY[args.what], args, out or sys.stdout)
