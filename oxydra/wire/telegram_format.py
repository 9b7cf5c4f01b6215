"""Model Markdown to Telegram's HTML subset, and long answers split into sendable pieces.

Theory of operation:
1. Rendering is one left-to-right scan per line, no regex over the text (a marker with no
   partner costs one search to the end of its line, so the worst case is quadratic in a
   line, and a line is at most one piece, `limit` characters, long):
   fenced code blocks become `<pre><code>`, inline code `<code>`, `**b**`/`__b__` `<b>`,
   `*i*`/`_i_` `<i>`, `~~s~~` `<s>`, `[text](http…)` `<a href>`, `# heading` a bold line.
   Everything else is escaped (`&`, `<`, `>`), so a model's `<service>` placeholder is text,
   never a tag Telegram refuses. An emphasis marker with no closing partner on its line is
   literal text; an unclosed code fence is closed at the end.
2. Splitting happens on the Markdown, before rendering: at a paragraph break, else a line
   break, else a space, else hard; a piece that ends inside a code fence is closed there
   and the next piece reopens it. A piece whose HTML is still over the limit (escaping
   grows text) is split again at a smaller size.
3. The plain text of a piece (sent when Telegram refuses the entities anyway) is its
   Markdown as written.
"""

from __future__ import annotations

import html

__all__ = ["Piece", "render_html", "split_markdown", "split_plain"]

_PAIRS = (("**", "b"), ("__", "b"), ("~~", "s"), ("*", "i"), ("_", "i"))


def _esc(text: str) -> str:
    return html.escape(text, quote=False)


def render_html(markdown: str) -> str:
    """Telegram HTML for `markdown` (see the module docstring)."""
    out: list[str] = []
    lines = markdown.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith("```"):
            lang = line.lstrip()[3:].strip()
            body: list[str] = []
            i += 1
            while i < len(lines) and not lines[i].lstrip().startswith("```"):
                body.append(lines[i])
                i += 1
            i += 1  # the closing fence (or the end)
            attr = f' class="language-{_esc(lang)}"' if lang.isidentifier() else ""
            out.append(f"<pre><code{attr}>{_esc(chr(10).join(body))}</code></pre>")
            continue
        out.append(_line(line))
        i += 1
    return "\n".join(out)


def _line(line: str) -> str:
    stripped = line.lstrip("#")
    if line.startswith("#") and stripped.startswith(" ") and len(line) - len(stripped) <= 6:
        return f"<b>{_inline(stripped.strip())}</b>"
    return _inline(line)


def _inline(text: str) -> str:
    """One line: code spans, links and emphasis; everything else escaped."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "`":
            end = text.find("`", i + 1)
            if end > i + 1:
                out.append(f"<code>{_esc(text[i + 1 : end])}</code>")
                i = end + 1
                continue
        elif c == "[":
            link = _link(text, i)
            if link is not None:
                label, url, i = link
                out.append(f'<a href="{html.escape(url, quote=True)}">{_inline(label)}</a>')
                continue
        elif c in "*_~":
            emphasis = _emphasis(text, i)
            if emphasis is not None:
                tag, inner, i = emphasis
                out.append(f"<{tag}>{_inline(inner)}</{tag}>")
                continue
        out.append(_esc(c))
        i += 1
    return "".join(out)


def _link(text: str, i: int) -> tuple[str, str, int] | None:
    close = text.find("](", i + 1)
    if close < 0 or "\n" in text[i:close]:
        return None
    end = text.find(")", close + 2)
    url = text[close + 2 : end] if end > 0 else ""
    if not url.startswith(("http://", "https://")) or " " in url:
        return None
    return text[i + 1 : close], url, end + 1


def _emphasis(text: str, i: int) -> tuple[str, str, int] | None:
    for marker, tag in _PAIRS:
        if not text.startswith(marker, i):
            continue
        start = i + len(marker)
        if start >= len(text) or text[start].isspace():
            return None
        if marker in "_" and i > 0 and text[i - 1].isalnum():
            return None  # snake_case_names stay as written
        end = text.find(marker, start)
        if end <= start or text[end - 1].isspace():
            return None
        if marker == "_" and end + 1 < len(text) and text[end + 1].isalnum():
            return None
        return tag, text[start:end], end + len(marker)
    return None


class Piece(tuple[str, str]):
    """One message to send: `(html, plain)`."""

    __slots__ = ()

    @property
    def html(self) -> str:
        """The rendered HTML."""
        return self[0]

    @property
    def plain(self) -> str:
        """The Markdown as written (the fallback when Telegram refuses the HTML)."""
        return self[1]


def split_plain(text: str, limit: int) -> list[str]:
    """`text` in pieces of at most `limit` characters: paragraph, line, word, hard breaks."""
    pieces: list[str] = []
    rest = text
    while len(rest) > limit:
        window = rest[:limit]
        cut = -1
        for sep in ("\n\n", "\n", " "):
            cut = window.rfind(sep)
            if cut > limit // 4:
                break
        if cut <= 0:
            cut = limit
        head, rest = rest[:cut], rest[cut:].lstrip("\n ")
        if head.strip():
            pieces.append(head.rstrip())
    if rest.strip() or not pieces:
        pieces.append(rest)
    return pieces


def split_markdown(markdown: str, limit: int) -> list[Piece]:
    """Pieces whose HTML and plain text both fit `limit` (see the module docstring)."""
    size = limit
    while True:
        pieces = _fenced(split_plain(markdown, max(size - 16, 16)))
        rendered = [Piece((render_html(p), p)) for p in pieces]
        if all(len(p.html) <= limit and len(p.plain) <= limit for p in rendered) or size <= 64:
            return [Piece((p.html[:limit], p.plain[:limit])) for p in rendered]
        size = size * 3 // 4


def _fenced(pieces: list[str]) -> list[str]:
    """Close a code fence a piece ends inside, and reopen it in the next."""
    out: list[str] = []
    reopen = ""
    for piece in pieces:
        text = reopen + piece
        opened = None
        for line in text.split("\n"):
            if line.lstrip().startswith("```"):
                opened = None if opened is not None else line.lstrip()
        if opened is not None:
            text += "\n```"
            reopen = opened + "\n"
        else:
            reopen = ""
        out.append(text)
    return out
