"""Ready-made, validated settings for tests and local experiments: the template plus overrides.

`example_settings(anti_abuse_bond={"enabled": True})` gives the shipped
template's values with those keys changed, checked by the same loader as a
real file. The node key is NIP-19's published example key: public to the
world, so only for tests and devnet, never for a node holding real funds.
Reads only the template file; no environment.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from typing import Any

from config.loader import TEMPLATE_PATH, parse_settings
from config.sections import Settings

# NIP-19's example key pair (publicly known; tests and devnet only).
EXAMPLE_NSEC = "nsec1vl029mgpspedva04g90vltkh6fvh240zqtv9k0t9af8935ke9laqsnlfe5"
EXAMPLE_PUBKEY_HEX = "7e7e9c42a91bfef19fa929e5fda1b72e0ebc1a4c1141673e2794234d86addf4e"


def example_settings(**overrides: Mapping[str, Any]) -> Settings:
    """The template's settings with `section={key: value}` overrides; raises ConfigError if invalid."""
    document = tomllib.loads(TEMPLATE_PATH.read_text(encoding="utf-8"))
    for section_name, values in overrides.items():
        document[section_name] = {**document.get(section_name, {}), **values}
    return parse_settings(document, env={"MOSTRO_NSEC_PRIVKEY": EXAMPLE_NSEC})
