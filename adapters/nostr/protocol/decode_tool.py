"""`mostro-py decode`: read Mostro messages or content tuples, one JSON value per line, and print
each one's canonical re-serialization or `error: <what is wrong>`.

A JSON object is a message; a JSON array is a content tuple (two elements = protocol v1 gift
wrap, three = protocol v2 NIP-44). `--verify` also checks a tuple's signatures, which needs the
author's trade pubkey (`--trade-pubkey`): both the trade signature and the v2 identity proof
are bound to it. Exit code 0 when every line was fine, 1 otherwise, 2 on bad arguments.

This is a thin shell over `codec` and `content`: it must not carry parsing rules of its own.
"""

from __future__ import annotations

import argparse
from typing import TextIO

from .codec import ParseError, parse_message, serialize_message, verify_message
from .content import (
    Content,
    SignatureError,
    parse_content,
    serialize_content,
    verify_content,
)


def _arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mostro-py decode",
        description="Check Mostro messages / content tuples (one JSON value per line on stdin) "
        "and print their canonical form.",
    )
    parser.add_argument(
        "--verify",
        action="store_true",
        help="also verify content tuples' signatures (and mostro-core's verify() rules)",
    )
    parser.add_argument(
        "--trade-pubkey",
        metavar="HEX",
        help="x-only hex pubkey of the tuple's author (v1 rumor / v2 event), for --verify",
    )
    return parser


def decode_line(line: str, verify: bool = False, trade_pubkey: str | None = None) -> str:
    """One output line for one input line (without the newline)."""
    if line.lstrip().startswith("["):
        parsed = parse_content(line, None)
        if isinstance(parsed, ParseError):
            return f"error: {parsed}"
        if verify:
            problem = _verify_tuple(parsed, trade_pubkey)
            if problem is not None:
                return f"error: {problem}"
        return serialize_content(parsed)
    message = parse_message(line)
    if isinstance(message, ParseError):
        return f"error: {message}"
    if verify:
        problem = verify_message(message)
        if problem is not None:
            return f"error: verify: {problem}"
    return serialize_message(message)


def _verify_tuple(content: Content, trade_pubkey: str | None) -> str | None:
    problem = verify_message(content.message)
    if problem is not None:
        return f"verify: {problem}"
    needs_key = content.trade_sig is not None or content.identity_proof is not None
    if not needs_key:
        return None
    if trade_pubkey is None:
        return "--trade-pubkey is required to verify this tuple's signatures"
    result = verify_content(content, trade_pubkey)
    return str(result) if isinstance(result, SignatureError) else None


def main(argv: list[str], stdin: TextIO, stdout: TextIO) -> int:
    """Entry point for `mostro-py decode` (argv excludes the program and subcommand names)."""
    try:
        args = _arguments().parse_args(argv)
    except SystemExit as exit_:
        return 2 if exit_.code else 0
    all_ok = True
    for raw_line in stdin:
        line = raw_line.strip()
        if not line:
            continue
        out = decode_line(line, args.verify, args.trade_pubkey)
        if out.startswith("error: "):
            all_ok = False
        stdout.write(out + "\n")
    return 0 if all_ok else 1
