"""Built-in file tools, on virtual paths through the context's `FileBackend`.

Names, parameters, tiers and timeouts follow the Rust Oxydra so prompts and skills written
for it keep working. `vault_copyto` copies out of the read-only vault in two steps: the
first sees only `/vault` (read), the second only `/shared` and `/tmp` (write).
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from oxydra.core.errors import ToolError
from oxydra.core.tiers import SafetyTier
from oxydra.tools._context import ToolExecutionContext
from oxydra.tools._decorator import FunctionTool, tool

Path = Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]
Query = Annotated[str, msgspec.Meta(min_length=1, max_length=1000)]
READ_LIMIT = 1 << 20
COPY_LIMIT = 16 << 20
MAX_MATCHES = 200


@tool(timeout=10, safety_tier=SafetyTier.READ_ONLY)
async def file_read(ctx: ToolExecutionContext, path: Path) -> str:
    """Read a UTF-8 text file.

    Args:
        path: Such as /shared/notes.md.
    """
    text, cut = await ctx.workspace.read_text(path, max_bytes=READ_LIMIT)
    return text + (f"\n...[file is larger than {READ_LIMIT} bytes; reading stopped]" if cut else "")


@tool(timeout=20, safety_tier=SafetyTier.READ_ONLY)
async def file_search(ctx: ToolExecutionContext, path: Path, query: Query) -> str:
    """Search files under a directory for lines containing a literal text.

    Args:
        path: Directory or file, such as /shared.
        query: Case-sensitive; no patterns.
    """
    hits = await ctx.workspace.search(path, query, max_matches=MAX_MATCHES)
    if not hits:
        return "no matches found"
    lines = [f"{h.path}:{h.line}:{h.text}" for h in hits]
    if len(hits) >= MAX_MATCHES:
        lines.append(f"...[stopped at {MAX_MATCHES} matches]")
    return "\n".join(lines)


@tool(timeout=10, safety_tier=SafetyTier.READ_ONLY)
async def file_list(ctx: ToolExecutionContext, path: Path = "/shared") -> str:
    """List a directory; subdirectories end with '/'.

    Args:
        path: Such as /shared or /vault/docs.
    """
    entries = await ctx.workspace.list_dir(path)
    return "\n".join(entries) if entries else "no entries found"


@tool(timeout=15, safety_tier=SafetyTier.SIDE_EFFECTING)
async def file_write(ctx: ToolExecutionContext, path: Path, content: str) -> str:
    """Create or overwrite a text file in /shared or /tmp (parent folders are created).

    Args:
        path: Such as /shared/report.md.
        content: The complete new content.
    """
    written = await ctx.workspace.write_bytes(path, content.encode("utf-8"))
    return f"wrote {written} bytes to {path}"


@tool(timeout=15, safety_tier=SafetyTier.SIDE_EFFECTING)
async def file_edit(
    ctx: ToolExecutionContext,
    path: Path,
    old_text: Annotated[str, msgspec.Meta(min_length=1)],
    new_text: str,
) -> str:
    """Replace a text that occurs exactly once in a file.

    Args:
        path: Such as /shared/notes.md.
        old_text: The text to replace (add surrounding lines to make it unique).
        new_text: Replacement text.
    """

    def change(text: str) -> str:
        count = text.count(old_text)
        if count == 0:
            raise ToolError(f"old_text was not found in {path}")
        if count > 1:
            raise ToolError(
                f"old_text matched {count} locations in {path}; include more context so it "
                "matches exactly one"
            )
        return text.replace(old_text, new_text, 1)

    await ctx.workspace.update_text(path, change)
    return f"updated {path}"


@tool(timeout=15, safety_tier=SafetyTier.SIDE_EFFECTING)
async def file_delete(ctx: ToolExecutionContext, path: Path) -> str:
    """Delete a file, a symlink (not its target) or a directory tree; never a root itself.

    Args:
        path: Such as /tmp/scratch.
    """
    kind = await ctx.workspace.delete(path)
    return f"deleted {kind} {path}"


@tool(timeout=30, safety_tier=SafetyTier.SIDE_EFFECTING)
async def vault_copyto(ctx: ToolExecutionContext, source_path: Path, destination_path: Path) -> str:
    """Copy a file from /vault to /shared or /tmp.

    Args:
        source_path: Such as /vault/contracts/2024.pdf.
        destination_path: Such as /shared/contract.pdf.
    """
    vault = ctx.workspace.restricted(read=["/vault"], write=[])
    data, cut = await vault.read_bytes(source_path, max_bytes=COPY_LIMIT)
    if cut:
        raise ToolError(f"{source_path} is larger than {COPY_LIMIT} bytes; not copied")
    writable = ctx.workspace.restricted(read=[], write=["/shared", "/tmp"])
    written = await writable.write_bytes(destination_path, data)
    return f"copied {written} bytes from {source_path} to {destination_path}"


FILE_TOOLS: tuple[FunctionTool, ...] = (
    file_read,
    file_search,
    file_list,
    file_write,
    file_edit,
    file_delete,
    vault_copyto,
)
