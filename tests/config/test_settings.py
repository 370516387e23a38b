"""Settings loading and validation: the template, defaults, every-problem-at-once errors, secrets."""

from __future__ import annotations

import json
import pickle
import re
import tomllib
from dataclasses import FrozenInstanceError, asdict, fields
from pathlib import Path

import pytest

import config
from config.reference import render_reference
from config.sections import SECTION_CLASSES

DATA = Path(__file__).resolve().parent / "data"
NSEC = "nsec1vl029mgpspedva04g90vltkh6fvh240zqtv9k0t9af8935ke9laqsnlfe5"
SECRET_HEX = "67dea2ed018072d675f5415ecfaed7d2597555e202d85b3d65ea4e58d2d92ffa"
PUBKEY_HEX = "7e7e9c42a91bfef19fa929e5fda1b72e0ebc1a4c1141673e2794234d86addf4e"
BAD_CASES = json.loads((DATA / "bad_settings.json").read_text())["cases"]


def _problems(error: config.ConfigError) -> dict[str, str]:
    """key → message, from the error's text (the form an operator reads)."""
    lines = str(error).splitlines()
    assert len(lines) == len(error.problems)
    parsed = {}
    for line in lines:
        key, _, message = line.partition(": ")
        assert key not in parsed, f"{key} reported twice"
        parsed[key] = message
    return parsed


def test_template_validates_with_the_secret_from_the_environment() -> None:
    settings = config.load_settings(config.TEMPLATE_PATH, env={"MOSTRO_NSEC_PRIVKEY": NSEC})
    assert settings.nostr.secret_key_hex() == SECRET_HEX
    assert settings.nostr.public_key_hex() == PUBKEY_HEX
    assert settings.anti_abuse_bond.enabled is False
    assert settings.price.fixed_prices()["USD"] == 100000.0


def test_template_without_a_secret_reports_only_that() -> None:
    with pytest.raises(config.ConfigError) as caught:
        config.load_settings(config.TEMPLATE_PATH, env={})
    assert _problems(caught.value) == {
        "nostr.nsec_privkey": "required key is missing (or set $MOSTRO_NSEC_PRIVKEY)"
    }


def test_none_path_reads_mostro_settings_or_the_template(tmp_path: Path, minimal_toml: str) -> None:
    assert config.load_settings(None, env={"MOSTRO_NSEC_PRIVKEY": NSEC}).actors.admin_port == 1900
    own = tmp_path / "own.toml"
    own.write_text(minimal_toml + "[actors]\nadmin_port = 2901\n")
    assert config.load_settings(None, env={"MOSTRO_SETTINGS": str(own)}).actors.admin_port == 2901


def test_template_documents_every_key_with_a_comment() -> None:
    text = config.TEMPLATE_PATH.read_text()
    lines = text.splitlines()
    for section_name, section_cls in SECTION_CLASSES.items():
        assert f"[{section_name}]" in lines, f"template lacks [{section_name}]"
        for section_field in fields(section_cls):
            key_line = re.compile(rf"^#? ?{section_field.name} = ")
            matches = [i for i, line in enumerate(lines) if key_line.match(line)]
            assert matches, f"template lacks {section_name}.{section_field.name}"
            # the line above the key (or a commented example) is a comment
            assert lines[matches[0] - 1].startswith("#"), f"{section_field.name} has no comment"


def test_template_values_equal_the_defaults() -> None:
    """The template shows the defaults, so deleting a line never changes behaviour."""
    document = tomllib.loads(config.TEMPLATE_PATH.read_text())
    minimal = tomllib.loads((DATA / "minimal.toml").read_text())
    defaults = config.parse_settings(minimal, env={})
    templated = config.load_settings(config.TEMPLATE_PATH, env={"MOSTRO_NSEC_PRIVKEY": NSEC})
    for section_name in ("mostro", "expiration", "anti_abuse_bond", "actors", "logging", "database"):
        assert getattr(templated, section_name) == getattr(defaults, section_name), section_name
    assert set(document) == set(SECTION_CLASSES)


def test_reference_is_generated_from_the_schema() -> None:
    checked_in = (Path(config.__file__).resolve().parent / "REFERENCE.md").read_text()
    assert checked_in == render_reference(), "run: python -m config.reference > config/REFERENCE.md"


def test_defaults_are_the_rust_template_values(minimal_toml: str) -> None:
    expected = json.loads((DATA / "expected_defaults.json").read_text())
    settings = config.parse_settings(minimal_toml, env={})
    for section_name, values in expected.items():
        if section_name == "about":
            continue
        section = asdict(getattr(settings, section_name))
        for key, value in values.items():
            actual = section[key]
            if isinstance(actual, tuple):
                actual = [list(item) if isinstance(item, tuple) else item for item in actual]
            assert actual == value, f"{section_name}.{key}"


@pytest.mark.parametrize("case", BAD_CASES, ids=lambda case: case["name"])
def test_every_bad_key_is_reported_in_one_error(case: dict, minimal_toml: str) -> None:
    text = case["toml"] if case.get("replace_minimal") else minimal_toml + case["toml"]
    with pytest.raises(config.ConfigError) as caught:
        config.parse_settings(text, env={})
    reported = _problems(caught.value)
    assert set(reported) == set(case["problems"])
    for key, fragment in case["problems"].items():
        assert fragment in reported[key], f"{key}: {reported[key]!r}"


