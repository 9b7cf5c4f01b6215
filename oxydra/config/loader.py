"""Layered loading of the agent config.

Precedence, later wins: built-in defaults < `/etc/oxydra/` < `~/.config/oxydra/` <
`~/.oxydra/` < `./.oxydra/` < environment (`OXYDRA__SECTION__KEY=value`) < CLI
(`--set section.key=value`). In each directory `agent.toml` is read, then `providers.toml`.
All problems of all layers are collected and reported together.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from oxydra.config._layers import Layers
from oxydra.config.schema import AgentConfig
from oxydra.config.validate import check_agent_config
from oxydra.core.errors import ConfigError

ENV_PREFIX = "OXYDRA__"
FILE_NAMES = ("agent.toml", "providers.toml")


@dataclass(frozen=True)
class ConfigSources:
    """Where configuration comes from; every part injectable for tests."""

    system_dir: Path = Path("/etc/oxydra")
    home: Path | None = None
    cwd: Path | None = None
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    overrides: Sequence[str] = ()

    def directories(self) -> list[Path]:
        """The config directories, lowest precedence first."""
        home = self.home if self.home is not None else Path.home()
        cwd = self.cwd if self.cwd is not None else Path.cwd()
        dirs = [self.system_dir, home / ".config" / "oxydra", home / ".oxydra", cwd / ".oxydra"]
        unique: dict[Path, Path] = {}
        for directory in dirs:  # ./.oxydra is ~/.oxydra when run from $HOME: read it once
            unique.setdefault(directory.resolve(), directory)
        return list(unique.values())


class LoadedConfig(msgspec.Struct, frozen=True, kw_only=True):
    """The effective config, where each value came from, and non-fatal warnings."""

    config: AgentConfig
    sources: dict[str, str]
    layers: list[str]
    warnings: list[str] = []


def collect_layers(sources: ConfigSources) -> Layers:
    """Merge every layer into one tree; problems are collected, not raised."""
    layers = Layers(AgentConfig)
    for directory in sources.directories():
        for name in FILE_NAMES:
            layers.merge_file(directory / name)
    _merge_environment(layers, sources.environ)
    _merge_overrides(layers, sources.overrides)
    layers.validate_tree()
    return layers


def load_agent_config(sources: ConfigSources | None = None) -> LoadedConfig:
    """Load, merge and validate the agent config.

    Raises:
        ConfigError: with `problems` listing every bad file, key and value.
    """
    layers = collect_layers(sources or ConfigSources())
    config: AgentConfig | None = None
    if not layers.problems:
        built = layers.build()
        assert isinstance(built, AgentConfig)
        config = built
    warnings: list[str] = list(layers.warnings)
    if config is not None:
        config, checked = check_agent_config(config, layers)
        warnings += checked
    if layers.problems or config is None:
        count = len(layers.problems)
        raise ConfigError(
            f"{count} configuration problem{'s' if count != 1 else ''}:\n  "
            + "\n  ".join(layers.problems),
            problems=list(layers.problems),
        )
    return LoadedConfig(
        config=config, sources=dict(layers.sources), layers=layers.layers, warnings=warnings
    )


def _merge_environment(layers: Layers, environ: Mapping[str, str]) -> None:
    names = sorted(n for n in environ if n.startswith(ENV_PREFIX))
    if names:
        layers.layers.append("environment")
    for name in names:
        dotted = ".".join(p.lower() for p in name[len(ENV_PREFIX) :].split("__"))
        layers.set_text(dotted, environ[name], f"env {name}")


def _merge_overrides(layers: Layers, overrides: Sequence[str]) -> None:
    if overrides:
        layers.layers.append("command line")
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            layers.problems.append(f"--set {item!r}: expected section.key=value")
            continue
        layers.set_text(key.strip(), value, f"--set {key.strip()}")


def load_toml_struct(path: Path, root: type[msgspec.Struct]) -> msgspec.Struct:
    """Load one TOML file into `root` with the same checks as the layered loader.

    Raises:
        ConfigError: naming the file, every bad key and what was expected.
    """
    layers = Layers(root)
    if not layers.merge_file(path):
        raise ConfigError(f"{path}: file not found", file=str(path))
    layers.validate_tree()
    if layers.problems:
        raise ConfigError(
            f"{path}: " + "; ".join(layers.problems), file=str(path), problems=layers.problems
        )
    return layers.build()
