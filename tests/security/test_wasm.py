"""The WASM sandbox: the jail's cases through the guest, raw escapes refused inside it, limits."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from oxydra.core.errors import PolicyError, ToolError, ToolTimeoutError
from oxydra.security import Workspace, default_opener
from oxydra.security.wasm import (
    READ_OPS,
    WRITE_OPS,
    GuestReply,
    Op,
    Profile,
    WasmLimits,
    WasmSandbox,
    WasmWorkspace,
    u64,
)
from oxydra.security.wasm._runtime import TICK_SECS
from tests.security.cases_jail import JAIL_CASES, MARKS, JailCase, Tree, run_case

wasmtime = pytest.importorskip("wasmtime")

# What WASI answers for a path outside every preopen: no capability, not permitted, or
# (for a name no preopen covers) no such file.
REFUSED = {"EPERM", "ENOTCAPABLE", "ENOENT", "ELOOP"}

SPIN_WAT = """(module (memory (export "memory") 1)
  (func (export "_start") (loop $l (br $l))))"""
CRASH_WAT = """(module (memory (export "memory") 1) (func (export "_start") unreachable))"""
# Grows memory 16 pages at a time until refused, then replies with the final page count.
GROW_WAT = """(module
  (import "oxydra" "output_write" (func $out (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (block $done (loop $l
      (br_if $done (i32.eq (memory.grow (i32.const 16)) (i32.const -1)))
      (br $l)))
    (i32.store8 (i32.const 0) (i32.const 0))
    (i32.store (i32.const 1) (i32.const 8))
    (i64.store (i32.const 5) (i64.extend_i32_u (memory.size)))
    (drop (call $out (i32.const 0) (i32.const 13)))))"""


@pytest.fixture(scope="module")
def sandbox() -> WasmSandbox:
    return WasmSandbox()


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    tree = Tree(tmp_path)
    tree.link("abs_link", tree.outside / "secret.txt")
    tree.link("rel_link", "../../../outside/secret.txt")
    tree.link("cfg", "../.oxydra/agent.toml")
    tree.link("to_vault", "../vault/v.txt")
    tree.link("vdir", "../vault")
    tree.link("outdir", tree.outside / "dir")
    return tree


@pytest.fixture
def files(tree: Tree, sandbox: WasmSandbox) -> WasmWorkspace:
    return WasmWorkspace(Workspace.for_user(tree.ws), sandbox)


def leaked(reply: GuestReply) -> bool:
    return any(mark.encode() in field for field in reply.fields for mark in MARKS)


@pytest.mark.parametrize("case", JAIL_CASES, ids=lambda c: c.id)
def test_jail_case_through_the_guest_gets_its_verdict_and_nothing_escapes(
    case: JailCase, tmp_path: Path, sandbox: WasmSandbox
) -> None:
    outcome = run_case(case, tmp_path, default_opener(), lambda ws: WasmWorkspace(ws, sandbox))
    assert not outcome.escaped, outcome.detail
    assert outcome.matches(case.expect), outcome.detail


class TestEscapesAreRefusedInsideTheGuest:
    """Raw guest calls that skip every host check: only the preopens stand in the way."""

    @pytest.mark.parametrize(
        "path",
        [
            "/shared/../../outside/secret.txt",
            "/shared/../.oxydra/agent.toml",
            "/.oxydra/agent.toml",
            "/vault/../.oxydra/memory.db",
            "/etc/passwd",
            "/proc/self/environ",
            "/shared/abs_link",
            "/shared/rel_link",
            "/shared/cfg",
            "/shared/to_vault",
            "/shared/outdir/secret.txt",
            "{outside}/secret.txt",
            "{ws}/.oxydra/agent.toml",
            "shared/../../outside/secret.txt",
        ],
    )
    def test_reads_outside_a_preopen_fail(
        self, files: WasmWorkspace, tree: Tree, sandbox: WasmSandbox, path: str
    ) -> None:
        raw = path.format(outside=tree.outside, ws=tree.ws).encode()
        reply = sandbox.call(files.profile(READ_OPS), Op.READ, [raw, u64(1 << 20)])
        assert not reply.ok and reply.code in REFUSED, reply
        assert not leaked(reply)

    @pytest.mark.parametrize("path", ["/", "/shared/..", "/shared/outdir", "/.oxydra"])
    @pytest.mark.parametrize("op", [Op.LIST, Op.SEARCH])
    def test_listing_and_searching_outside_fail(
        self, files: WasmWorkspace, sandbox: WasmSandbox, path: str, op: Op
    ) -> None:
        extra = [b"", u64(100), u64(1 << 20)] if op == Op.SEARCH else []
        reply = sandbox.call(files.profile(READ_OPS), op, [path.encode(), *extra])
        assert not leaked(reply)
        assert not reply.ok or reply.fields == ()

    @pytest.mark.parametrize(
        ("op", "path"),
        [
            *[
                (op, path)
                for op in (Op.WRITE, Op.DELETE)
                for path in (
                    "/shared/../../outside/pwn.txt",
                    "/shared/../.oxydra/agent.toml",
                    "/shared/vdir/v.txt",
                    "/shared/outdir/secret.txt",
                    "/vault/v.txt",
                    "/vault/new.txt",
                )
            ],
            (Op.WRITE, "/shared/vdir/new.txt"),
            (Op.WRITE, "/shared/to_vault"),
            (Op.WRITE, "/shared/cfg"),
        ],
    )
    def test_writes_outside_the_writable_preopens_fail(
        self, files: WasmWorkspace, tree: Tree, sandbox: WasmSandbox, path: str, op: Op
    ) -> None:
        before = tree.private_state()
        vault = (tree.ws / "vault" / "v.txt").read_bytes()
        data = [b"PWNED"] if op == Op.WRITE else []
        reply = sandbox.call(files.profile(WRITE_OPS), op, [path.encode(), *data])
        assert not reply.ok and reply.code in REFUSED, reply
        assert tree.private_state() == before
        assert (tree.ws / "vault" / "v.txt").read_bytes() == vault

    def test_a_symlink_into_the_vault_is_not_a_way_to_write_it(
        self, files: WasmWorkspace, tree: Tree
    ) -> None:
        for path in ("/shared/to_vault", "/shared/vdir/v.txt", "/shared/vdir/new.txt"):
            with pytest.raises(PolicyError):
                files.write_bytes(path, b"PWNED")
        assert (tree.ws / "vault" / "v.txt").read_text() == "vault V"
        assert not (tree.ws / "vault" / "new.txt").exists()


class TestProfiles:
    def test_read_profile_sees_every_mount_read_only(self, files: WasmWorkspace) -> None:
        profile = files.profile(READ_OPS)
        assert [(p.guest, p.writable) for p in profile.preopens] == [
            ("/shared", False),
            ("/tmp", False),
            ("/vault", False),
        ]

    def test_write_profile_has_no_vault(self, files: WasmWorkspace) -> None:
        profile = files.profile(WRITE_OPS)
        assert [(p.guest, p.writable) for p in profile.preopens] == [
            ("/shared", True),
            ("/tmp", True),
        ]

    def test_a_profile_refuses_ops_of_another_class_before_running(
        self, files: WasmWorkspace, sandbox: WasmSandbox
    ) -> None:
        with pytest.raises(PolicyError, match="does not allow read"):
            sandbox.call(files.profile(WRITE_OPS), Op.READ, [b"/shared/a.md", u64(10)])

    def test_write_preopens_cannot_read_the_vault_even_if_allowed_to(
        self, files: WasmWorkspace, sandbox: WasmSandbox
    ) -> None:
        write = files.profile(WRITE_OPS)
        both = Profile(name="test", ops=READ_OPS | WRITE_OPS, preopens=write.preopens)
        reply = sandbox.call(both, Op.READ, [b"/vault/v.txt", u64(100)])
        assert not reply.ok and reply.code in REFUSED

    def test_read_preopens_refuse_writes_even_if_allowed_to(
        self, files: WasmWorkspace, sandbox: WasmSandbox, tree: Tree
    ) -> None:
        read = files.profile(READ_OPS)
        both = Profile(name="test", ops=READ_OPS | WRITE_OPS, preopens=read.preopens)
        reply = sandbox.call(both, Op.WRITE, [b"/shared/new.txt", b"x"])
        assert not reply.ok and not (tree.shared / "new.txt").exists()

    def test_the_vault_step_cannot_see_shared(
        self, files: WasmWorkspace, sandbox: WasmSandbox
    ) -> None:
        vault = files.restricted(read=["/vault"], write=[])
        profile = vault.profile(READ_OPS)
        assert [p.guest for p in profile.preopens] == ["/vault"]
        for op, extra in ((Op.READ, [u64(100)]), (Op.LIST, [])):
            reply = sandbox.call(profile, op, [b"/shared/a.md", *extra])
            assert not reply.ok and reply.code in REFUSED
        assert vault.read_bytes("/vault/v.txt") == (b"vault V", False)
        with pytest.raises(PolicyError):
            vault.read_bytes("/shared/a.md")

    def test_the_copy_step_sees_only_shared_and_tmp(self, files: WasmWorkspace) -> None:
        step = files.restricted(read=[], write=["/shared", "/tmp"])
        assert [p.guest for p in step.profile(WRITE_OPS).preopens] == ["/shared", "/tmp"]
        with pytest.raises(PolicyError):
            step.read_bytes("/vault/v.txt")


class TestLimits:
    def test_a_guest_that_loops_forever_is_stopped(self, files: WasmWorkspace) -> None:
        spin = WasmSandbox(module=wasmtime.wat2wasm(SPIN_WAT), limits=WasmLimits(timeout_secs=0.1))
        with pytest.raises(ToolTimeoutError, match=r"0\.1 s limit"):
            spin.call(files.profile(READ_OPS), Op.READ, [b"/shared/a.md", u64(1)])

    def test_a_guest_started_after_the_ticker_parked_is_still_stopped(
        self, files: WasmWorkspace
    ) -> None:
        files.list_dir("/shared")
        time.sleep(5 * TICK_SECS)  # no call runs: the epoch thread parks
        spin = WasmSandbox(module=wasmtime.wat2wasm(SPIN_WAT), limits=WasmLimits(timeout_secs=0.1))
        raised: list[BaseException] = []

        def run() -> None:
            try:
                spin.call(files.profile(READ_OPS), Op.READ, [b"/shared/a.md", u64(1)])
            except BaseException as exc:  # checked below
                raised.append(exc)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        thread.join(30)  # a parked ticker that never woke would spin here forever
        assert [type(e) for e in raised] == [ToolTimeoutError]

    def test_a_guest_cannot_grow_memory_past_the_cap(self, files: WasmWorkspace) -> None:
        cap = 8 << 20
        grow = WasmSandbox(module=wasmtime.wat2wasm(GROW_WAT), limits=WasmLimits(memory_bytes=cap))
        reply = grow.call(files.profile(READ_OPS), Op.READ, [b"/shared/a.md", u64(1)])
        pages = int.from_bytes(reply.fields[0], "little")
        assert cap // 2 < pages * 65536 <= cap

    def test_a_read_larger_than_guest_memory_fails_cleanly(
        self, tree: Tree, sandbox: WasmSandbox
    ) -> None:
        with open(tree.shared / "sparse.bin", "wb") as fh:
            fh.truncate(24 << 20)
        small = WasmSandbox(limits=WasmLimits(memory_bytes=8 << 20))
        files = WasmWorkspace(Workspace.for_user(tree.ws), small)
        with pytest.raises(ToolError, match="too large for the sandbox's memory"):
            files.read_bytes("/shared/sparse.bin", max_bytes=20 << 20)

    def test_output_past_the_cap_is_refused(self, tree: Tree) -> None:
        (tree.shared / "big.txt").write_bytes(b"x" * 5000)
        small = WasmSandbox(limits=WasmLimits(output_bytes=1000))
        files = WasmWorkspace(Workspace.for_user(tree.ws), small)
        with pytest.raises(ToolError, match="larger than 1000 bytes"):
            files.read_bytes("/shared/big.txt")

    def test_a_request_past_the_cap_is_refused_before_running(self, tree: Tree) -> None:
        small = WasmSandbox(limits=WasmLimits(input_bytes=1000))
        files = WasmWorkspace(Workspace.for_user(tree.ws), small)
        with pytest.raises(ToolError, match="request is larger"):
            files.write_bytes("/shared/x.bin", b"x" * 5000)
        assert not (tree.shared / "x.bin").exists()

    def test_a_crashing_guest_is_a_tool_error(self, files: WasmWorkspace) -> None:
        crash = WasmSandbox(module=wasmtime.wat2wasm(CRASH_WAT))
        with pytest.raises(ToolError, match="crashed"):
            crash.call(files.profile(READ_OPS), Op.READ, [b"/shared/a.md", u64(1)])


class TestSameAnswersAsTheJail:
    """Successful operations give what the in-process jail gives, on one rich tree."""

    @pytest.fixture
    def pair(self, tree: Tree, sandbox: WasmSandbox) -> Iterator[tuple[Workspace, WasmWorkspace]]:
        (tree.shared / "deep" / "er").mkdir(parents=True)
        (tree.shared / "deep" / "er" / "z.txt").write_text("needle at depth\nno\nneedle")
        (tree.shared / "deep" / "b.txt").write_bytes(b"bad \xff\xfe needle bytes\n")
        (tree.shared / "bin.dat").write_bytes(b"needle\x00binary")
        (tree.shared / "long.txt").write_text("needle " + "\u00e9" * 3000 + "\n")
        (tree.shared / "crlf.txt").write_bytes(b"needle one\r\nneedle two\r\n")
        (tree.shared / "empty").mkdir()
        tree.link("deep/file_link", "../a.md")
        jail = Workspace.for_user(tree.ws)
        yield jail, WasmWorkspace(jail, sandbox)

    @pytest.mark.parametrize("path", ["/shared", "/shared/deep", "deep/er/z.txt", "/vault"])
    def test_search(self, pair: tuple[Workspace, WasmWorkspace], path: str) -> None:
        jail, wasm = pair
        for query in ("needle", "e", "\u00e9\u00e9"):
            assert wasm.search(path, query) == jail.search(path, query)
        assert wasm.search("/shared", "e", max_matches=3) == jail.search(
            "/shared", "e", max_matches=3
        )

    @pytest.mark.parametrize("path", ["/shared", "/shared/deep", "/shared/empty", "/vault", "vdir"])
    def test_list(self, pair: tuple[Workspace, WasmWorkspace], path: str) -> None:
        jail, wasm = pair
        if path == "vdir":
            with pytest.raises(PolicyError):
                wasm.list_dir(path)
            return
        assert wasm.list_dir(path) == jail.list_dir(path)

    def test_read_cut_and_binary_round_trip(
        self, pair: tuple[Workspace, WasmWorkspace], tree: Tree
    ) -> None:
        jail, wasm = pair
        blob = os.urandom(3 << 20)
        assert wasm.write_bytes("/tmp/blob.bin", blob) == len(blob)
        assert wasm.read_bytes("/tmp/blob.bin", max_bytes=4 << 20) == (blob, False)
        assert wasm.read_bytes("/tmp/blob.bin", max_bytes=1000) == jail.read_bytes(
            "/tmp/blob.bin", max_bytes=1000
        )
        assert wasm.read_text("long.txt") == jail.read_text("long.txt")

    def test_edit_keeps_the_file_when_the_change_refuses(
        self, pair: tuple[Workspace, WasmWorkspace], tree: Tree
    ) -> None:
        _, wasm = pair

        def refuse(text: str) -> str:
            raise ToolError("no match")

        with pytest.raises(ToolError, match="no match"):
            wasm.update_text("a.md", refuse)
        assert (tree.shared / "a.md").read_text() == "top A"
        assert wasm.update_text("a.md", lambda t: t + "!") == "top A!"
        assert (tree.shared / "a.md").read_text() == "top A!"

    def test_delete_a_tree_keeps_what_its_links_point_at(
        self, pair: tuple[Workspace, WasmWorkspace], tree: Tree
    ) -> None:
        _, wasm = pair
        tree.link("deep/out", tree.outside / "dir")
        assert wasm.delete("/shared/deep") == "directory"
        assert not (tree.shared / "deep").exists()
        assert (tree.outside / "dir" / "secret.txt").exists()
        assert (tree.shared / "a.md").exists()
        assert wasm.delete("outdir") == "symlink"
        assert wasm.delete("a.md") == "file"

    def test_concurrent_calls_keep_their_own_state(
        self, pair: tuple[Workspace, WasmWorkspace], tree: Tree
    ) -> None:
        _, wasm = pair
        for index in range(16):
            (tree.ws / "tmp" / f"f{index}.txt").write_text(f"file {index}")
        with ThreadPoolExecutor(8) as pool:
            texts = list(pool.map(lambda i: wasm.read_text(f"/tmp/f{i % 16}.txt")[0], range(64)))
        assert texts == [f"file {i % 16}" for i in range(64)]


def test_threads_that_first_use_the_sandbox_together_share_one_engine() -> None:
    """Arguments stream while the module compiles on another thread: one engine for both."""
    import threading

    from oxydra.security.wasm import _runtime as runtime

    before = list(runtime._RUNTIME)
    runtime._RUNTIME.clear()
    barrier = threading.Barrier(8)
    seen: list[int] = []

    def first_use() -> None:
        barrier.wait()
        seen.append(id(runtime._runtime().engine))

    try:
        threads = [threading.Thread(target=first_use) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(set(seen)) == 1
    finally:
        runtime._RUNTIME[:] = before or runtime._RUNTIME


def test_the_guest_runs_under_an_address_space_limit(tmp_path: Path) -> None:
    """The process tier sets RLIMIT_AS from `[resources] max_memory_mib`: the guest fits in it.

    wasmtime's default reserves 4 GiB of address space per memory, so every file tool failed
    with ENOMEM in a guest limited to 1 GiB.
    """
    import subprocess
    import sys
    import textwrap

    Tree(tmp_path)
    (tmp_path / "users" / "alice" / "shared" / "big.bin").write_bytes(b"y" * (12 << 20))
    script = textwrap.dedent(
        f"""
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
        from oxydra.security import Workspace
        from oxydra.security.wasm import WasmWorkspace
        files = WasmWorkspace(Workspace.for_user({str(tmp_path / "users" / "alice")!r}))
        files.write_text("/shared/new.txt", "written")
        print(files.read_text("/shared/new.txt")[0])
        print(len(files.read_bytes("/shared/big.bin", max_bytes=16 << 20)[0]))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["written", str(12 << 20)]