def test_invalid_toml_is_one_problem_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[mostro\nfee = 0\n")
    with pytest.raises(config.ConfigError) as caught:
        config.load_settings(path, env={})
    assert len(caught.value.problems) == 1
    assert str(caught.value).startswith(f"{path}: not valid TOML")


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(config.ConfigError) as caught:
        config.load_settings(path, env={})
    assert str(caught.value) == f"{path}: cannot read the settings file: No such file or directory"


@pytest.mark.parametrize("spelling", [NSEC, SECRET_HEX, SECRET_HEX.upper(), NSEC.upper()])
def test_secret_key_spellings(spelling: str, minimal_toml: str) -> None:
    text = minimal_toml.replace(SECRET_HEX, spelling)
    assert config.parse_settings(text, env={}).nostr.secret_key_hex() == SECRET_HEX


def test_secret_from_environment_only_when_the_file_has_none(minimal_toml: str) -> None:
    other = "1" * 64
    from_file = config.parse_settings(minimal_toml, env={"MOSTRO_NSEC_PRIVKEY": other})
    assert from_file.nostr.secret_key_hex() == SECRET_HEX
    emptied = minimal_toml.replace(SECRET_HEX, "")
    from_env = config.parse_settings(emptied, env={"MOSTRO_NSEC_PRIVKEY": other})
    assert from_env.nostr.secret_key_hex() == other


def test_a_bad_secret_from_the_environment_is_named_and_not_shown(minimal_toml: str) -> None:
    bad = "ab" * 31 + "zz"
    emptied = minimal_toml.replace(SECRET_HEX, "")
    with pytest.raises(config.ConfigError) as caught:
        config.parse_settings(emptied, env={"MOSTRO_NSEC_PRIVKEY": bad})
    assert _problems(caught.value) == {
        "nostr.nsec_privkey (from $MOSTRO_NSEC_PRIVKEY)": "must be an nsec1… key or 64 hex digits"
    }
    assert bad not in str(caught.value) and bad not in repr(caught.value)


def test_secret_never_printed(minimal_toml: str) -> None:
    settings = config.parse_settings(minimal_toml.replace(SECRET_HEX, NSEC), env={})
    for text in (repr(settings), str(settings), settings.describe(), repr(settings.nostr.nsec_privkey)):
        assert SECRET_HEX not in text.lower()
        assert NSEC not in text
    assert PUBKEY_HEX in settings.describe()


def test_database_url_from_environment_and_password_redacted(minimal_toml: str) -> None:
    url = "postgresql://mostro:s3cret-pw@db.internal:5433/mostro"
    settings = config.parse_settings(minimal_toml, env={"MOSTRO_DATABASE_URL": url})
    assert settings.database.url == url
    assert "s3cret-pw" not in settings.describe()
    assert "database.url = postgresql://mostro:***@db.internal:5433/mostro" in settings.describe()


def test_settings_are_frozen_and_picklable(minimal_toml: str) -> None:
    settings = config.parse_settings(minimal_toml, env={})
    restored = pickle.loads(pickle.dumps(settings))
    assert restored == settings
    assert restored.nostr.secret_key_hex() == SECRET_HEX
    with pytest.raises(FrozenInstanceError):
        settings.mostro.fee = 0.5  # type: ignore[misc]
    error = config.ConfigError([config.Problem("mostro.fee", "bad")])
    assert str(pickle.loads(pickle.dumps(error))) == "mostro.fee: bad"


def test_derived_values(minimal_toml: str) -> None:
    text = minimal_toml.replace('"127.0.0.1:10009"', '"https://lnd.example:10009"') + (
        "[mostro]\npow = 4\n[anti_abuse_bond]\nenabled = true\napply_to = \"both\"\n[logging]\nlevel = \"debug\"\n"
    )
    settings = config.parse_settings(text, env={})
    assert settings.lightning.grpc_target() == "lnd.example:10009"
    assert settings.mostro.first_contact_pow() == 4
    assert settings.anti_abuse_bond.applies_to_takers() and settings.anti_abuse_bond.applies_to_makers()
    assert settings.logging.level == "DEBUG"


def test_parse_settings_accepts_a_dict(minimal_toml: str) -> None:
    document = tomllib.loads(minimal_toml)
    document["anti_abuse_bond"] = {"enabled": True, "amount_pct": 0}
    settings = config.parse_settings(document, env={})
    assert settings.anti_abuse_bond.enabled is True
    assert settings.anti_abuse_bond.amount_pct == 0.0


def test_example_settings_apply_validated_overrides() -> None:
    settings = config.example_settings(
        anti_abuse_bond={"enabled": True, "amount_pct": 0.02}, actors={"base": "simpleSystemBase"},
    )
    assert settings.anti_abuse_bond.enabled and settings.anti_abuse_bond.amount_pct == 0.02
    assert settings.anti_abuse_bond.base_amount_sats == 1000  # untouched keys keep the template value
    assert settings.actors.base == "simpleSystemBase"
    assert settings.nostr.public_key_hex() == PUBKEY_HEX
    assert hash(settings) == hash(config.example_settings(
        anti_abuse_bond={"enabled": True, "amount_pct": 0.02}, actors={"base": "simpleSystemBase"}))
    with pytest.raises(config.ConfigError) as caught:
        config.example_settings(mostro={"fee": -1, "colour": "red"})
    assert set(_problems(caught.value)) == {"mostro.fee", "mostro.colour"}


def test_readme_carries_the_current_reference() -> None:
    from config.reference import readme_block

    readme = (Path(config.__file__).resolve().parents[1] / "README.md").read_text()
    assert readme_block() in readme, "run: python -m config.reference --readme README.md"
