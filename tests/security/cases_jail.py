"""Workspace-jail cases: the reference's 32 and more, run on a real temp tree.

Shared by tests/security/test_jail.py and bench/bench_tools.py. Each case prepares the tree,
runs one operation through `Workspace`, and reports what happened and whether anything
outside the user's areas was read or changed (an escape).

Tree (under a temp base)::

    outside/secret.txt, outside/dir/secret.txt      never reachable
    users/bob/shared/x                              another user
    users/alice/.oxydra/{agent.toml,memory.db}      config and database, never reachable
    users/alice/shared_evil/x                       sibling with a common prefix
    users/alice/{shared,tmp,vault}                  the mounts
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from oxydra.core.errors import PolicyError, ToolError
from oxydra.security import Opener, Workspace

Op = Literal["read", "write", "edit", "delete", "list", "search"]
# "refused": a policy denial or a not-found error; used for host paths outside the workspace,
# which land in the user's own /tmp when the test tree itself lives under /tmp.
Expect = Literal["allow", "deny", "error", "refused"]
MARKS = ("OUTSIDE-SECRET", "OXYDRA-PRIVATE", "BOB-PRIVATE", "EVIL-SIBLING")
PAYLOAD = "PWNED-BY-TEST"


class Tree:
    """The temp tree every case starts from."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.outside = base / "outside"
        self.ws = base / "users" / "alice"
        self.shared = self.ws / "shared"
        for path, text in {
            self.outside / "secret.txt": "OUTSIDE-SECRET file",
            self.outside / "dir" / "secret.txt": "OUTSIDE-SECRET in dir",
            base / "users" / "bob" / "shared" / "x": "BOB-PRIVATE",
            self.ws / ".oxydra" / "agent.toml": "OXYDRA-PRIVATE config",
            self.ws / ".oxydra" / "memory.db": "OXYDRA-PRIVATE db",
            self.ws / "shared_evil" / "x": "EVIL-SIBLING",
            self.shared / "a.md": "top A",
            self.shared / "notes" / "a.md": "note A",
            self.ws / "vault" / "v.txt": "vault V",
            self.ws / "tmp" / "t.txt": "tmp T",
        }.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)

    def link(self, name: str, target: str | Path) -> None:
        """Make a symlink `shared/<name>` pointing at `target` (string kept as written)."""
        path = self.shared / name
        path.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(str(target), path)

    def private_state(self) -> dict[str, bytes]:
        """Every file outside alice's mounts, with its bytes (to detect writes and deletes)."""
        state: dict[str, bytes] = {}
        roots = [self.outside, self.base / "users" / "bob", self.ws / ".oxydra"]
        roots.append(self.ws / "shared_evil")
        for root in roots:
            for path in sorted(root.rglob("*")):
                if path.is_file() and not path.is_symlink():
                    state[str(path)] = path.read_bytes()
        return state


@dataclass(frozen=True)
class JailCase:
    """One operation on the jail and the verdict it must get."""

    id: str
    op: Op
    path: str | Callable[[Tree], str]
    expect: Expect
    setup: Callable[[Tree], None] | None = None
    content: str | None = None


@dataclass(frozen=True)
class Outcome:
    """What a case did: `kind` is ok / policy / error; `escaped` means a boundary broke."""

    kind: Literal["ok", "policy", "error"]
    escaped: bool
    detail: str

    def matches(self, expect: Expect) -> bool:
        """Whether the outcome is the verdict the case table asks for."""
        if expect == "refused":
            return self.kind != "ok"
        return {"ok": "allow", "policy": "deny", "error": "error"}[self.kind] == expect


def run_case(
    case: JailCase, base: Path, opener: Opener, wrap: Callable[[Workspace], Any] | None = None
) -> Outcome:
    """Build the tree under `base`, run the case, and judge it.

    `wrap` turns the jail into another object with its file API (the WASM workspace).
    """
    tree = Tree(base)
    if case.setup is not None:
        case.setup(tree)
    before = tree.private_state()
    workspace = Workspace.for_user(tree.ws, opener=opener)
    path = case.path(tree) if callable(case.path) else case.path
    files = wrap(workspace) if wrap is not None else workspace
    try:
        detail = _perform(files, case.op, path)
        kind: Literal["ok", "policy", "error"] = "ok"
    except PolicyError as exc:
        kind, detail = "policy", str(exc)
    except ToolError as exc:
        kind, detail = "error", str(exc)
    leaked = any(mark in detail for mark in MARKS)
    escaped = leaked or tree.private_state() != before or _payload_outside(tree)
    if case.content is not None and kind == "ok" and case.content not in detail:
        detail = f"unexpected content: {detail!r}"
        kind = "error"
    return Outcome(kind, escaped, detail)


def _perform(workspace: Any, op: Op, path: str) -> str:
    if op == "read":
        return workspace.read_text(path)[0]
    if op == "write":
        return str(workspace.write_text(path, PAYLOAD))
    if op == "edit":
        return workspace.update_text(path, lambda text: text + PAYLOAD)
    if op == "delete":
        return workspace.delete(path)
    if op == "list":
        return "\n".join(workspace.list_dir(path))
    hits = workspace.search(path, "")
    return "\n".join(f"{h.path}:{h.line}:{h.text}" for h in hits)


