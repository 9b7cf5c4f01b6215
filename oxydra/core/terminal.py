"""Text from the model or a tool made safe to draw on a terminal.

Model and tool text is attacker-controlled (a fetched page, a file, a prompt injection), and a
terminal obeys what it is sent: OSC 52 writes the clipboard, OSC 0/2 set the window title,
CSI sequences clear the screen or move the cursor to overwrite what the user read, DCS and
APC strings reach terminal extensions. `terminal_safe` removes every escape sequence whole
(CSI, OSC/DCS/SOS/PM/APC strings up to their terminator, two-byte escapes), every other C0
and C1 control, DEL and the Unicode bidi overrides that reorder what is shown; newlines and
tabs stay, CR LF becomes LF. The output holds no ESC at all, so pieces sanitised one by one
cannot join into a sequence. One regex pass with possessive quantifiers: linear time.
`TerminalStream` does the same for streamed text, holding back an escape sequence cut by a
chunk boundary so its tail is not shown as text.
"""

from __future__ import annotations

import re

_SEQUENCE = re.compile(
    r"\x1b\[[0-?]*+[ -/]*+[@-~]"  # CSI: parameters, intermediates, final byte
    r"|\x1b[\]PX^_][^\x07\x1b\x9c]*+(?:\x07|\x1b\\|\x9c)"  # OSC, DCS, SOS, PM, APC strings
    r"|\x1b[ -/]*+[0-OQ-WYZ\\`-~]"  # other escapes (charset, ESC c reset; not [ ] P X ^ _)
    r"|[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]"  # lone controls, bidi
)
MAX_HOLD = 4096  # an unfinished sequence longer than this is cut, not waited for


def terminal_safe(text: str) -> str:
    """`text` with escape sequences and control characters removed (newlines and tabs kept)."""
    if text.isprintable():
        return text
    return _SEQUENCE.sub("", text)


class TerminalStream:
    """`terminal_safe` for a stream: `feed` each chunk, `flush` at the end."""

    def __init__(self) -> None:
        self._held = ""

    def feed(self, chunk: str) -> str:
        """The safe text of everything fed so far, minus a trailing unfinished sequence."""
        text = self._held + chunk
        hold = _unfinished_start(text)
        self._held = text[hold:]
        return terminal_safe(text[:hold])

    def flush(self) -> str:
        """Whatever is still held, made safe."""
        held, self._held = self._held, ""
        return terminal_safe(held)


# A sequence that has started and could still finish: what a stream must hold back.
_UNFINISHED = re.compile(r"\x1b(?:\[[0-?]*+[ -/]*+|[\]PX^_][^\x07\x1b\x9c]*+|[ -/]*+)")


def _unfinished_start(text: str) -> int:
    """Where a trailing unfinished sequence starts (at most `MAX_HOLD` back), else the end.

    Two candidates only, so this stays linear: the last ESC, and when the text ends in ESC
    (perhaps the first half of a string terminator) the ESC that opened that string.
    """
    end = len(text)
    floor = max(0, end - MAX_HOLD)
    last = text.rfind("\x1b", floor)
    if last == -1:
        return end
    if last == end - 1:
        opener = text.rfind("\x1b", floor, last)
        if (
            opener != -1
            and text[opener + 1] in "]PX^_"
            and _UNFINISHED.fullmatch(text, opener, last)
        ):
            return opener
    return last if _UNFINISHED.fullmatch(text, last) else end
