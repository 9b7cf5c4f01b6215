"""The `Embedder` seam and the always-available deterministic hashed embedder.

`HashedEmbedder` is feature hashing (the "hashing trick") over blake2b digests: each word,
each pair of adjacent words and each character 3- and 4-gram of a word (with `<`/`>`
boundary marks) picks a bucket and a sign from its 64-bit digest and adds its weight
there (word 1.0, bigram 0.6, a word's n-grams 1.0 shared); the sum is L2-normalised.
Each distinct feature counts once per text and common function words are left out
(unless the text has nothing else): without that every vector leans towards "the", "of"
and "and", all texts look alike, and both ranking and the HNSW index degrade.

It needs no model file, is identical across processes and machines, and catches shared
words and word forms ("remember" / "remembered"), not meaning. numpy is imported inside
the methods, so importing this module stays cheap.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

from oxydra.memory._text import content_words

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Vectors = npt.NDArray[np.float32]

_WORD_WEIGHT = 1.0
_BIGRAM_WEIGHT = 0.6
_GRAMS_WEIGHT = 1.0  # shared by all character n-grams of one word
_CACHE_LIMIT = 100_000


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

    Each distinct word is hashed once (cached): its blake2b digest and the buckets and
    signed weights of its features. A bigram's feature is a splitmix64 mix of its two
    word digests, computed for a whole text at once with numpy.

    Args:
        dims: vector length; 256 keeps collisions rare for chat-sized texts.
    """

    def __init__(self, dims: int = 256) -> None:
        if dims < 16:
            raise ValueError("hashed embeddings need at least 16 dimensions")
        self._dims = dims
        self._cache: dict[str, _WordFeatures] = {}

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

        words = content_words(text)
        if not words:
            return np.zeros(self._dims, dtype=np.float32)
        features = [self._word(w) for w in words]
        distinct = list({id(f): f for f in features}.values())
        digests = np.fromiter((f.digest for f in features), dtype=np.uint64, count=len(features))
        pairs = np.unique(_splitmix(digests[:-1] * np.uint64(0x9E3779B97F4A7C15) ^ digests[1:]))
        bigram_buckets = (pairs >> np.uint64(1)) % np.uint64(self._dims)
        buckets = np.concatenate([*(f.buckets for f in distinct), bigram_buckets])
        signs = (pairs & np.uint64(1)).astype(np.float64) * 2 - 1
        weights = np.concatenate([*(f.weights for f in distinct), signs * _BIGRAM_WEIGHT])
        vector = np.bincount(buckets.astype(np.intp), weights=weights, minlength=self._dims)
        norm = float(np.linalg.norm(vector))
        return (vector / norm if norm > 0 else vector).astype(np.float32)

    def _word(self, word: str) -> _WordFeatures:
        cached = self._cache.get(word)
        if cached is None:
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            cached = self._cache[word] = self._hash_word(word)
        return cached

    def _hash_word(self, word: str) -> _WordFeatures:
        import numpy as np

        marked = f"<{word}>"
        grams = sorted({marked[i : i + n] for n in (3, 4) for i in range(len(marked) - n + 1)})
        values = [_digest(f"w:{word}")] + [_digest(f"c:{g}") for g in grams]
        share = _GRAMS_WEIGHT / max(len(grams), 1) ** 0.5
        weights = [_WORD_WEIGHT] + [share] * len(grams)
        return _WordFeatures(
            digest=values[0],
            buckets=np.array([(v >> 1) % self._dims for v in values], dtype=np.uint64),
            weights=np.array(
                [w if v & 1 else -w for v, w in zip(values, weights, strict=True)],
                dtype=np.float64,
            ),
        )


class _WordFeatures(NamedTuple):
    digest: int
    buckets: Any
    weights: Any


def _digest(feature: str) -> int:
    return int.from_bytes(
        hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest(), "little"
    )


def _splitmix(values: Any) -> Any:
    """splitmix64's finaliser over a uint64 array (wrapping arithmetic)."""
    import numpy as np

    z = values + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))
