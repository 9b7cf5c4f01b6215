"""Tools: the `Tool` contract, `@tool`, the registry's per-call policy and built-in tools."""

import typing as _typing

from oxydra._lazy import lazy_getattr as _lazy_getattr

if _typing.TYPE_CHECKING:
    from oxydra.tools._backend import FileBackend, LocalFileBackend
    from oxydra.tools._context import (
        ApprovalHook,
        ApprovalRequest,
        ToolExecutionContext,
        TurnBudget,
    )
    from oxydra.tools._daemon_shell import DaemonShellSession
    from oxydra.tools._decorator import FunctionTool, tool
    from oxydra.tools._defaults import (
        default_registry,
        default_scrubber,
        default_tools,
        egress_allowlist,
        known_secrets,
        local_shell,
    )
    from oxydra.tools._files import FILE_TOOLS
    from oxydra.tools._html import html_to_text
    from oxydra.tools._output import truncate
    from oxydra.tools._persona import user_profile_tool
    from oxydra.tools._protocol import ErrorKind, Tool, ToolOutput, ToolResult
    from oxydra.tools._registry import ToolRegistry, tier_of
    from oxydra.tools._scratchpad import InMemoryScratchpad, Scratchpad, ScratchpadStore
    from oxydra.tools._search import SearchOutput, SearchResult, WebSearch, web_search_tool
    from oxydra.tools._shell import (
        LocalShellSession,
        ShellOutput,
        ShellSession,
        format_output,
        shell_exec_tool,
    )
    from oxydra.tools._wasm_backend import WasmFileBackend, select_file_backend
    from oxydra.tools._web import FetchOutput, web_fetch_tool
    from oxydra.tools.schema import (
        Signature,
        ToolDefinitionError,
        check_schema_limits,
        inline_refs,
        parse_docstring,
        signature_schema,
        strip_titles,
        transform_schema,
    )

__all__ = [
    "ApprovalHook",
    "ApprovalRequest",
    "DaemonShellSession",
    "ErrorKind",
    "FILE_TOOLS",
    "FetchOutput",
    "FileBackend",
    "FunctionTool",
    "InMemoryScratchpad",
    "LocalFileBackend",
    "LocalShellSession",
    "Scratchpad",
    "ScratchpadStore",
    "SearchOutput",
    "SearchResult",
    "ShellOutput",
    "ShellSession",
    "Signature",
    "Tool",
    "ToolDefinitionError",
    "ToolExecutionContext",
    "ToolOutput",
    "ToolRegistry",
    "ToolResult",
    "TurnBudget",
    "WasmFileBackend",
    "WebSearch",
    "check_schema_limits",
    "default_registry",
    "default_scrubber",
    "default_tools",
    "egress_allowlist",
    "format_output",
    "html_to_text",
    "inline_refs",
    "known_secrets",
    "local_shell",
    "parse_docstring",
    "select_file_backend",
    "shell_exec_tool",
    "signature_schema",
    "strip_titles",
    "tier_of",
    "tool",
    "transform_schema",
    "truncate",
    "user_profile_tool",
    "web_fetch_tool",
    "web_search_tool",
]

__getattr__ = _lazy_getattr(
    globals(),
    {
        "ApprovalHook": "oxydra.tools._context",
        "ApprovalRequest": "oxydra.tools._context",
        "DaemonShellSession": "oxydra.tools._daemon_shell",
        "ErrorKind": "oxydra.tools._protocol",
        "FILE_TOOLS": "oxydra.tools._files",
        "FetchOutput": "oxydra.tools._web",
        "FileBackend": "oxydra.tools._backend",
        "FunctionTool": "oxydra.tools._decorator",
        "InMemoryScratchpad": "oxydra.tools._scratchpad",
        "LocalFileBackend": "oxydra.tools._backend",
        "LocalShellSession": "oxydra.tools._shell",
        "Scratchpad": "oxydra.tools._scratchpad",
        "ScratchpadStore": "oxydra.tools._scratchpad",
        "SearchOutput": "oxydra.tools._search",
        "SearchResult": "oxydra.tools._search",
        "ShellOutput": "oxydra.tools._shell",
        "ShellSession": "oxydra.tools._shell",
        "Signature": "oxydra.tools.schema",
        "Tool": "oxydra.tools._protocol",
        "ToolDefinitionError": "oxydra.tools.schema",
        "ToolExecutionContext": "oxydra.tools._context",
        "ToolOutput": "oxydra.tools._protocol",
        "ToolRegistry": "oxydra.tools._registry",
        "ToolResult": "oxydra.tools._protocol",
        "TurnBudget": "oxydra.tools._context",
        "WasmFileBackend": "oxydra.tools._wasm_backend",
        "WebSearch": "oxydra.tools._search",
        "check_schema_limits": "oxydra.tools.schema",
        "default_registry": "oxydra.tools._defaults",
        "default_scrubber": "oxydra.tools._defaults",
        "default_tools": "oxydra.tools._defaults",
        "egress_allowlist": "oxydra.tools._defaults",
        "format_output": "oxydra.tools._shell",
        "html_to_text": "oxydra.tools._html",
        "inline_refs": "oxydra.tools.schema",
        "known_secrets": "oxydra.tools._defaults",
        "local_shell": "oxydra.tools._defaults",
        "parse_docstring": "oxydra.tools.schema",
        "select_file_backend": "oxydra.tools._wasm_backend",
        "shell_exec_tool": "oxydra.tools._shell",
        "signature_schema": "oxydra.tools.schema",
        "strip_titles": "oxydra.tools.schema",
        "tier_of": "oxydra.tools._registry",
        "tool": "oxydra.tools._decorator",
        "transform_schema": "oxydra.tools.schema",
        "truncate": "oxydra.tools._output",
        "user_profile_tool": "oxydra.tools._persona",
        "web_fetch_tool": "oxydra.tools._web",
        "web_search_tool": "oxydra.tools._search",
    },
)
