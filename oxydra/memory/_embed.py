"""The `Embedder` seam and the always-available deterministic hashed embedder.

`HashedEmbedder` is feature hashing (the "hashing trick") over blake2b digests: each word,
each pair of adjacent words and each character 3- and 4-gram of a word (with `<`/`>`
boundary marks) picks a bucket and a sign from its digest and adds its weight there; the
sum is L2-normalised. It needs no model file, is identical across processes and machines,
and catches shared words and word forms ("remember" / "remembered"), not meaning.
numpy is imported inside the methods, so importing this module stays cheap.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Vectors = npt.NDArray[np.float32]

_WORD = re.compile(r"\w+")
_WORD_WEIGHT = 1.0
_BIGRAM_WEIGHT = 0.6
_GRAMS_WEIGHT = 1.0  # shared by all character n-grams of one word
_CACHE_LIMIT = 200_000


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors of a fixed dimension.

    `name` identifies the model exactly (the store records it and re-embeds everything
    when it changes); `dims` is the vector length. `embed` may be slow and is only
    called from the store's worker thread.
    """

    @property
    def name(self) -> str:
        """Identity of the model that made the vectors."""
        ...

    @property
    def dims(self) -> int:
        """Length of each vector."""
        ...

    def embed(self, texts: Sequence[str]) -> Vectors:
        """A `(len(texts), dims)` float32 array of unit vectors (zero for empty text)."""
        ...


class HashedEmbedder:
    """Deterministic feature-hashing embedder (blake2b over word and char n-grams).

    Args:
        dims: vector length; 256 keeps collisions rare for chat-sized texts.
    """

    def __init__(self, dims: int = 256) -> None:
        if dims < 16:
            raise ValueError("hashed embeddings need at least 16 dimensions")
        self._dims = dims
        self._cache: dict[str, tuple[list[int], list[float]]] = {}

    @property
    def name(self) -> str:
        """`hashed-blake2b-v1-<dims>`."""
        return f"hashed-blake2b-v1-{self._dims}"

    @property
    def dims(self) -> int:
        """Vector length."""
        return self._dims

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Embed each text; see the module docstring for the features."""
        import numpy as np

        out = np.zeros((len(texts), self._dims), dtype=np.float32)
        for row, text in enumerate(texts):
            out[row] = self._embed_one(text)
        return out

    def _embed_one(self, text: str) -> Vectors:
        import numpy as np

        words = [w.lower() for w in _WORD.findall(text)]
        buckets: list[int] = []
        weights: list[float] = []
        for i, word in enumerate(words):
            b, w = self._features(word)
            buckets += b
            weights += w
            if i:
                b, w = self._bigram(words[i - 1], word)
                buckets += b
                weights += w
        if not buckets:
            return np.zeros(self._dims, dtype=np.float32)
        vector = np.bincount(buckets, weights=weights, minlength=self._dims)
        norm = float(np.linalg.norm(vector))
        scaled = vector / norm if norm > 0 else vector
        return scaled.astype(np.float32)

    def _features(self, word: str) -> tuple[list[int], list[float]]:
        cached = self._cache.get(word)
        if cached is None:
            marked = f"<{word}>"
            grams = {marked[i : i + n] for n in (3, 4) for i in range(len(marked) - n + 1)}
            buckets, signs = self._hash([f"w:{word}"] + [f"c:{g}" for g in sorted(grams)])
            share = _GRAMS_WEIGHT / max(len(grams), 1) ** 0.5
            weights = [signs[0] * _WORD_WEIGHT] + [s * share for s in signs[1:]]
            cached = self._remember(word, (buckets, weights))
        return cached

    def _bigram(self, first: str, second: str) -> tuple[list[int], list[float]]:
        key = f"b:{first} {second}"
        cached = self._cache.get(key)
        if cached is None:
            buckets, signs = self._hash([key])
            cached = self._remember(key, (buckets, [signs[0] * _BIGRAM_WEIGHT]))
        return cached

    def _hash(self, features: list[str]) -> tuple[list[int], list[float]]:
        buckets: list[int] = []
        signs: list[float] = []
        for feature in features:
            digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest()
            value = int.from_bytes(digest, "little")
            buckets.append((value >> 1) % self._dims)
            signs.append(1.0 if value & 1 else -1.0)
        return buckets, signs

    def _remember(
        self, key: str, value: tuple[list[int], list[float]]
    ) -> tuple[list[int], list[float]]:
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[key] = value
        return value
