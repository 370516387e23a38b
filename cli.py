"""The `mostro-py` command line: one entry point, subcommands owned by their packages.

This module only parses arguments and dispatches; it holds no business logic.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

Handler = Callable[[argparse.Namespace], int]

# subcommands whose own parser reads the remaining arguments
_PASS_THROUGH = frozenset({"lnsim", "decode", "inspect", "replay", "devnet", "health", "stop"})


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mostro-py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="start the daemon under the supervisor")
    run.add_argument("--config", default="config/settings.toml", help="settings file (TOML)")
    run.add_argument("--join", metavar="LEADER", default="",
                     help="run as a worker in the convention of this leader (host:admin_port)")
    run.set_defaults(handler=_run)

    health = sub.add_parser("health", help="ask a running daemon how it is (exit 0: healthy)",
                            add_help=False)
    health.set_defaults(handler=_health)

    stop = sub.add_parser("stop", help="shut down an actor system whose supervisor was killed "
                          "(a running supervisor: SIGTERM or Ctrl-C)", add_help=False)
    stop.set_defaults(handler=_stop)

    devnet = sub.add_parser("devnet", help="relay + LND simulator + daemon on this machine; "
                            "`devnet demo` runs a scripted two-taker race", add_help=False)
    devnet.set_defaults(handler=_devnet)

    config = sub.add_parser("config", help="configuration tools")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    check = config_sub.add_parser("check", help="validate a settings file and print a summary")
    check.add_argument("path", nargs="?", default="config/settings.toml")
    check.set_defaults(handler=_config_check)
    lnsim = sub.add_parser("lnsim", help="run the LND-protocol simulator (see adapters/lnd/README.md)",
                           add_help=False)
    lnsim.set_defaults(handler=_lnsim)

    decode = sub.add_parser("decode", help="check Mostro messages / content tuples read from stdin",
                            add_help=False)
    decode.set_defaults(handler=_decode)
    inspect = sub.add_parser("inspect", help="orders, actors and stuck orders of a node",
                             add_help=False)
    inspect.set_defaults(handler=_inspect)

    replay = sub.add_parser("replay", help="export an order's journal / replay it through the logic",
                            add_help=False)
    replay.set_defaults(handler=_replay)
    return parser


def _inspect(args: argparse.Namespace) -> int:
    from actors.tools_cli import inspect_main

    return inspect_main(args.rest)


def _replay(args: argparse.Namespace) -> int:
    from actors.tools_cli import replay_main

    return replay_main(args.rest)


def _lnsim(args: argparse.Namespace) -> int:
    from adapters.lnd.sim import main as lnsim_main

    return lnsim_main(args.rest)


def _decode(args: argparse.Namespace) -> int:
    from adapters.nostr.protocol.decode_tool import main as decode_main

    return decode_main(args.rest, sys.stdin, sys.stdout)


def _health(args: argparse.Namespace) -> int:
    import supervisor

    return supervisor.health_main(args.rest)


def _stop(args: argparse.Namespace) -> int:
    import supervisor

    return supervisor.stop_main(args.rest)


def _devnet(args: argparse.Namespace) -> int:
    if args.rest[:1] == ["demo"]:
        from actors.devnet_demo import demo_main

        return demo_main(args.rest[1:])
    from actors.devnet import run_main

    return run_main(args.rest)


def _run(args: argparse.Namespace) -> int:
    import supervisor

    return supervisor.main(["--config", args.config, *(["--join", args.join] if args.join else [])])


def _config_check(args: argparse.Namespace) -> int:
    from config import ConfigError, load_settings

    try:
        settings = load_settings(args.path)
    except ConfigError as err:
        print(err, file=sys.stderr)
        return 2
    print(settings.describe())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args, rest = _build_parser().parse_known_args(argv)
    if rest and args.command not in _PASS_THROUGH:
        _build_parser().error(f"unrecognized arguments: {' '.join(rest)}")
    args.rest = rest
    handler: Handler = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
