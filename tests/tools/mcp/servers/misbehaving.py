"""A stdio MCP server of our own that misbehaves on request (stdlib only, runs confined).

Usage: misbehaving.py MODE... where MODE is any of
  hang        never answer `initialize`
  garbage     write non-JSON lines to stdout before and between answers
  bad_schema  list a tool whose inputSchema is not valid JSON Schema
  paginate    list tools over three pages
  listchange  `grow` adds a tool and sends notifications/tools/list_changed
Tools: echo, big (1 MiB text), crash (exits mid-call), slow (sleeps; a cancellation is
written to $HOME/cancelled), lies (schema says {text}, the tool demands {other}), image,
read_file / write_file (any path: the confinement tests), env (its environment), structured,
probe (what a hostile server can learn: privileges, limits, its parent, /proc of a pid),
orphan (starts a detached `sleep` in a new session and returns its pid).
"""

from __future__ import annotations

import base64
import ctypes
import json
import os
import sys
import threading
import time

MODES = set(sys.argv[1:])
TOOLS = [
    {
        "name": "echo",
        "description": "Echo text back.",
        "inputSchema": {
            "type": "object",
            "properties": {"text": {"type": "string"}},
            "required": ["text"],
        },
    },
    {"name": "big", "description": "A 1 MiB answer.", "inputSchema": {"type": "object"}},
    {
        "name": "crash",
        "description": "Dies in the middle of the call.",
        "inputSchema": {"type": "object"},
    },
    {
        "name": "slow",
        "description": "Sleeps for the given seconds.",
        "inputSchema": {"type": "object", "properties": {"seconds": {"type": "number"}}},
    },
    {
        "name": "lies",
        "description": "Claims to take text.",
        "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}},
    },
    {"name": "image", "description": "A tiny PNG.", "inputSchema": {"type": "object"}},
    {
        "name": "read_file",
        "description": "Read a file by path.",
        "inputSchema": {"type": "object", "properties": {"path": {"type": "string"}}},
    },
    {"name": "env", "description": "Its own environment.", "inputSchema": {"type": "object"}},
    {
        "name": "write_file",
        "description": "Write text to a path.",
        "inputSchema": {
            "type": "object",
            "properties": {"path": {"type": "string"}, "text": {"type": "string"}},
        },
    },
    {
        "name": "probe",
        "description": "What this process may do.",
        "inputSchema": {"type": "object", "properties": {"pid": {"type": "integer"}}},
    },
    {"name": "orphan", "description": "A detached child.", "inputSchema": {"type": "object"}},
    {
        "name": "structured",
        "description": "Structured content only.",
        "inputSchema": {"type": "object"},
    },
    {"name": "grow", "description": "Adds a tool.", "inputSchema": {"type": "object"}},
]
if "bad_schema" in MODES:
    TOOLS.append(
        {
            "name": "broken",
            "description": "Bad schema.",
            "inputSchema": {"type": "object", "properties": {"x": {"type": "strung"}}},
        }
    )
    TOOLS.append(
        {"name": "not_object", "description": "Array params.", "inputSchema": {"type": "array"}}
    )
lock = threading.Lock()


def send(message: dict) -> None:
    with lock:
        if "garbage" in MODES:
            sys.stdout.write("this is not json {{{\n")
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()


def result(ident, value) -> None:
    send({"jsonrpc": "2.0", "id": ident, "result": value})


def text(ident, body: str, error: bool = False) -> None:
    result(ident, {"content": [{"type": "text", "text": body}], "isError": error})


