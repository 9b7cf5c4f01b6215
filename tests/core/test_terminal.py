"""Terminal-safe text: every control sequence removed whole, newlines and tabs kept, linear."""

from __future__ import annotations

import time

import pytest

from oxydra.core.terminal import MAX_HOLD, TerminalStream, terminal_safe

ATTACKS = [
    ("osc52-clipboard-bel", "a\x1b]52;c;cm0gLXJmIH4=\x07b", "ab"),
    ("osc52-clipboard-st", "a\x1b]52;c;cm0gLXJmIH4=\x1b\\b", "ab"),
    ("osc52-8bit-st", "a\x1b]52;c;eA==\x9cb", "ab"),
    ("window-title", "a\x1b]0;owned\x07b\x1b]2;owned\x07c", "abc"),
    ("hyperlink", "\x1b]8;;http://evil/\x1b\\click\x1b]8;;\x1b\\", "click"),
    ("clear-screen-home", "a\x1b[2J\x1b[Hb\x1b[3J", "ab"),
    ("cursor-up-overwrite", "safe\x1b[1A\x1b[2Kevil", "safeevil"),
    ("reset-terminal", "a\x1bcb", "ab"),
    ("charset-switch", "a\x1b(0b\x1b(B", "ab"),
    ("dcs-query", "a\x1bP+q544e\x1b\\b", "ab"),
    ("apc-string", "a\x1b_payload\x1b\\b", "ab"),
    ("c1-csi", "a\x9b2Jb", "a2Jb"),
    ("c1-osc", "a\x9d0;t\x07b", "a0;tb"),
    ("carriage-return-overwrite", "rm -rf /\rls", "rm -rf /ls"),
    ("backspace-overwrite", "abc\b\b\bxyz", "abcxyz"),
    ("bell-and-nul", "a\x07\x00b\x7f", "ab"),
    ("bidi-override", "user\u202eexe.txt", "userexe.txt"),
    ("unterminated-csi", "a\x1b[31", "a[31"),
    ("lone-esc-at-end", "a\x1b", "a"),
]


@pytest.mark.parametrize(("name", "text", "safe"), ATTACKS, ids=[a[0] for a in ATTACKS])
def test_attack_is_removed(name: str, text: str, safe: str) -> None:
    assert terminal_safe(text) == safe


def test_text_layout_survives() -> None:
    text = "line one\n\tindented\r\nwindows line\nunicode é ✓ 中文"
    assert terminal_safe(text) == text.replace("\r\n", "\n")


@pytest.mark.parametrize(("name", "text", "safe"), ATTACKS, ids=[a[0] for a in ATTACKS])
def test_a_stream_split_anywhere_gives_the_whole_text_result(
    name: str, text: str, safe: str
) -> None:
    for cut in range(len(text) + 1):
        stream = TerminalStream()
        shown = stream.feed(text[:cut]) + stream.feed(text[cut:]) + stream.flush()
        assert "\x1b" not in shown and "\x07" not in shown
        if name != "unterminated-csi":  # an unfinished sequence may lose its ESC either way
            assert shown == safe, cut


def test_a_stream_does_not_hold_an_unfinished_sequence_forever() -> None:
    stream = TerminalStream()
    assert stream.feed("a\x1b]52;c;") == "a"
    assert stream.feed("x" * MAX_HOLD) != ""


def test_hostile_megabyte_is_bounded() -> None:
    """Linear: every unterminated string start stops at the next ESC (generous CPU ceiling)."""
    for seed in ("\x1b]", "\x1b[", "\x1bP", "\x1b[0;0;0;", "\x9b", "\x1b]52;c;"):
        text = seed * ((1 << 20) // len(seed))
        began = time.thread_time()
        assert "\x1b" not in terminal_safe(text)
        assert time.thread_time() - began < 5.0, seed
