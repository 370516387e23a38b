"""Value rules for settings: each rule turns a raw TOML value into a typed value or a reason.

A rule never raises for bad input and never reads the environment; the
loader decides which key it is checking and collects the reasons. Reasons
must not echo values that may be secret (the secret-key rule lives in
`config.secret_key` and says nothing about the value it refused).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from storage.url import parse_database_url


@dataclass(frozen=True)
class Invalid:
    """Why a raw value was refused, worded to follow `<section>.<key>: `."""

    reason: str


class Rule(Protocol):
    """What the loader needs from a rule; `type_label`/`constraint` feed REFERENCE.md."""

    type_label: str

    def parse(self, raw: object) -> object | Invalid: ...

    def constraint(self) -> str: ...


def type_name(raw: object) -> str:
    """TOML's name for the type of a parsed value, for error messages."""
    if isinstance(raw, bool):
        return "a boolean"
    if isinstance(raw, int):
        return "an integer"
    if isinstance(raw, float):
        return "a float"
    if isinstance(raw, str):
        return "a string"
    if isinstance(raw, list):
        return "an array"
    if isinstance(raw, dict):
        return "a table"
    return f"a {type(raw).__name__}"


def _bounds_text(low: object, high: object, *, high_open: bool = False) -> str:
    upper = "<" if high_open else "≤"
    if low is not None and high is not None:
        return f"{low} ≤ x {upper} {high}"
    if low is not None:
        return f"x ≥ {low}"
    if high is not None:
        return f"x {upper} {high}"
    return ""


@dataclass(frozen=True)
class Integer:
    """A TOML integer (booleans refused) inside optional bounds."""

    minimum: int | None = None
    maximum: int | None = None
    type_label: str = "integer"

    def parse(self, raw: object) -> object | Invalid:
        if isinstance(raw, bool) or not isinstance(raw, int):
            return Invalid(f"expected an integer, got {type_name(raw)}")
        if self.minimum is not None and raw < self.minimum:
            return Invalid(f"must be ≥ {self.minimum}, got {raw}")
        if self.maximum is not None and raw > self.maximum:
            return Invalid(f"must be ≤ {self.maximum}, got {raw}")
        return raw

    def constraint(self) -> str:
        return _bounds_text(self.minimum, self.maximum)


@dataclass(frozen=True)
class OptionalInteger:
    """An integer that may be left out (the section then derives a value)."""

    inner: Integer
    type_label: str = "integer, optional"

    def parse(self, raw: object) -> object | Invalid:
        return self.inner.parse(raw)

    def constraint(self) -> str:
        return self.inner.constraint()


@dataclass(frozen=True)
class Real:
    """A finite number (TOML integers accepted) inside optional bounds."""

    minimum: float | None = None
    maximum: float | None = None
    maximum_open: bool = False
    type_label: str = "float"

    def parse(self, raw: object) -> object | Invalid:
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            return Invalid(f"expected a number, got {type_name(raw)}")
        value = float(raw)
        if not math.isfinite(value):
            return Invalid(f"must be a finite number, got {value}")
        if self.minimum is not None and value < self.minimum:
            return Invalid(f"must be ≥ {self.minimum}, got {value}")
        if self.maximum is not None:
            too_big = value >= self.maximum if self.maximum_open else value > self.maximum
            if too_big:
                sign = "<" if self.maximum_open else "≤"
                return Invalid(f"must be {sign} {self.maximum}, got {value}")
        return value

    def constraint(self) -> str:
        return _bounds_text(self.minimum, self.maximum, high_open=self.maximum_open)


@dataclass(frozen=True)
class Boolean:
    type_label: str = "bool"

    def parse(self, raw: object) -> object | Invalid:
        if not isinstance(raw, bool):
            return Invalid(f"expected true or false, got {type_name(raw)}")
        return raw

    def constraint(self) -> str:
        return ""


@dataclass(frozen=True)
class Text:
    """A string; `optional` texts may be absent (None) but not empty when given."""

    optional: bool = False
    type_label: str = "string"

    def parse(self, raw: object) -> object | Invalid:
        if not isinstance(raw, str):
            return Invalid(f"expected a string, got {type_name(raw)}")
        if not raw.strip():
            return Invalid("must not be empty")
        return raw

    def constraint(self) -> str:
        return "optional" if self.optional else "non-empty"


@dataclass(frozen=True)
class FilePath:
    """A path to a file; `~` is expanded. Existence is checked by whoever opens it."""

    type_label: str = "path"

    def parse(self, raw: object) -> object | Invalid:
        if not isinstance(raw, str):
            return Invalid(f"expected a path string, got {type_name(raw)}")
        if not raw.strip():
            return Invalid("must not be empty")
        return os.path.expanduser(raw)

    def constraint(self) -> str:
        return "non-empty; `~` expanded"


@dataclass(frozen=True)
class Choice:
    """One of a fixed set of strings; `fold_case` accepts any case and stores the canonical one."""

    options: tuple[str, ...]
    fold_case: bool = False
    type_label: str = "string"

    def parse(self, raw: object) -> object | Invalid:
        if not isinstance(raw, str):
            return Invalid(f"expected a string, got {type_name(raw)}")
        for option in self.options:
            if raw == option or (self.fold_case and raw.casefold() == option.casefold()):
                return option
        allowed = ", ".join(repr(o) for o in self.options)
        return Invalid(f"must be one of {allowed}, got {raw!r}")

    def constraint(self) -> str:
        return " \\| ".join(f"`{o}`" for o in self.options)


