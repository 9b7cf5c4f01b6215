"""Tools: the `Tool` contract, `@tool`, the registry's per-call policy and built-in tools."""

from oxydra.tools._backend import FileBackend, LocalFileBackend
from oxydra.tools._context import ApprovalHook, ApprovalRequest, ToolExecutionContext, TurnBudget
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
