"""Database URLs understood by mostro-py, parsed into a location value.

Standard library only: the settings loader validates `database.url` with it.
This module opens nothing.

Accepted forms (the Rust daemon's sqlx forms included):
`sqlite://mostro.db` (relative to the working directory),
`sqlite:///var/lib/mostro/mostro.db` (absolute), `sqlite:mostro.db`,
`sqlite://:memory:`, and `postgresql://user:password@host:5432/dbname`
(`postgres://` too). A query string on a SQLite URL (sqlx's `?mode=rwc`) is
ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit, urlunsplit


@dataclass(frozen=True)
class SqliteLocation:
    path: str


@dataclass(frozen=True, repr=False)
class PostgresLocation:
    database: str
    user: str | None
    password: str | None
    host: str | None
    port: int | None

    def __repr__(self) -> str:
        # The password stays out of logs and tracebacks.
        return (
            f"PostgresLocation(database={self.database!r}, user={self.user!r}, "
            f"host={self.host!r}, port={self.port!r})"
        )


DatabaseLocation = SqliteLocation | PostgresLocation


def parse_database_url(url: str) -> DatabaseLocation | str:
    """A location, or a reason the URL is not usable (never quoting a password)."""
    text = url.strip()
    if text.startswith("sqlite:"):
        rest = text[len("sqlite:") :]
        if rest.startswith("//"):
            rest = rest[2:]
        path = rest.split("?", 1)[0]
        if not path:
            return "a sqlite URL needs a file path, e.g. sqlite://mostro.db"
        return SqliteLocation(path)
    parts = urlsplit(text)
    if parts.scheme in ("postgresql", "postgres"):
        database = unquote(parts.path.lstrip("/"))
        if not database:
            return "a postgresql URL needs a database name, e.g. postgresql://host/mostro"
        try:
            port = parts.port
        except ValueError:
            return "the postgresql URL has an invalid port"
        return PostgresLocation(
            database=database,
            user=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            host=parts.hostname,
            port=port,
        )
    return "must start with sqlite:// or postgresql://"


def redact_database_url(url: str) -> str:
    """The URL with any password replaced by `***`, for logs and `describe()`."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}"
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
