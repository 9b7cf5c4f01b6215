"""The shipped skills' front matter table (`_shipped`) matches what PyYAML makes of them."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import yaml

from oxydra.tools.skills._discovery import builtin_root
from oxydra.tools.skills._manifest import load_yaml, split_front_matter
from oxydra.tools.skills._shipped import SHIPPED


def _heads() -> dict[str, str]:
    heads = {}
    for entry in builtin_root().iterdir():
        if entry.is_dir() and entry.joinpath("SKILL.md").is_file():
            text = entry.joinpath("SKILL.md").read_bytes().decode("utf-8")
            heads[entry.name] = split_front_matter(text, entry.name)[0]
    return heads


def test_every_shipped_skill_is_in_the_table_as_the_safe_loader_reads_it() -> None:
    expected = {
        hashlib.sha256(head.encode("utf-8")).hexdigest(): yaml.load(head, Loader=yaml.SafeLoader)
        for head in _heads().values()
    }
    assert expected, "no shipped skill found"
    assert SHIPPED == expected, (
        f"a shipped skill changed: set SHIPPED in _shipped.py to {expected!r}"
    )


def test_a_changed_front_matter_is_parsed_not_looked_up() -> None:
    head = next(iter(_heads().values())).replace("priority: 200", "priority: 7")
    assert load_yaml(head, "edited")["priority"] == 7


def test_the_table_hands_out_copies() -> None:
    head = next(iter(_heads().values()))
    first = load_yaml(head, "builtin")
    first["requires"].append("mutated")
    assert "mutated" not in load_yaml(head, "builtin")["requires"]


def test_finding_the_shipped_skills_imports_no_yaml() -> None:
    code = (
        "import sys\n"
        "from oxydra.tools.skills._discovery import discover\n"
        "assert [s.name for s in discover([])] == ['skill-authoring']\n"
        "print('yaml' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