def _payload_outside(tree: Tree) -> bool:
    for path in tree.base.rglob("*"):
        inside = any(path.is_relative_to(tree.ws / m) for m in ("shared", "tmp", "vault"))
        if not inside and path.is_file() and not path.is_symlink():
            if PAYLOAD in path.read_text(errors="replace"):
                return True
    return False


def _links(**links: str) -> Callable[[Tree], None]:
    def setup(tree: Tree) -> None:
        for name, target in links.items():
            tree.link(name.replace("__", "/"), target.replace("{outside}", str(tree.outside)))

    return setup


def _literal(name: str) -> Callable[[Tree], None]:
    def setup(tree: Tree) -> None:
        path = tree.shared.joinpath(*name.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("LITERAL")

    return setup


def _hard(name: str, source: str) -> Callable[[Tree], None]:
    def setup(tree: Tree) -> None:
        os.link(tree.base / source, tree.shared / name)

    return setup


def _chain(count: int) -> Callable[[Tree], None]:
    def setup(tree: Tree) -> None:
        for index in range(count):
            tree.link(f"chain{index}", f"chain{index + 1}")
        tree.link(f"chain{count}", "a.md")

    return setup


def _fifo(tree: Tree) -> None:
    os.mkfifo(tree.shared / "fifo")


def _nfc_file(tree: Tree) -> None:
    (tree.shared / unicodedata.normalize("NFC", "caf\u00e9.txt")).write_text("NFC")


NFD_NAME = unicodedata.normalize("NFD", "caf\u00e9.txt")
OUT_ABS = "{outside}/secret.txt"
OUT_REL = "../../../outside/secret.txt"

JAIL_CASES: tuple[JailCase, ...] = (
    JailCase("j01-plain", "read", "notes/a.md", "allow", content="note A"),
    JailCase("j02-dotdot-inside", "read", "notes/../a.md", "allow", content="top A"),
    JailCase("j03-dotdot-escape", "read", "../../etc/passwd", "deny"),
    JailCase("j04-absolute-outside", "read", "/etc/passwd", "deny"),
    JailCase(
        "j05-host-path-inside", "read", lambda t: str(t.shared / "a.md"), "allow", content="top A"
    ),
    JailCase("j06-prefix-sibling", "read", "/shared/../shared_evil/x", "deny"),
    JailCase("j06b-prefix-sibling-host", "read", lambda t: str(t.ws / "shared_evil" / "x"), "deny"),
    JailCase("j07-other-user", "read", "/shared/../../bob/shared/x", "deny"),
    JailCase(
        "j07b-other-user-host", "read", lambda t: str(t.base / "users/bob/shared/x"), "refused"
    ),
    JailCase("j08-abs-symlink-out", "read", "abs_link", "deny", _links(abs_link=OUT_ABS)),
    JailCase("j09-rel-symlink-out", "read", "rel_link", "deny", _links(rel_link=OUT_REL)),
    JailCase("j10-dir-symlink-out", "read", "dl/secret.txt", "deny", _links(dl="{outside}/dir")),
    JailCase(
        "j10b-rel-dir-symlink-out",
        "read",
        "rdl/secret.txt",
        "deny",
        _links(rdl="../../../outside/dir"),
    ),
    JailCase(
        "j11-rel-symlink-inside", "read", "in_link", "allow", _links(in_link="notes/a.md"), "note A"
    ),
    JailCase(
        "j11b-symlink-up-inside", "read", "notes/up", "allow", _links(notes__up="../a.md"), "top A"
    ),
    JailCase("j12-dangling-abs-write", "write", "dang", "deny", _links(dang="{outside}/new.txt")),
    JailCase(
        "j12b-dangling-rel-write", "write", "rdang", "deny", _links(rdang="../../../outside/n.txt")
    ),
    JailCase("j13-write-via-dir-link", "write", "nd/file.txt", "deny", _links(nd="{outside}/dir")),
    JailCase(
        "j13b-write-via-rel-dir-link",
        "write",
        "rnd/f.txt",
        "deny",
        _links(rnd="../../../outside/dir"),
    ),
    JailCase(
        "j14-symlink-loop", "read", "loop_a", "deny", _links(loop_a="loop_b", loop_b="loop_a")
    ),
    JailCase("j14b-chain-of-41", "read", "chain0", "deny", _chain(41)),
    JailCase("j14c-chain-of-5", "read", "chain0", "allow", _chain(5), "top A"),
    JailCase("j15-proc-root", "read", "/proc/self/root/etc/passwd", "deny"),
    JailCase(
        "j15b-magic-link", "read", "magic", "deny", _links(magic="/proc/self/root/etc/hostname")
    ),
    JailCase("j15c-proc-fd-link", "read", "fdl", "deny", _links(fdl="/proc/self/fd/0")),
    JailCase(
        "j15d-rel-proc-link",
        "read",
        "rproc",
        "deny",
        _links(rproc="../../../../../../proc/self/environ"),
    ),
    JailCase("j16-hard-link-read", "read", "hard", "deny", _hard("hard", "outside/secret.txt")),
    JailCase("j16b-hard-link-write", "write", "hard", "deny", _hard("hard", "outside/secret.txt")),
    JailCase("j16c-hard-link-edit", "edit", "hard", "deny", _hard("hard", "outside/secret.txt")),
    JailCase(
        "j16d-hard-link-oxydra", "read", "db", "deny", _hard("db", "users/alice/.oxydra/memory.db")
    ),
    JailCase("j17-nul-byte", "read", "a.md\x00.png", "deny"),
    JailCase("j17b-nul-byte-write", "write", "x.txt\x00../../evil", "deny"),
    JailCase(
        "j18-percent-literal",
        "read",
        "%2e%2e/%2e%2e/etc/passwd",
        "allow",
        _literal("%2e%2e/%2e%2e/etc/passwd"),
        "LITERAL",
    ),
    JailCase(
        "j19-backslash-literal",
        "read",
        "..\\..\\etc\\passwd",
        "allow",
        _literal("..\\..\\etc\\passwd"),
        "LITERAL",
    ),
    JailCase("j20-fullwidth-literal", "read", "\uff0e\uff0e\uff0fetc", "error"),
    JailCase("j21-nfd-is-not-nfc", "read", NFD_NAME, "error", _nfc_file),
    JailCase(
        "j22-tilde-literal", "read", "~/.ssh/id_rsa", "allow", _literal("~/.ssh/id_rsa"), "LITERAL"
    ),
    JailCase("j26-vault-write", "write", "/vault/x.txt", "deny"),
    JailCase("j26b-vault-edit", "edit", "/vault/v.txt", "deny"),
    JailCase("j26c-vault-delete", "delete", "/vault/v.txt", "deny"),
    JailCase("j26d-vault-read", "read", "/vault/v.txt", "allow", content="vault V"),
    JailCase("j27-delete-dot", "delete", ".", "deny"),
    JailCase("j27b-delete-empty", "delete", "", "deny"),
    JailCase("j27c-delete-slash", "delete", "/", "deny"),
    JailCase("j27d-delete-mount", "delete", "/shared", "deny"),
    JailCase("j27e-delete-climb", "delete", "shared/..", "deny"),
    JailCase("j27f-delete-above", "delete", "notes/../..", "deny"),
    JailCase("j28-delete-link-only", "delete", "out_link", "allow", _links(out_link=OUT_ABS)),
    JailCase("j28b-delete-dir-link-only", "delete", "dl", "allow", _links(dl="{outside}/dir")),
    JailCase(
        "j29-search-skips-dir-links", "search", "/shared", "allow", _links(dl="{outside}/dir")
    ),
    JailCase("j29b-search-skips-file-links", "search", "/shared", "allow", _links(fl=OUT_ABS)),
    JailCase(
        "j29c-search-into-dir-link", "search", "/shared/dl", "deny", _links(dl="{outside}/dir")
    ),
    JailCase("j29d-list-parent", "list", "/shared/..", "deny"),
    JailCase("j29e-list-dir-link", "list", "dl", "deny", _links(dl="{outside}/dir")),
    JailCase("j29f-search-root-slash", "search", "/", "deny"),
    JailCase(
        "j29g-search-skips-hard-links",
        "search",
        "/shared",
        "allow",
        _hard("h", "outside/secret.txt"),
    ),
    JailCase("j31-fifo", "read", "fifo", "deny", _fifo),
    JailCase("j31b-dev-zero-link", "read", "zero", "deny", _links(zero="/dev/zero")),
    JailCase("j32-long-path", "read", "a" * 4097, "deny"),
    JailCase("j32b-deep-missing", "read", "x/" * 1000 + "f", "error"),
    JailCase("j32c-newline-name", "write", "line\nbreak.txt", "allow"),
    JailCase("j32d-dash-name", "write", "-rf", "allow"),
    JailCase("j33-oxydra-dotdot", "read", "/shared/../.oxydra/agent.toml", "deny"),
    JailCase("j33b-oxydra-host", "read", lambda t: str(t.ws / ".oxydra" / "agent.toml"), "deny"),
    JailCase("j33c-oxydra-link", "read", "cfg", "deny", _links(cfg="../.oxydra/agent.toml")),
    JailCase("j33d-oxydra-virtual", "read", "/.oxydra/agent.toml", "deny"),
    JailCase(
        "j33e-oxydra-write-link", "write", "cfgw", "deny", _links(cfgw="../.oxydra/agent.toml")
    ),
    JailCase(
        "j34-write-through-inside-link", "write", "in_link", "deny", _links(in_link="notes/a.md")
    ),
    JailCase("j35-tmp-write", "write", "/tmp/new.txt", "allow"),
    JailCase("j35b-creates-parents", "write", "deep/new/dir/f.txt", "allow"),
    JailCase("j35c-edit-inside", "edit", "notes/a.md", "allow"),
    JailCase("j35d-list-shared", "list", "/shared", "allow"),
    JailCase("j35e-read-directory", "read", "notes", "error"),
    JailCase("j35f-missing-parent-delete", "delete", "nope/x", "error"),
)
