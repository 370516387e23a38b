"""The scale-out keys of [actors]: defaults, the leader address, capabilities (bad values: data/bad_settings.json)."""

from __future__ import annotations

import config

SHARED_DATABASE = '[database]\nurl = "postgresql://mostro@db.internal/mostro"\n'


def _actors(minimal_toml: str, extra: str = ""):  # type: ignore[no-untyped-def]
    text = minimal_toml + SHARED_DATABASE + "[actors]\n" + extra
    return config.parse_settings(text, env={}).actors


def test_defaults_make_a_standalone_host_with_every_capability(minimal_toml: str) -> None:
    actors = _actors(minimal_toml)
    assert actors.convention_leader == "" and actors.joins_convention() is False
    assert actors.convention_address() is None
    assert actors.host_capabilities() == {"orders": True, "nostr": True, "lightning": True}


def test_a_member_names_the_leader_and_its_own_capabilities(minimal_toml: str) -> None:
    actors = _actors(minimal_toml, 'convention_leader = " 10.0.0.5:1900 "\nnostr = false\nlightning = false\n')
    assert actors.joins_convention() is True
    assert actors.convention_address() == ("10.0.0.5", 1900)
    assert actors.host_capabilities() == {"orders": True, "nostr": False, "lightning": False}


def test_ipv6_leader_address(minimal_toml: str) -> None:
    actors = _actors(minimal_toml, 'convention_leader = "[fd00::5]:1901"\n')
    assert actors.convention_address() == ("fd00::5", 1901)


def test_a_leader_may_leave_order_actors_to_members(minimal_toml: str) -> None:
    actors = _actors(minimal_toml, "orders = false\n")
    assert actors.host_capabilities()["orders"] is False and actors.problems() == []


def test_a_standalone_host_keeps_its_sqlite_file(minimal_toml: str) -> None:
    settings = config.parse_settings(minimal_toml + '[database]\nurl = "sqlite://mostro.db"\n', env={})
    assert settings.actors.spans_hosts() is False and settings.actors.problems(settings.database.url) == []


def test_a_member_on_the_leaders_machine_may_share_its_sqlite_file(minimal_toml: str) -> None:
    text = minimal_toml + '[database]\nurl = "sqlite:///srv/mostro.db"\n[actors]\nconvention_leader = "127.0.0.1:1901"\n'
    assert config.parse_settings(text, env={}).actors.convention_address() == ("127.0.0.1", 1901)