@dataclass(frozen=True)
class TextList:
    """An array of non-empty strings, stored as a tuple (settings are immutable)."""

    allow_empty: bool = True
    type_label: str = "array of strings"

    def parse(self, raw: object) -> object | Invalid:
        if not isinstance(raw, list):
            return Invalid(f"expected an array of strings, got {type_name(raw)}")
        if not raw and not self.allow_empty:
            return Invalid("must list at least one entry")
        for index, item in enumerate(raw):
            if not isinstance(item, str) or not item.strip():
                return Invalid(f"entry {index} must be a non-empty string")
        return tuple(raw)

    def constraint(self) -> str:
        return "" if self.allow_empty else "at least one"


@dataclass(frozen=True)
class RelayList:
    """Nostr relay URLs: at least one, each ws:// or wss:// with a host."""

    type_label: str = "array of URLs"

    def parse(self, raw: object) -> object | Invalid:
        parsed = TextList(allow_empty=False).parse(raw)
        if isinstance(parsed, Invalid):
            return parsed
        assert isinstance(parsed, tuple)
        for index, url in enumerate(parsed):
            parts = urlsplit(url)
            if parts.scheme not in ("ws", "wss") or not parts.hostname:
                return Invalid(f"entry {index} must be a ws:// or wss:// URL, got {url!r}")
            try:
                parts.port  # noqa: B018 - raises on a bad port
            except ValueError:
                return Invalid(f"entry {index} has an invalid port: {url!r}")
        return parsed

    def constraint(self) -> str:
        return "at least one; ws:// or wss://"


@dataclass(frozen=True)
class GrpcHost:
    """`host:port`, optionally written as `https://host:port` like the Rust template."""

    type_label: str = "string"

    def parse(self, raw: object) -> object | Invalid:
        if not isinstance(raw, str):
            return Invalid(f"expected a string, got {type_name(raw)}")
        text = raw.strip()
        if "://" in text:
            parts = urlsplit(text)
            if parts.scheme not in ("https", "http"):
                return Invalid(f"scheme must be https://, got {parts.scheme!r}")
        else:
            parts = urlsplit("//" + text)
        try:
            port = parts.port
        except ValueError:
            port = None
        if not parts.hostname or port is None or parts.path not in ("", "/"):
            return Invalid(f"expected host:port (e.g. 127.0.0.1:10009), got {raw!r}")
        return text

    def constraint(self) -> str:
        return "`host:port` or `https://host:port`"


@dataclass(frozen=True)
class HostPort:
    """`host:port` (IPv6 hosts in brackets), or empty when `allow_empty` (the key is unused)."""

    allow_empty: bool = False
    type_label: str = "string"

    def parse(self, raw: object) -> object | Invalid:
        if not isinstance(raw, str):
            return Invalid(f"expected a string, got {type_name(raw)}")
        text = raw.strip()
        if not text:
            return text if self.allow_empty else Invalid("must not be empty")
        parts = urlsplit("//" + text)
        try:
            port = parts.port
        except ValueError:
            port = None
        if "://" in text or not parts.hostname or port is None or port == 0 or parts.path:
            return Invalid(f"expected host:port (e.g. 10.0.0.5:1900), got {raw!r}")
        return text

    def constraint(self) -> str:
        return "`host:port` or empty" if self.allow_empty else "`host:port`"


@dataclass(frozen=True)
class DatabaseUrl:
    """`sqlite://relative/path`, `sqlite:///absolute/path` or `postgresql://…`."""

    type_label: str = "URL"

    def parse(self, raw: object) -> object | Invalid:
        if not isinstance(raw, str):
            return Invalid(f"expected a string, got {type_name(raw)}")
        parsed = parse_database_url(raw)
        if isinstance(parsed, str):
            return Invalid(parsed)
        return raw

    def constraint(self) -> str:
        return "`sqlite://…` or `postgresql://…`"


@dataclass(frozen=True)
class PriceTable:
    """A table of fiat code → BTC price in that fiat (positive), stored as sorted pairs."""

    type_label: str = "table of floats"

    def parse(self, raw: object) -> object | Invalid:
        if not isinstance(raw, dict):
            return Invalid(f"expected a table like {{USD = 100000.0}}, got {type_name(raw)}")
        pairs = []
        for code, price in sorted(raw.items()):
            if not code.strip():
                return Invalid("currency codes must not be empty")
            number = Real(minimum=0.0).parse(price)
            if isinstance(number, Invalid) or number == 0.0:
                return Invalid(f"price of {code} must be a positive number")
            pairs.append((code, number))
        return tuple(pairs)

    def constraint(self) -> str:
        return "each price > 0"


@dataclass(frozen=True)
class NostrSecret:
    """The node key as `nsec1…` or 64 hex digits; reasons never quote the value."""

    type_label: str = "secret string"

    def parse(self, raw: object) -> object | Invalid:
        from config.secret_key import parse_secret_key

        if not isinstance(raw, str):
            return Invalid(f"expected a string, got {type_name(raw)}")
        parsed = parse_secret_key(raw)
        return Invalid(parsed) if isinstance(parsed, str) else parsed

    def constraint(self) -> str:
        return "`nsec1…` or 64 hex digits"
