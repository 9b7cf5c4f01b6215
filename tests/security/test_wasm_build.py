"""The committed guest.wasm is what `make wasm` builds from guest.c (when the toolchain is here).

CI machines without clang and wasi-libc skip this and use the committed file; a machine
with a different clang than the one that built it skips too, since another compiler
version may emit different (equally valid) bytes. docs/wasm.md names the toolchain.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from oxydra.security.wasm import guest_module_bytes

ROOT = Path(__file__).resolve().parents[2]
TOOLCHAIN = "Debian clang version 14.0.6"


def _toolchain_skip_reason() -> str | None:
    clang = shutil.which("clang")
    if clang is None or shutil.which("make") is None:
        return "clang or make is not installed"
    if not Path("/usr/include/wasm32-wasi/stdio.h").is_file():
        return "wasi-libc is not installed"
    version = subprocess.run([clang, "--version"], capture_output=True, text=True).stdout
    if TOOLCHAIN not in version:
        return f"guest.wasm was built with {TOOLCHAIN}; this machine has another clang"
    return None


def test_the_shipped_guest_is_a_small_wasm_module() -> None:
    data = guest_module_bytes()
    assert data[:4] == b"\x00asm" and len(data) < 128 * 1024


@pytest.mark.skipif(_toolchain_skip_reason() is not None, reason=str(_toolchain_skip_reason()))
def test_make_wasm_rebuilds_the_committed_guest_byte_for_byte(tmp_path: Path) -> None:
    out = tmp_path / "guest.wasm"
    subprocess.run(
        ["make", "-s", "wasm", f"WASM_OUT={out}"], cwd=ROOT, check=True, capture_output=True
    )
    assert out.read_bytes() == (ROOT / "oxydra/security/wasm/guest.wasm").read_bytes()
