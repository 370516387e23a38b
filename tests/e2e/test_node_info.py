"""The node announces itself: kind-38385 info with the bond policy, and kind-0 metadata."""

from __future__ import annotations

from collections.abc import Callable

from tests.conftest import wait_until
from tests.e2e.conftest import Stack


def _tags(event: dict) -> dict[str, list[str]]:
    return {tag[0]: tag[1:] for tag in event["tags"]}


def test_info_and_metadata_events_are_published(stack_factory: Callable[..., Stack]) -> None:
    stack = stack_factory(mostro={"name": "devnode", "about": "a test node"},
                          anti_abuse_bond={"enabled": True, "amount_pct": 0.02})
    node = stack.node_pubkey

    def info() -> list[dict]:
        stack.pump()
        return stack.relay.query([{"kinds": [38385], "authors": [node]}], timeout=2.0)

    # Addressable (d = node key): relays keep the newest revision, or both on a same-second tie.
    event = max(wait_until(info, timeout=15), key=lambda e: e["created_at"])
    tags = _tags(event)
    assert tags["d"] == [node]
    assert tags["protocol_version"] == ["2"]
    assert tags["bond_enabled"] == ["true"]
    assert tags["bond_amount_pct"] == ["0.02"]
    assert tags["lnd_node_pubkey"] == [stack.lnsim.mostro.pubkey]
    assert tags["z"] == ["info"]
    metadata = max(stack.relay.query([{"kinds": [0], "authors": [node]}]),
                   key=lambda e: e["created_at"])
    assert '"name":"devnode"' in metadata["content"]