def call(ident, name: str, args: dict) -> None:
    if name == "echo":
        text(ident, str(args.get("text")))
    elif name == "big":
        text(ident, "x" * (1024 * 1024))
    elif name == "crash":
        os._exit(3)
    elif name == "slow":
        PENDING[ident] = True  # before the thread: a cancellation may be the very next line
        threading.Thread(
            target=slow, args=(ident, float(args.get("seconds", 30))), daemon=True
        ).start()
    elif name == "lies":
        if "other" not in args:
            text(ident, "missing required argument 'other'", error=True)
        else:
            text(ident, "ok")
    elif name == "image":
        png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 60).decode()
        result(
            ident,
            {
                "content": [
                    {"type": "image", "mimeType": "image/png", "data": png},
                    {"type": "text", "text": "a picture"},
                ]
            },
        )
    elif name == "read_file":
        try:
            with open(str(args.get("path"))) as handle:
                text(ident, handle.read())
        except OSError as exc:
            text(ident, f"{type(exc).__name__}: {exc.strerror}", error=True)
    elif name == "write_file":
        try:
            with open(str(args.get("path")), "w") as handle:
                handle.write(str(args.get("text")))
            text(ident, "written")
        except OSError as exc:
            text(ident, f"{type(exc).__name__}: {exc.strerror}", error=True)
    elif name == "probe":
        text(ident, json.dumps(probe(int(args.get("pid", 0)))))
    elif name == "orphan":
        text(ident, str(orphan()))
    elif name == "env":
        text(ident, json.dumps(dict(os.environ)))
    elif name == "structured":
        result(ident, {"content": [], "structuredContent": {"answer": 42}})
    elif name == "grow":
        TOOLS.append(
            {
                "name": f"grown{len(TOOLS)}",
                "description": "Grown.",
                "inputSchema": {"type": "object"},
            }
        )
        text(ident, "grown")
        send({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})
    else:
        send(
            {"jsonrpc": "2.0", "id": ident, "error": {"code": -32602, "message": f"no tool {name}"}}
        )


PENDING: dict = {}


def probe(pid: int) -> dict:
    """Privileges, limits, parent and what `/proc/<pid>/environ` (and the parent's) yields."""
    import resource

    prctl = ctypes.CDLL(None, use_errno=True).prctl
    bounding = [cap for cap in range(41) if prctl(23, cap, 0, 0, 0) == 1]  # PR_CAPBSET_READ
    found = {
        "no_new_privs": prctl(39, 0, 0, 0, 0),  # PR_GET_NO_NEW_PRIVS
        "bounding_caps": bounding,
        "core": resource.getrlimit(resource.RLIMIT_CORE)[0],
        "nofile": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
        "ppid": os.getppid(),
    }
    for key, target in (("environ", pid), ("parent_environ", os.getppid())):
        try:
            with open(f"/proc/{target}/environ", "rb") as handle:
                found[key] = handle.read().decode("utf-8", "replace")
        except OSError as exc:
            found[key] = f"{type(exc).__name__}: {exc.strerror}"
    return found


def orphan() -> int:
    """Double-fork a `sleep 300` in its own session; the pid it runs as."""
    read, write = os.pipe()
    first = os.fork()
    if first == 0:
        os.setsid()
        child = os.fork()
        if child == 0:
            os.close(read)
            os.close(write)
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            os.execv("/bin/sleep", ["sleep", "300"])
        os.write(write, str(child).encode())
        os._exit(0)
    os.close(write)
    pid = int(os.read(read, 32))
    os.close(read)
    os.waitpid(first, 0)
    return pid


def slow(ident, seconds: float) -> None:
    with open(os.path.join(os.environ["HOME"], "inflight"), "a") as handle:
        handle.write(f"{len(PENDING)}\n")  # how many calls were running at once
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and PENDING.get(ident):
        time.sleep(0.02)
    if PENDING.pop(ident, None):
        text(ident, "slept")


def tools_page(params: dict) -> dict:
    if "paginate" not in MODES:
        return {"tools": TOOLS}
    cursor = int(params.get("cursor") or 0)
    page = {"tools": TOOLS[cursor : cursor + 4]}
    if cursor + 4 < len(TOOLS):
        page["nextCursor"] = str(cursor + 4)
    return page


def main() -> None:
    for line in sys.stdin:
        try:
            message = json.loads(line)
        except ValueError:
            continue
        method, ident, params = (
            message.get("method"),
            message.get("id"),
            message.get("params") or {},
        )
        if method == "initialize":
            if "hang" in MODES:
                continue
            caps = {"tools": {"listChanged": "listchange" in MODES}}
            result(
                ident,
                {
                    "protocolVersion": params.get("protocolVersion"),
                    "capabilities": caps,
                    "serverInfo": {"name": "misbehaving", "version": "1"},
                },
            )
        elif method == "tools/list":
            result(ident, tools_page(params))
        elif method == "tools/call":
            call(ident, params.get("name"), params.get("arguments") or {})
        elif method == "notifications/cancelled":
            request = params.get("requestId")
            if PENDING.pop(request, None):
                with open(os.path.join(os.environ["HOME"], "cancelled"), "a") as handle:
                    handle.write(f"{request} {params.get('reason')}\n")
        elif ident is not None and method is not None:
            send({"jsonrpc": "2.0", "id": ident, "error": {"code": -32601, "message": "nope"}})


if __name__ == "__main__":
    main()
