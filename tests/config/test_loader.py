"""Layered config: precedence, typing of text values, and errors that name file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from oxydra.config import ConfigSources, load_agent_config
from oxydra.core.errors import ConfigError


class Layout:
    """Six layers on real temp dirs: /etc, ~/.config, ~/.oxydra, ./.oxydra, env, CLI."""

    def __init__(self, tmp: Path) -> None:
        self.system = tmp / "etc"
        self.home = tmp / "home"
        self.cwd = tmp / "work"
        self.dirs = {
            "system": self.system,
            "xdg": self.home / ".config" / "oxydra",
            "home": self.home / ".oxydra",
            "cwd": self.cwd / ".oxydra",
        }
        for d in self.dirs.values():
            d.mkdir(parents=True)
        self.environ: dict[str, str] = {}
        self.overrides: list[str] = []

    def write(self, layer: str, text: str, name: str = "agent.toml") -> Path:
        path = self.dirs[layer] / name
        path.write_text(text)
        return path

    def sources(self) -> ConfigSources:
        return ConfigSources(
            system_dir=self.system,
            home=self.home,
            cwd=self.cwd,
            environ=self.environ,
            overrides=self.overrides,
        )


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    return Layout(tmp_path)


LAYERS = ["system", "xdg", "home", "cwd", "env", "cli"]


def _apply(layout: Layout, layer: str, value: int) -> None:
    if layer == "env":
        layout.environ["OXYDRA__RUNTIME__MAX_TURNS"] = str(value)
    elif layer == "cli":
        layout.overrides.append(f"runtime.max_turns={value}")
    else:
        layout.write(layer, f"[runtime]\nmax_turns = {value}\n")


class TestPrecedence:
    @pytest.mark.parametrize(
        "present",
        [LAYERS[: i + 1] for i in range(6)]
        + [
            ["system", "cwd"],
            ["xdg", "env"],
            ["home", "cli"],
            ["system", "home", "env"],
            ["cli"],
        ],
        ids=lambda p: "+".join(p),
    )
    def test_the_highest_present_layer_wins(self, layout: Layout, present: list[str]) -> None:
        for layer in present:
            _apply(layout, layer, 10 + LAYERS.index(layer))
        loaded = load_agent_config(layout.sources())
        winner = max(present, key=LAYERS.index)
        assert loaded.config.runtime.max_turns == 10 + LAYERS.index(winner)

    def test_defaults_apply_when_no_layer_sets_a_key(self, layout: Layout) -> None:
        loaded = load_agent_config(layout.sources())
        assert loaded.config.runtime.max_turns == 100
        assert loaded.config.selection.model == "gpt-4o-mini"
        registry = set(loaded.config.providers.registry)
        assert registry == {"openai", "anthropic", "ollama", "vllm", "lmstudio", "llamacpp"}

    def test_providers_toml_overrides_agent_toml_in_the_same_dir(self, layout: Layout) -> None:
        layout.write("cwd", '[selection]\nmodel = "a"\n')
        layout.write("cwd", '[selection]\nmodel = "b"\n', name="providers.toml")
        assert load_agent_config(layout.sources()).config.selection.model == "b"

    def test_tables_merge_key_by_key_across_layers(self, layout: Layout) -> None:
        layout.write("system", "[runtime]\nmax_turns = 7\nturn_timeout_secs = 9\n")
        layout.write("cwd", "[runtime]\nmax_turns = 8\n")
        runtime = load_agent_config(layout.sources()).config.runtime
        assert (runtime.max_turns, runtime.turn_timeout_secs) == (8, 9)

    def test_registry_entries_add_to_the_defaults(self, layout: Layout) -> None:
        layout.write(
            "home",
            '[providers.registry.local]\nprovider_type = "openai"\n'
            'base_url = "http://127.0.0.1:11434"\n',
        )
        registry = load_agent_config(layout.sources()).config.providers.registry
        assert {"openai", "anthropic", "local", "ollama"} <= set(registry)

    def test_sources_name_the_layer_of_each_value(self, layout: Layout) -> None:
        path = layout.write("cwd", "[runtime]\nmax_turns = 5\n")
        layout.environ["OXYDRA__RUNTIME__TURN_TIMEOUT_SECS"] = "3"
        layout.overrides.append("selection.model=m")
        sources = load_agent_config(layout.sources()).sources
        assert sources["runtime.max_turns"] == str(path)
        assert sources["runtime.turn_timeout_secs"] == "env OXYDRA__RUNTIME__TURN_TIMEOUT_SECS"
        assert sources["selection.model"] == "--set selection.model"
        assert sources["gateway.bind"] == "default"

    def test_a_directory_reached_twice_is_read_once(self, tmp_path: Path) -> None:
        (tmp_path / ".oxydra").mkdir()
        (tmp_path / ".oxydra" / "agent.toml").write_text("[runtime]\nmax_turns = 4\n")
        loaded = load_agent_config(
            ConfigSources(system_dir=tmp_path / "none", home=tmp_path, cwd=tmp_path, environ={})
        )
        assert loaded.layers.count(str(tmp_path / ".oxydra" / "agent.toml")) == 1


class TestTextTyping:
    @pytest.mark.parametrize(
        ("variable", "text", "path", "expected"),
        [
            ("RUNTIME__MAX_TURNS", "3", ("runtime", "max_turns"), 3),
            (
                "RUNTIME__CONTEXT_BUDGET__TRIGGER_RATIO",
                "0.5",
                ("runtime", "context_budget", "trigger_ratio"),
                0.5,
            ),
            ("MEMORY__ENABLED", "true", ("memory", "enabled"), True),
            ("MEMORY__ENABLED", "0", ("memory", "enabled"), False),
            ("TOOLS__SHELL__ALLOW", "ls, cat", ("tools", "shell", "allow"), ["ls", "cat"]),
            ("TOOLS__SHELL__DENY", '["rm","dd"]', ("tools", "shell", "deny"), ["rm", "dd"]),
            ("RUNTIME__MAX_TOKENS", "", ("runtime", "max_tokens"), None),
            (
                "TOOLS__APPROVAL__REQUIRE",
                "privileged",
                ("tools", "approval", "require"),
                ["privileged"],
            ),
        ],
    )
    def test_environment_values_take_the_schema_type(
        self, layout: Layout, variable: str, text: str, path: tuple[str, ...], expected: object
    ) -> None:
        layout.environ[f"OXYDRA__{variable}"] = text
        value: object = load_agent_config(layout.sources()).config
        for part in path:
            value = getattr(value, part)
        assert value == expected

    def test_environment_can_create_a_registry_entry(self, layout: Layout) -> None:
        layout.environ["OXYDRA__PROVIDERS__REGISTRY__LOCAL__PROVIDER_TYPE"] = "gemini"
        layout.environ["OXYDRA__SELECTION__PROVIDER"] = "local"
        cfg = load_agent_config(layout.sources()).config
        assert cfg.providers.registry["local"].provider_type == "gemini"

    def test_non_oxydra_variables_are_ignored(self, layout: Layout) -> None:
        layout.environ["OXYDRA_LOG"] = "debug"
        layout.environ["OXYDRA_X__Y"] = "1"
        load_agent_config(layout.sources())


class TestBadInput:
    def _problems(self, layout: Layout) -> list[str]:
        with pytest.raises(ConfigError) as info:
            load_agent_config(layout.sources())
        return info.value.problems

    def test_toml_syntax_error_names_the_file(self, layout: Layout) -> None:
        path = layout.write("cwd", "[runtime\nmax_turns = 5\n")
        (problem,) = self._problems(layout)
        assert str(path) in problem and "TOML syntax error" in problem and "line 1" in problem

    def test_wrong_type_names_file_key_value_and_expectation(self, layout: Layout) -> None:
        path = layout.write("home", '[runtime]\nmax_turns = "lots"\n')
        (problem,) = self._problems(layout)
        assert str(path) in problem and "'runtime.max_turns'" in problem
        assert "expected int > 0" in problem and "'lots'" in problem

    def test_out_of_range_value_is_rejected(self, layout: Layout) -> None:
        layout.write("cwd", "[memory.retrieval]\nvector_weight = 1.5\nfts_weight = -0.5\n")
        problems = self._problems(layout)
        assert any("vector_weight" in p and "<= 1" in p for p in problems)
        assert any("fts_weight" in p and ">= 0" in p for p in problems)

    def test_unknown_key_suggests_the_nearest_known_key(self, layout: Layout) -> None:
        path = layout.write("cwd", "[runtime]\nmax_turn = 5\n[gatway]\nbind = 'x'\n")
        problems = self._problems(layout)
        assert f"{path}: unknown key 'runtime.max_turn' (did you mean 'max_turns'?)" in problems
        assert f"{path}: unknown key 'gatway' (did you mean 'gateway'?)" in problems

    def test_unknown_key_from_environment_names_the_variable(self, layout: Layout) -> None:
        layout.environ["OXYDRA__RUNTIME__MAX_TURN"] = "5"
        (problem,) = self._problems(layout)
        assert "env OXYDRA__RUNTIME__MAX_TURN" in problem and "max_turns" in problem

    def test_untypable_environment_value_names_the_variable(self, layout: Layout) -> None:
        layout.environ["OXYDRA__RUNTIME__MAX_TURNS"] = "three"
        (problem,) = self._problems(layout)
        assert "env OXYDRA__RUNTIME__MAX_TURNS" in problem and "expected int" in problem

    def test_missing_required_key_names_the_entry(self, layout: Layout) -> None:
        path = layout.write("cwd", '[providers.registry.local]\nbase_url = "http://127.0.0.1:1"\n')
        (problem,) = self._problems(layout)
        assert str(path) in problem
        assert "missing required key 'providers.registry.local.provider_type'" in problem

    @pytest.mark.parametrize("version", ["2.0.0", "1.x", "one"])
    def test_wrong_config_version_is_refused(self, layout: Layout, version: str) -> None:
        path = layout.write("cwd", f'config_version = "{version}"\n')
        (problem,) = self._problems(layout)
        assert str(path) in problem and "config_version" in problem

    def test_every_problem_of_every_layer_is_listed_together(self, layout: Layout) -> None:
        layout.write("system", "[runtime]\nmax_turns = 0\n")
        layout.write("cwd", "[gateway]\nmax_sessions = 1\n")
        layout.environ["OXYDRA__MEMORY__ENABLED"] = "maybe"
        layout.overrides.append("nonsense")
        assert len(self._problems(layout)) == 4

    def test_selection_must_name_a_registry_entry(self, layout: Layout) -> None:
        layout.overrides.append("selection.provider=nowhere")
        (problem,) = self._problems(layout)
        assert "--set selection.provider" in problem and "nowhere" in problem

    def test_backoff_base_above_max_is_refused(self, layout: Layout) -> None:
        layout.write("cwd", "[reliability]\nbackoff_base_ms = 5000\n")
        (problem,) = self._problems(layout)
        assert "backoff_base_ms" in problem

    def test_an_unknown_time_zone_is_refused_where_the_scheduler_uses_it(
        self, layout: Layout
    ) -> None:
        layout.write("cwd", '[scheduler]\nenabled = true\ndefault_timezone = "Mars/Olympus"\n')
        (problem,) = self._problems(layout)
        assert "scheduler.default_timezone" in problem and "Mars/Olympus" in problem

    def test_the_time_zone_of_a_scheduler_that_is_off_is_not_read(self, layout: Layout) -> None:
        layout.write("cwd", '[scheduler]\ndefault_timezone = "Mars/Olympus"\n')
        config = load_agent_config(layout.sources())
        assert config.config.scheduler.default_timezone == "Mars/Olympus"


class TestDeprecations:
    def test_max_cost_is_read_as_max_tokens_with_a_warning(self, layout: Layout) -> None:
        layout.write("cwd", "[runtime]\nmax_cost = 5000\n")
        loaded = load_agent_config(layout.sources())
        assert loaded.config.runtime.max_tokens == 5000
        assert any("deprecated" in w for w in loaded.warnings)


class TestProfiledFiles:
    """Rust-era files nest sections under a profile (`[default.selection]`)."""

    def test_default_then_global_profile_sections_are_read(self, layout: Layout) -> None:
        layout.write(
            "home",
            '[default.selection]\nprovider = "anthropic"\nmodel = "claude-sonnet-4-5"\n'
            "[default.runtime]\nmax_turns = 7\n"
            "[global.runtime]\nmax_turns = 9\n",
        )
        layout.write(
            "cwd",
            '[default.providers.registry.local]\nprovider_type = "openai"\n'
            'base_url = "http://127.0.0.1:8080"\n',
            name="providers.toml",
        )
        loaded = load_agent_config(layout.sources())
        assert loaded.config.selection.provider == "anthropic"
        assert loaded.config.runtime.max_turns == 9
        assert loaded.config.providers.registry["local"].base_url == "http://127.0.0.1:8080"
        assert loaded.warnings == []

    def test_other_profiles_are_skipped_with_a_warning(self, layout: Layout) -> None:
        layout.write("cwd", "[default.runtime]\nmax_turns = 7\n[staging.runtime]\nmax_turns = 1\n")
        loaded = load_agent_config(layout.sources())
        assert loaded.config.runtime.max_turns == 7
        assert any("profile 'staging' is not selected" in w for w in loaded.warnings)

    def test_bad_keys_inside_a_profile_still_name_the_key(self, layout: Layout) -> None:
        layout.write("cwd", "[default.runtime]\nmax_turnz = 7\n")
        with pytest.raises(ConfigError, match=r"unknown key 'runtime\.max_turnz'"):
            load_agent_config(layout.sources())
