"""Regenerates the checked-in Python stubs from the .proto files next to it.

Run from anywhere: ``python -m adapters.lnd.protos.generate`` (``--out DIR``
writes the tree adapters/lnd/protos/ under DIR instead, to compare). protoc runs with
the repository root as include path, so the generated cross-imports are
package-qualified (``from adapters.lnd.protos import lightning_pb2``). This
module only generates; it must not edit the .proto files or touch anything
outside this folder.
"""

from __future__ import annotations

import sys
from pathlib import Path

PROTO_DIR = Path(__file__).resolve().parent
REPO_ROOT = PROTO_DIR.parents[2]
PROTO_FILES = ("lightning.proto", "invoices.proto", "router.proto", "simrpc.proto")


def protoc_arguments(out_dir: Path = REPO_ROOT) -> list[str]:
    """The argv for grpc_tools.protoc, relative to the repository root."""
    from importlib import resources

    well_known = str(resources.files("grpc_tools") / "_proto")
    relative = [str((PROTO_DIR / name).relative_to(REPO_ROOT)) for name in PROTO_FILES]
    return [
        "grpc_tools.protoc",
        f"-I{REPO_ROOT}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *[str(REPO_ROOT / path) for path in relative],
    ]


def main(argv: list[str] | None = None) -> int:
    """Runs protoc; returns its exit status."""
    import argparse

    from grpc_tools import protoc  # only needed here: grpcio-tools is a test extra

    parser = argparse.ArgumentParser(prog="python -m adapters.lnd.protos.generate")
    parser.add_argument("--out", type=Path, default=REPO_ROOT, help="output root (default: repo)")
    args = parser.parse_args(argv)
    (args.out / PROTO_DIR.relative_to(REPO_ROOT)).mkdir(parents=True, exist_ok=True)
    status = protoc.main(protoc_arguments(args.out))
    if status != 0:
        print(f"protoc failed with status {status}", file=sys.stderr)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
