"""Settings of the daemon: the TOML template, its schema, and the validating loader.

Import from here: `load_settings`, `parse_settings`, `ConfigError`,
`Settings` and the section classes; `example_settings(**overrides)` for
tests. Nothing here opens sockets or databases.
"""

from config.examples import example_settings
from config.loader import TEMPLATE_PATH, ConfigError, Problem, load_settings, parse_settings
from config.secret_key import NostrSecretKey
from config.sections import (
    ActorsSettings,
    AntiAbuseBondSettings,
    DatabaseSettings,
    ExpirationSettings,
    LightningSettings,
    LoggingSettings,
    MostroSettings,
    NostrSettings,
    PriceSettings,
    Settings,
)

__all__ = [
    "TEMPLATE_PATH",
    "ActorsSettings",
    "AntiAbuseBondSettings",
    "ConfigError",
    "DatabaseSettings",
    "ExpirationSettings",
    "LightningSettings",
    "LoggingSettings",
    "MostroSettings",
    "NostrSecretKey",
    "NostrSettings",
    "PriceSettings",
    "Problem",
    "Settings",
    "example_settings",
    "load_settings",
    "parse_settings",
]
