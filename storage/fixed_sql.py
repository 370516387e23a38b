"""Run the daemon's hot statements as fixed SQL text instead of building them with peewee.

Building a statement with peewee's query builder costs more CPU than SQLite spends running
it (profiles of benchmark (2): ~60 % of the single-threaded daemon's busy time was peewee,
mostly turning query objects into text). The hot statements of `storage.repository` and
`actors.order_store` are therefore written once as text, in the dialect both backends
accept (double-quoted names, `ON CONFLICT ... DO NOTHING`, `RETURNING`), with `?`
placeholders that are turned into the bound database's own (`%s` on PostgreSQL) once per
text and backend.

This module knows no tables and decides nothing; it only prepares and runs text it is given.
Texts must not contain `%` (PostgreSQL drivers read it as a placeholder) or a literal `?`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from storage.database import database_proxy

# (text, the backend's placeholder) -> text with that placeholder
_PREPARED: dict[tuple[str, str], str] = {}


def prepared(text: str) -> str:
    """`text` with the bound database's placeholders (cached: the texts are a fixed set)."""
    param = database_proxy.obj.param
    if param == "?":
        return text
    key = (text, param)
    sql = _PREPARED.get(key)
    if sql is None:
        if "%" in text:
            raise ValueError(f"fixed SQL text must not contain '%': {text!r}")
        sql = _PREPARED[key] = text.replace("?", param)
    return sql


def execute(text: str, params: Sequence[Any] = ()) -> Any:
    """Run one statement through the bound database (its connection, its transaction, its
    error wrapping) and return the DB-API cursor."""
    return database_proxy.execute_sql(prepared(text), params)


def placeholders(count: int) -> str:
    """`?, ?, …` for an IN list of `count` values."""
    return ", ".join("?" * count)


# (head, row, tail, count) -> the statement
_MANY_ROWS: dict[tuple[str, str, str, int], str] = {}


def many_rows(head: str, row: str, count: int, tail: str = "") -> str:
    """`head VALUES row, row, … tail` with `count` rows: one statement for several rows
    (cached: a few counts and texts recur)."""
    key = (head, row, tail, count)
    sql = _MANY_ROWS.get(key)
    if sql is None:
        sql = _MANY_ROWS[key] = f"{head} VALUES {', '.join([row] * count)}{tail}"
    return sql


def fetch_one(text: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
    return execute(text, params).fetchone()


def fetch_all(text: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    return list(execute(text, params).fetchall())
