"""A known secret re-encoded the ways a shell can print it (issue 12 item 6).

`reencodings(secret)` gives (name, text) pairs, each text a realistic tool output holding
the secret in one spelling; the spellings are made with the real tools when they are
installed (`base64`, `base32`, `rev`, `fold`, `xxd`, `hexdump`), else in Python.
Used by tests/security/test_scrub_reencoded.py and bench/bench_security.py.
"""

from __future__ import annotations

import base64
import binascii
import shutil
import subprocess
from collections.abc import Callable
from urllib.parse import quote

SECRET = "sk-ant-api03-" + "Xy7Qp2Lm9Rt4Vw8Zk3Nb6Hc1Jd5Fg0Ts" * 3


def _tool(argv: list[str], data: str, fallback: Callable[[str], str]) -> str:
    if shutil.which(argv[0]) is None:
        return fallback(data)
    out = subprocess.run(argv, input=data.encode(), capture_output=True, check=True, timeout=10)
    return out.stdout.decode()


def _xxd(data: str) -> str:
    raw = data.encode()
    lines = []
    for offset in range(0, len(raw), 16):
        chunk = raw[offset : offset + 16]
        groups = " ".join(chunk[i : i + 2].hex() for i in range(0, len(chunk), 2))
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{offset:08x}: {groups:<39}  {text}")
    return "\n".join(lines) + "\n"


def reencodings(secret: str = SECRET) -> list[tuple[str, str]]:
    """(encoding, tool output) for each spelling of `secret` item 6 names, and a few more."""
    raw = secret.encode()
    line = secret + "\n"
    cases = [
        ("plain", f"KEY={secret}"),
        (
            "base64-wrapped-76",
            _tool(["base64"], line, lambda s: base64.encodebytes(s.encode()).decode()),
        ),
        ("base64-unwrapped", base64.b64encode(raw).decode()),
        ("rev", _tool(["rev"], line, lambda s: s[::-1])),
        ("base32", _tool(["base32"], line, lambda s: base64.b32encode(s.encode()).decode())),
        ("hex-upper", binascii.hexlify(raw).decode().upper()),
        ("hex-lower", binascii.hexlify(raw).decode()),
        ("xxd", _tool(["xxd"], line, _xxd)),
        ("hexdump-C", _tool(["hexdump", "-C"], line, _xxd)),
        ("spaced", " ".join(secret)),
        ("zero-width", "\u200b".join(secret)),
        ("ansi-codes", "".join(f"\x1b[3{i % 8}m{c}" for i, c in enumerate(secret)) + "\x1b[0m"),
        ("unicode-escapes", "".join(f"\\u{ord(c):04x}" for c in secret)),
        (
            "mixed-escapes",
            secret[:5] + "".join(f"\\x{ord(c):02x}" for c in secret[5:12]) + secret[12:],
        ),
        (
            "fold-10",
            _tool(
                ["fold", "-w", "10"],
                line,
                lambda s: "\n".join(s[i : i + 10] for i in range(0, len(s), 10)),
            ),
        ),
        ("url-double", quote(quote(secret, safe=""), safe="")),
        ("html-entities", "".join(f"&#{ord(c)};" for c in secret)),
        ("json-in-json", '{"out": "{\\"k\\": \\"' + secret + '\\"}"}'),
    ]
    return cases
