"""Client websocket frames built for the relay pool's batched writes, read back as RFC 6455
section 5.2 describes them (a reader written here from the RFC, not from the code)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.nostr.ws_frames import client_text_frames


def read_frames(wire: bytes) -> list[tuple[int, bytes, str]]:
    """(first byte, masking key, text) of each frame, checking the mask bit and lengths."""
    frames, at = [], 0
    while at < len(wire):
        first, second = wire[at], wire[at + 1]
        assert second & 0x80, "a client frame must be masked"
        size, at = second & 0x7F, at + 2
        if size == 126:
            size, at = int.from_bytes(wire[at:at + 2], "big"), at + 2
        elif size == 127:
            size, at = int.from_bytes(wire[at:at + 8], "big"), at + 8
        key, at = wire[at:at + 4], at + 4
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(wire[at:at + size]))
        assert len(payload) == size
        frames.append((first, key, payload.decode()))
        at += size
    return frames


def test_every_length_encoding_reads_back() -> None:
    # 7-bit, 16-bit and 64-bit lengths, at and around their limits, and multi-byte characters
    texts = ["", "x" * 125, "y" * 126, "é" * 40_000, "z" * 65_535, "w" * 65_536, '["EVENT",{}]']
    frames = read_frames(client_text_frames(texts))
    assert [text for _, _, text in frames] == texts
    assert {first for first, _, _ in frames} == {0x81}  # final fragment, text opcode


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=300), max_size=8))
def test_any_texts_read_back_in_order(texts: list[str]) -> None:
    assert [text for _, _, text in read_frames(client_text_frames(texts))] == texts


def test_each_frame_has_its_own_masking_key() -> None:
    keys = [key for _, key, _ in read_frames(client_text_frames(["a"] * 64))]
    assert len(set(keys)) > 60  # 64 random 32-bit keys: a repeat is a one-in-millions event
