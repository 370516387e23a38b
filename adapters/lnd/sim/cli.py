"""Command line of the simulator: `python -m adapters.lnd.sim [options]`
(and `mostro-py lnsim`, which calls `main(argv)`).

Starts the simulator, prints one JSON line with the endpoints (also written
to <state-dir>/nodes.json), and runs until SIGINT/SIGTERM, then saves the
state. Parses arguments and waits; nothing else.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

from .payreq import CURRENCY_BY_NETWORK
from .simulator import SimConfig, Simulator


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lnsim",
        description="LND-protocol simulator: a Mostro node and user wallets on one "
        "simulated Lightning network, each a TLS gRPC endpoint with LND's services.",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=Path("lnsim-state"),
        help="where state.json, nodes.json and each node's tls.cert, "
        "tls.key and admin.macaroon live (default: ./lnsim-state)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    parser.add_argument(
        "--wallets",
        type=int,
        default=2,
        help="user wallets besides the mostro node (first start only)",
    )
    parser.add_argument("--mostro-balance-sat", type=int, default=10_000_000)
    parser.add_argument("--wallet-balance-sat", type=int, default=10_000_000)
    parser.add_argument("--network", choices=sorted(CURRENCY_BY_NETWORK), default="regtest")
    parser.add_argument(
        "--base-port",
        type=int,
        default=0,
        help="node i listens on base+i (mostro is 0); 0: the ports of the "
        "previous run in this state dir, else free ports",
    )
    parser.add_argument(
        "--control-port",
        type=int,
        default=0,
        help="port of the simrpc.SimControl service (0: a free port; -1: none)",
    )
    parser.add_argument("--fee-base-msat", type=int, default=0)
    parser.add_argument("--fee-ppm", type=int, default=0)
    parser.add_argument("--block-height", type=int, default=200)
    parser.add_argument(
        "--manual-clock",
        action="store_true",
        help="freeze time; it moves only by SimControl.AdvanceClock",
    )
    return parser


def config_from_args(args: argparse.Namespace) -> SimConfig:
    return SimConfig(
        state_dir=args.state_dir,
        host=args.host,
        wallets=args.wallets,
        mostro_balance_sat=args.mostro_balance_sat,
        wallet_balance_sat=args.wallet_balance_sat,
        network=args.network,
        base_port=args.base_port,
        control_port=None if args.control_port < 0 else args.control_port,
        fee_base_msat=args.fee_base_msat,
        fee_ppm=args.fee_ppm,
        block_height=args.block_height,
        manual_clock=args.manual_clock,
    )


def main(argv: list[str] | None = None) -> int:
    """Runs the simulator in the foreground until SIGINT or SIGTERM."""
    args = build_parser().parse_args(argv)
    simulator = Simulator(config_from_args(args)).start()
    stop = threading.Event()
    previous = {
        signum: signal.signal(signum, lambda *_: stop.set())
        for signum in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        print(json.dumps({"ready": True, **simulator.describe()}), flush=True)
        stop.wait()
    finally:
        simulator.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    print(json.dumps({"stopped": True}), file=sys.stderr, flush=True)
    return 0
