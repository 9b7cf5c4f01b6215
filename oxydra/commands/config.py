"""`oxydra config show|check`."""

from __future__ import annotations

import argparse
import os
import sys

from oxydra.config.credentials import is_local_url, key_required, key_variables, resolve_api_key
from oxydra.config.loader import ConfigSources, collect_layers, load_agent_config
from oxydra.config.show import render_config
from oxydra.core.errors import ConfigError


def run_config(args: argparse.Namespace) -> int:
    """Print the effective config, or check it and list every problem."""
    sources = ConfigSources(environ=dict(os.environ), overrides=args.overrides)
    if args.action == "show":
        loaded = load_agent_config(sources)
        for warning in loaded.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        sys.stdout.write(render_config(loaded))
        print(f"\n# shell_exec: {_shell_status(loaded.config)}")
        return 0
    return _check(sources)


def _check(sources: ConfigSources) -> int:
    problems = list(collect_layers(sources).problems)
    if not problems:
        try:
            loaded = load_agent_config(sources)
        except ConfigError as exc:
            problems = exc.problems
        else:
            problems = _credential_problems(loaded.config, sources)
            problems += _catalog_problems(loaded.config, sources)
            for warning in loaded.warnings:
                print(f"warning: {warning}")
            print(f"shell_exec: {_shell_status(loaded.config)}")
    for problem in problems:
        print(f"error: {problem}")
    if problems:
        print(f"{len(problems)} problem(s) found")
        return 1
    print("config ok")
    return 0


def _shell_status(config: object) -> str:
    from oxydra.config.schema import AgentConfig
    from oxydra.security.confine import shell_status

    assert isinstance(config, AgentConfig)
    shell = config.tools.shell
    return shell_status(enabled=shell.enabled, allow_unconfined=shell.allow_unconfined)


def _credential_problems(config: object, sources: ConfigSources) -> list[str]:
    from oxydra.config.schema import AgentConfig

    assert isinstance(config, AgentConfig)
    name = config.selection.provider
    entry = config.providers.registry[name]
    key, _origin = resolve_api_key(entry, sources.environ)
    if key is None and key_required(entry):
        names = ", ".join(key_variables(entry))
        return [f"no API key for provider '{name}': set one of {names}, or api_key in the entry"]
    return []


def _catalog_problems(config: object, sources: ConfigSources) -> list[str]:
    from oxydra.catalog import catalog_provider_for, load_catalog
    from oxydra.config.schema import AgentConfig
    from oxydra.core.errors import CatalogError

    assert isinstance(config, AgentConfig)
    entry = config.providers.registry[config.selection.provider]
    if config.catalog.skip_catalog_validation or is_local_url(entry.base_url):
        return []
    try:
        catalog = load_catalog(sources.environ, sources.cwd)
        catalog.resolve(catalog_provider_for(entry), config.selection.model, hints=entry)
    except CatalogError as exc:
        return [f"selection.model: {exc}"]
    return []
