"""Settings of the daemon: the TOML template, its schema, and the validating loader.

Import from here: `load_settings`, `parse_settings`, `ConfigError`,
`Settings` and the section classes. Nothing here opens sockets or databases.
"""

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
    "load_settings",
    "parse_settings",
]
