"""Reads settings from a TOML file (or text, or a dict) plus the environment, and validates them.

Every problem is collected — unknown sections and keys, wrong types, values
out of range, missing required keys, cross-key contradictions — and
reported together in one `ConfigError`, one `<section>.<key>: <problem>`
per line, so an operator fixes the file in one pass and never sees a
traceback. Secret values never appear in a message.

Environment: a key whose spec names an environment variable (the node
secret `MOSTRO_NSEC_PRIVKEY`, the database URL `MOSTRO_DATABASE_URL`) takes
the variable's value when the file leaves the key out or empty.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from config.rules import Invalid, type_name
from config.sections import (
    SECTION_CLASSES,
    ActorsSettings,
    DatabaseSettings,
    LightningSettings,
    MostroSettings,
    Settings,
    spec_of,
)

TEMPLATE_PATH = Path(__file__).resolve().parent / "settings.toml"
SETTINGS_PATH_ENV = "MOSTRO_SETTINGS"


@dataclass(frozen=True)
class Problem:
    key: str
    reason: str

    def __str__(self) -> str:
        return f"{self.key}: {self.reason}"


class ConfigError(Exception):
    """The settings cannot be used; `str()` lists every problem, one per line."""

    def __init__(self, problems: list[Problem] | tuple[Problem, ...]) -> None:
        self.problems = tuple(problems)
        super().__init__(self.problems)

    def __str__(self) -> str:
        return "\n".join(str(problem) for problem in self.problems)


def _did_you_mean(word: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(word, candidates, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _section_values(
    section_name: str, section_cls: type, table: Mapping[str, Any], env: Mapping[str, str],
    problems: list[Problem], *, required: bool = True,
) -> dict[str, Any]:
    known = [f.name for f in fields(section_cls)]
    for key in table:
        if key not in known:
            problems.append(Problem(f"{section_name}.{key}", "unknown key" + _did_you_mean(key, known)))
    values: dict[str, Any] = {}
    for section_field in fields(section_cls):
        spec = spec_of(section_field)
        label = f"{section_name}.{section_field.name}"
        raw = table.get(section_field.name)
        if spec.env and (raw is None or raw == "") and env.get(spec.env, "").strip():
            raw = env[spec.env]
            label = f"{label} (from ${spec.env})"
        if raw is None or (spec.required and raw == ""):
            if spec.required and required:
                hint = f" (or set ${spec.env})" if spec.env else ""
                problems.append(Problem(label, f"required key is missing{hint}"))
            continue
        parsed = spec.rule.parse(raw)
        if isinstance(parsed, Invalid):
            problems.append(Problem(label, parsed.reason))
        else:
            values[section_field.name] = parsed
    return values


def _cross_checks(sections: Mapping[str, Any]) -> list[Problem]:
    """Rules that involve two keys; run only on sections that parsed cleanly."""
    found = []
    mostro = sections.get("mostro")
    if isinstance(mostro, MostroSettings) and mostro.min_payment_amount > mostro.max_order_amount:
        found.append(Problem(
            "mostro.min_payment_amount",
            f"must not exceed mostro.max_order_amount ({mostro.max_order_amount}), got {mostro.min_payment_amount}",
        ))
    actors = sections.get("actors")
    if isinstance(actors, ActorsSettings):
        database = sections.get("database")
        url = database.url if isinstance(database, DatabaseSettings) else None
        found.extend(Problem(f"actors.{key}", reason) for key, reason in actors.problems(url))
    lightning = sections.get("lightning")
    if isinstance(lightning, LightningSettings) and (
        lightning.escrow_deadline_margin_blocks >= lightning.hold_invoice_cltv_delta
    ):
        found.append(Problem(
            "lightning.escrow_deadline_margin_blocks",
            f"must be smaller than lightning.hold_invoice_cltv_delta ({lightning.hold_invoice_cltv_delta}), "
            f"got {lightning.escrow_deadline_margin_blocks}",
        ))
    return found


# A host that joins a convention and runs neither adapter never reads these sections: their
# required keys (LND credentials, the node's key, relays) may be left out of its file.
WORKER_UNUSED_SECTIONS = ("lightning", "nostr")


def _order_worker(actors: object) -> bool:
    """Whether an `[actors]` table describes an order-only convention member."""
    return (isinstance(actors, Mapping) and bool(str(actors.get("convention_leader", "")).strip())
            and actors.get("nostr") is False and actors.get("lightning") is False)


def parse_settings(source: str | Mapping[str, Any], env: Mapping[str, str] = os.environ) -> Settings:
    """Settings from TOML text or an already-parsed table; raises ConfigError listing every problem."""
    if isinstance(source, str):
        try:
            document: Mapping[str, Any] = tomllib.loads(source)
        except tomllib.TOMLDecodeError as error:
            raise ConfigError([Problem("settings", f"not valid TOML: {error}")]) from None
    else:
        document = source
    problems: list[Problem] = []
    for section_name, table in document.items():
        if section_name not in SECTION_CLASSES:
            problems.append(Problem(
                section_name, "unknown section" + _did_you_mean(section_name, list(SECTION_CLASSES)),
            ))
        elif not isinstance(table, Mapping):
            problems.append(Problem(section_name, f"expected a table [{section_name}], got {type_name(table)}"))
    sections: dict[str, Any] = {}
    worker = _order_worker(document.get("actors"))
    for section_name, section_cls in SECTION_CLASSES.items():
        table = document.get(section_name, {})
        if not isinstance(table, Mapping):
            continue
        before = len(problems)
        values = _section_values(section_name, section_cls, table, env, problems,
                                 required=not (worker and section_name in WORKER_UNUSED_SECTIONS))
        if len(problems) == before:
            sections[section_name] = section_cls(**values)
    problems.extend(_cross_checks(sections))
    if problems:
        raise ConfigError(problems)
    return Settings(**sections)


def load_settings(path: str | os.PathLike[str] | None, env: Mapping[str, str] = os.environ,
                  overrides: Mapping[str, Mapping[str, Any]] | None = None) -> Settings:
    """Settings from a TOML file.

    `path=None` reads `$MOSTRO_SETTINGS` if set, else the shipped template
    (config/settings.toml). A missing or unreadable file is a ConfigError too.
    `overrides` (`{section: {key: value}}`, e.g. from a command-line flag) replace the
    file's keys before anything is checked, so they meet the same rules.
    """
    if path is None:
        path = env.get(SETTINGS_PATH_ENV) or TEMPLATE_PATH
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise ConfigError([Problem(str(path), f"cannot read the settings file: {reason}")]) from None
    try:
        if not overrides:
            return parse_settings(text, env)
        try:
            document = dict(tomllib.loads(text))
        except tomllib.TOMLDecodeError as error:
            raise ConfigError([Problem("settings", f"not valid TOML: {error}")]) from None
        for section_name, values in overrides.items():
            current = document.get(section_name, {})
            document[section_name] = {**(current if isinstance(current, Mapping) else {}), **values}
        return parse_settings(document, env)
    except ConfigError as error:
        if len(error.problems) == 1 and error.problems[0].key == "settings":
            raise ConfigError([Problem(str(path), error.problems[0].reason)]) from None
        raise
