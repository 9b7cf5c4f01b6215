"""WASM tool isolation: the file tools' bodies run in a WASI guest under wasmtime.

`WasmWorkspace` has the jail's file API; `WasmSandbox` runs one guest operation under a
capability `Profile` and `WasmLimits`. wasmtime (the `wasm` extra) is imported only when a
guest first runs; `wasm_unavailable_reason()` says, without importing it, whether it can.
See docs/wasm.md.
"""

from oxydra.security.wasm._protocol import (
    GuestReply,
    Op,
    decode_reply,
    encode_request,
    read_u64,
    u64,
)
from oxydra.security.wasm._runtime import (
    Preopen,
    Profile,
    WasmLimits,
    WasmSandbox,
    guest_module_bytes,
    wasm_unavailable_reason,
)
from oxydra.security.wasm._workspace import READ_OPS, WRITE_OPS, WasmWorkspace

__all__ = [
    "GuestReply",
    "Op",
    "Preopen",
    "Profile",
    "READ_OPS",
    "WRITE_OPS",
    "WasmLimits",
    "WasmSandbox",
    "WasmWorkspace",
    "decode_reply",
    "encode_request",
    "guest_module_bytes",
    "read_u64",
    "u64",
    "wasm_unavailable_reason",
]
