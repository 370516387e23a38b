"""A null relay for benchmarks: accepts every EVENT with an `OK`, answers every REQ with `EOSE`.

It stores nothing and forwards nothing. Benchmark (2) points the daemon's relay pool at it when it
injects requests straight into the Nostr adapter ("no relay"): replies still leave the daemon over
a websocket and are acknowledged, so the outbox marks them done as it would with a real relay,
but no relay's storage or fan-out cost is paid. Run as `python -m bench.sink_relay --port P`; it
prints one JSON line `{"ready": true, "port": P}` and serves until SIGTERM.

It must not validate, store or forward events: it is a sink, not a relay.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Sequence


async def _serve(port: int) -> None:
    from websockets.asyncio.server import serve

    async def handle(connection) -> None:  # type: ignore[no-untyped-def]
        try:
            async for text in connection:
                message = json.loads(text)
                if message and message[0] == "EVENT" and len(message) > 1:
                    event_id = message[1].get("id", "") if isinstance(message[1], dict) else ""
                    await connection.send(json.dumps(["OK", event_id, True, ""]))
                elif message and message[0] == "REQ" and len(message) > 1:
                    await connection.send(json.dumps(["EOSE", message[1]]))
        except Exception:  # noqa: BLE001 - a client going away is normal here
            return

    stop = asyncio.get_running_loop().create_future()
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set_result, None)
    async with serve(handle, "127.0.0.1", port, max_size=None, compression=None):
        print(json.dumps({"ready": True, "port": port}), flush=True)
        await stop


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sink_relay")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    asyncio.run(_serve(args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
