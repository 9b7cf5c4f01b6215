"""Running the guest: one wasmtime instance per operation, under limits, with scoped preopens.

Theory of operation:
1. One `Engine` per process (epoch interruption on, 1 MiB wasm stack). A module is compiled
   once per process and reused from memory; the compiled code is also kept in the user's
   private cache directory, and a later process loads it instead of compiling (~50 ms)
   only once its HMAC verifies (`_cache`, docs/wasm.md).
2. Each call gets a fresh `Store` and instance: a memory cap (`set_limits`), an epoch
   deadline (a ticker thread bumps the epoch every `TICK_SECS` while calls run), and a
   `WasiConfig` whose only preopens are the profile's, read-only unless writable.
3. The request, the reply and `edit`'s round trip go through host functions in the
   `oxydra` import module, with per-call state in a thread-local, so one `Linker` serves
   every thread. The reply is capped as it arrives; the guest stops when refused.
4. A profile names the ops it may run; a mismatch is refused before anything is created.
5. wasmtime's exceptions stop at `WasmSandbox.call`: a deadline trap becomes
   `ToolTimeoutError`, any other trap or exit `ToolError`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import threading
from collections.abc import Callable
from importlib.resources import files
from typing import TYPE_CHECKING, Any

import msgspec

from oxydra.core.errors import MissingExtraError, PolicyError, ToolError, ToolTimeoutError
from oxydra.security.wasm._protocol import GuestReply, Op, decode_reply, encode_request

if TYPE_CHECKING:
    import wasmtime

TICK_SECS = 0.02
MAX_WASM_STACK = 1 << 20
GUEST_PACKAGE = "oxydra.security.wasm"
GUEST_FILE = "guest.wasm"
_RESERVATION = 64 << 20  # WasmLimits' default memory; a larger one moves when it grows
_GUARD = 64 << 10
ENGINE_SETTINGS = (  # what the compiled code depends on: part of the disk cache's key
    f"epoch_interruption=1 max_wasm_stack={MAX_WASM_STACK} "
    f"memory_reservation={_RESERVATION} guard={_GUARD} growth={_GUARD}"
)
Edit = Callable[[bytes], bytes]


class WasmLimits(msgspec.Struct, frozen=True, kw_only=True):
    """What one guest call may use (upstream: 64 MiB, ~10 s, 16 MiB of output)."""

    memory_bytes: int = 64 << 20
    timeout_secs: float = 10.0
    output_bytes: int = (16 << 20) + (64 << 10)
    input_bytes: int = 32 << 20


class Preopen(msgspec.Struct, frozen=True, kw_only=True):
    """A host directory the guest sees at `guest` (read-only unless `writable`)."""

    guest: str
    host: str
    writable: bool


class Profile(msgspec.Struct, frozen=True, kw_only=True):
    """A capability profile: the ops it may run and the directories it sees."""

    name: str
    ops: frozenset[Op]
    preopens: tuple[Preopen, ...]


def wasm_unavailable_reason() -> str | None:
    """Why the WASM sandbox cannot run here (missing extra or guest), or None if it can."""
    if importlib.util.find_spec("wasmtime") is None:
        return str(MissingExtraError("WASM tool isolation", "wasm", "wasmtime"))
    if not files(GUEST_PACKAGE).joinpath(GUEST_FILE).is_file():
        return f"the guest module {GUEST_FILE} is missing from {GUEST_PACKAGE} (run `make wasm`)"
    return None


def guest_module_bytes() -> bytes:
    """The shipped guest (`guest.wasm`, package data, readable from inside the zipapp)."""
    return files(GUEST_PACKAGE).joinpath(GUEST_FILE).read_bytes()


class _CallState:
    """What the host functions of one running call read and write."""

    def __init__(self, request: bytes, limits: WasmLimits, edit: Edit | None) -> None:
        self.pending = request
        self.output = bytearray()
        self.limits = limits
        self.edit = edit
        self.overflow = False
        self.edit_error: BaseException | None = None


class _Ticker:
    """Bumps the engine's epoch every `TICK_SECS` while at least one call is running.

    Between calls the thread finishes its tick and then parks; a call wakes it only when it
    is parked. Calls that follow each other within a tick wake nothing (a thread switch per
    call otherwise), and a tick is never cut short by a call starting.
    """

    def __init__(self, engine: wasmtime.Engine) -> None:
        self.engine = engine
        self.active = 0
        self.parked = False
        self.cond = threading.Condition()
        self.thread: threading.Thread | None = None

    def __enter__(self) -> None:
        with self.cond:
            self.active += 1
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name="oxydra-wasm-epoch")
                self.thread.daemon = True
                self.thread.start()
            elif self.parked:
                self.cond.notify()

    def __exit__(self, *exc: object) -> None:
        with self.cond:
            self.active -= 1

    def _run(self) -> None:
        while True:
            with self.cond:
                if self.active == 0:
                    self.parked = True
                    self.cond.wait_for(lambda: self.active > 0)
                    self.parked = False
                self.cond.wait(TICK_SECS)
            self.engine.increment_epoch()


class _Runtime:
    """The per-process engine, compiled modules, ticker and linker."""

    def __init__(self) -> None:
        import wasmtime

        config = wasmtime.Config()
        config.epoch_interruption = True
        config.max_wasm_stack = MAX_WASM_STACK
        # wasmtime's default reserves 4 GiB of address space plus a 32 MiB guard per linear
        # memory; under the process tier's RLIMIT_AS (`[resources] max_memory_mib`) that fails
        # with ENOMEM. Reserve what a guest may use and check bounds explicitly instead.
        config.memory_reservation = _RESERVATION
        config.memory_guard_size = _GUARD
        config.memory_reservation_for_growth = _GUARD
        self.engine = wasmtime.Engine(config)
        self.ticker = _Ticker(self.engine)
        self.local = threading.local()
        self.modules: dict[str, wasmtime.Module] = {}
        self.lock = threading.Lock()
        self.linker = self._linker()

    def module(self, data: bytes) -> wasmtime.Module:

        key = hashlib.sha256(data).hexdigest()
        with self.lock:
            if key not in self.modules:
                self.modules[key] = self._load_or_compile(data)
            return self.modules[key]

    def _load_or_compile(self, data: bytes) -> wasmtime.Module:
        """The compiled module from the verified disk cache, else compiled and kept there."""
        import wasmtime

        from oxydra.security.wasm import _cache

        name = _cache.entry_name(_wasmtime_build(), ENGINE_SETTINGS, data)
        compiled = _cache.load(name)
        if compiled is not None:
            try:
                return wasmtime.Module.deserialize(self.engine, compiled)
            except wasmtime.WasmtimeError:  # verified but from an engine that differs
                pass
        module = wasmtime.Module(self.engine, data)
        _cache.store(name, bytes(module.serialize()))
        return module

    def _linker(self) -> wasmtime.Linker:
        import wasmtime

        i32 = wasmtime.ValType.i32()
        linker = wasmtime.Linker(self.engine)
        linker.define_wasi()
        table: list[tuple[str, list[wasmtime.ValType], list[wasmtime.ValType], Any]] = [
            ("input_size", [], [i32], self._input_size),
            ("input_read", [i32], [], self._input_read),
            ("output_write", [i32, i32], [i32], self._output_write),
            ("edit", [i32, i32], [i32], self._edit),
        ]
        for name, params, results, func in table:
            ty = wasmtime.FuncType(params, results)
            linker.define_func("oxydra", name, ty, func, access_caller=name != "input_size")
        return linker

    @property
    def state(self) -> _CallState:
        return self.local.state  # type: ignore[no-any-return]

    def _input_size(self) -> int:
        return len(self.state.pending)

    def _input_read(self, caller: wasmtime.Caller, ptr: int) -> None:
        _memory(caller).write(caller, self.state.pending, ptr)

    def _output_write(self, caller: wasmtime.Caller, ptr: int, size: int) -> int:
        state = self.state
        if size < 0 or len(state.output) + size > state.limits.output_bytes:
            state.overflow = True
            return -1
        state.output += _memory(caller).read(caller, ptr, ptr + size)
        return 0

    def _edit(self, caller: wasmtime.Caller, ptr: int, size: int) -> int:
        state = self.state
        if state.edit is None:
            return -1
        try:
            updated = state.edit(bytes(_memory(caller).read(caller, ptr, ptr + size)))
        except Exception as exc:  # re-raised by the caller once the guest has stopped
            state.edit_error = exc
            return -1
        if len(updated) > state.limits.input_bytes:
            state.edit_error = ToolError("the edited file is larger than the sandbox accepts")
            return -1
        state.pending = updated
        return len(updated)


def _memory(caller: wasmtime.Caller) -> wasmtime.Memory:
    import wasmtime

    memory = caller.get("memory")
    if not isinstance(memory, wasmtime.Memory):
        raise ToolError("the guest exports no memory")
    return memory


_RUNTIME: list[_Runtime] = []
_RUNTIME_LOCK = threading.Lock()


def _runtime() -> _Runtime:
    """The one runtime of the process (rule 1). Created under a lock: the module is compiled
    on one thread while the model streams a call's arguments and instantiated on another,
    and two engines would make wasmtime refuse ("cross-`Engine` instantiation")."""
    with _RUNTIME_LOCK:
        if not _RUNTIME:
            _RUNTIME.append(_Runtime())
        return _RUNTIME[0]


class WasmSandbox:
    """Runs guest operations, each in a fresh instance limited to one profile.

    Args:
        module: the guest's bytes (tests pass their own); the shipped guest by default.
        limits: memory, time and size caps for every call.
    """

    def __init__(self, *, module: bytes | None = None, limits: WasmLimits | None = None) -> None:
        if importlib.util.find_spec("wasmtime") is None:
            raise MissingExtraError("WASM tool isolation", "wasm", "wasmtime")
        reason = wasm_unavailable_reason() if module is None else None
        if reason is not None:
            raise ToolError(reason)
        self.module_bytes = module if module is not None else guest_module_bytes()
        self.limits = limits or WasmLimits()
        self._module: wasmtime.Module | None = None

    def warm(self) -> None:
        """Create the engine and compile the module now rather than on the first call."""
        self._compiled()

    def _compiled(self) -> wasmtime.Module:
        if self._module is None:  # the runtime's lock makes racing threads share one module
            self._module = _runtime().module(self.module_bytes)
        return self._module

    def call(
        self, profile: Profile, op: Op, fields: list[bytes], *, edit: Edit | None = None
    ) -> GuestReply:
        """Run `op` in a new instance that sees only `profile`'s preopens.

        Raises:
            PolicyError: the profile does not allow `op`.
            ToolTimeoutError: the guest ran past `limits.timeout_secs`.
            ToolError: the request is too large, the guest trapped or broke the framing.
        """
        if op not in profile.ops:
            raise PolicyError(f"the {profile.name} profile does not allow {op.name.lower()}")
        request = encode_request(op, fields)
        if len(request) > self.limits.input_bytes:
            raise ToolError(f"the request is larger than the sandbox's {self.limits.input_bytes}")
        state = _CallState(request, self.limits, edit)
        self._run(profile, state)
        if state.edit_error is not None:
            raise state.edit_error
        if state.overflow:
            raise ToolError(f"the result is larger than {self.limits.output_bytes} bytes")
        return decode_reply(bytes(state.output))

    def _run(self, profile: Profile, state: _CallState) -> None:
        import wasmtime

        runtime = _runtime()
        module = self._compiled()
        store = self._store(runtime, profile)
        runtime.local.state = state
        try:
            with runtime.ticker:
                instance = runtime.linker.instantiate(store, module)
                start = instance.exports(store)["_start"]
                assert isinstance(start, wasmtime.Func)
                start(store)
        except wasmtime.ExitTrap as exc:
            if not state.overflow and exc.code != 0:
                raise ToolError(f"the sandboxed tool exited with status {exc.code}") from exc
        except wasmtime.Trap as exc:
            raise _translate_trap(exc, self.limits) from exc
        except wasmtime.WasmtimeError as exc:
            raise ToolError(f"the sandbox failed: {exc}") from exc
        finally:
            runtime.local.state = None
            store.close()

    def _store(self, runtime: _Runtime, profile: Profile) -> wasmtime.Store:
        import wasmtime

        store = wasmtime.Store(runtime.engine)
        store.set_limits(memory_size=self.limits.memory_bytes, instances=1, memories=1)
        store.set_epoch_deadline(max(1, round(self.limits.timeout_secs / TICK_SECS)))
        wasi = wasmtime.WasiConfig()
        for preopen in profile.preopens:
            try:
                wasi.preopen_dir(preopen.host, preopen.guest, preopen.writable)
            except wasmtime.WasmtimeError as exc:
                store.close()
                raise ToolError(f"{preopen.guest} is not available") from exc
        store.set_wasi(wasi)
        return store


def _translate_trap(exc: wasmtime.Trap, limits: WasmLimits) -> ToolError:
    import wasmtime

    if exc.trap_code == wasmtime.TrapCode.INTERRUPT:
        return ToolTimeoutError(f"the sandboxed tool ran past its {limits.timeout_secs:g} s limit")
    if exc.trap_code == wasmtime.TrapCode.STACK_OVERFLOW:
        return ToolError("the sandboxed tool overflowed its stack")
    return ToolError(f"the sandboxed tool crashed: {exc.message.splitlines()[0]}")


def _wasmtime_build() -> str:
    """Which wasmtime this is, for the cache's key: its native library's path, size and
    mtime (the package has no version attribute, and reading its metadata costs more)."""
    import os

    import wasmtime

    folder = os.path.dirname(wasmtime.__file__)
    for dirpath, _dirs, names in os.walk(folder):
        for name in names:
            if name.startswith("_libwasmtime"):
                info = os.stat(os.path.join(dirpath, name))
                return f"{dirpath}/{name}:{info.st_size}:{info.st_mtime_ns}"
    return folder
