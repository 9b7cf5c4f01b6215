"""`oxydra catalog fetch | verify | show`: the catalog's command line.

- `fetch [--pinned] [--all] [--url URL] [--output PATH | --update-pinned]` downloads
  models.dev's `api.json` (`[catalog] url`, or `[catalog] pinned_url` with `--pinned`), keeps
  the providers the registry uses unless `--all`, validates it and writes it atomically to the
  user cache (`--update-pinned`: to the source tree's `catalog/pinned_model_catalog.json`).
- `verify [--pinned] [--url URL]` downloads the same and diffs it against the pinned snapshot
  shipped with Oxydra; exit status 1 on drift.
- `show [--all] [--provider NAME]` prints the resolved catalog as a table.

Exit status: 0 success, 1 drift (verify), 2 error. The HTTP transport is injectable so tests
talk to a loopback server.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import msgspec

from oxydra.catalog import (
    CatalogData,
    ModelCatalog,
    ModelDescriptor,
    configured_providers,
    download,
    fetch_catalog,
    load_catalog,
    parse_catalog,
    pinned_bytes,
    pinned_path,
    source_url,
)
from oxydra.config.schema import AgentConfig
from oxydra.core.errors import CatalogError, ConfigError

if TYPE_CHECKING:
    import httpx


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="oxydra catalog", description="Model catalog tools.")
    sub = parser.add_subparsers(dest="command", required=True)
    fetch = sub.add_parser("fetch", help="download the catalog into the user cache")
    fetch.add_argument("--pinned", action="store_true", help="download from [catalog] pinned_url")
    fetch.add_argument(
        "--all", action="store_true", help="keep every provider, not only configured ones"
    )
    fetch.add_argument("--url", help="download from this URL instead")
    target = fetch.add_mutually_exclusive_group()
    target.add_argument("--output", type=Path, help="write here instead of the user cache")
    target.add_argument(
        "--update-pinned",
        action="store_true",
        help="rewrite the pinned snapshot of a source checkout (catalog/ beside oxydra/)",
    )
    verify = sub.add_parser("verify", help="diff the remote catalog against the pinned snapshot")
    verify.add_argument("--pinned", action="store_true", help="download from [catalog] pinned_url")
    verify.add_argument("--url", help="download from this URL instead")
    show = sub.add_parser("show", help="print the catalog as a table")
    show.add_argument("--all", action="store_true", help="every provider, not only configured ones")
    show.add_argument("--provider", help="only this catalog provider")
    return parser


def run_catalog_command(
    argv: list[str],
    config: AgentConfig,
    environ: Mapping[str, str],
    *,
    transport: httpx.BaseTransport | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    cwd: Path | None = None,
) -> int:
    """Run `oxydra catalog <argv>` and return the exit status."""
    out, err = stdout or sys.stdout, stderr or sys.stderr
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help and on usage errors
        return exc.code if isinstance(exc.code, int) else 2
    try:
        if args.command == "fetch":
            return _fetch(args, config, environ, transport, out)
        if args.command == "verify":
            return _verify(args, config, transport, out)
        return _show(args, config, environ, cwd, out)
    except (CatalogError, ConfigError) as exc:
        print(f"error: {exc}", file=err)
        return 2


def _fetch(
    args: argparse.Namespace,
    config: AgentConfig,
    environ: Mapping[str, str],
    transport: httpx.BaseTransport | None,
    out: TextIO,
) -> int:
    target = pinned_path() if args.update_pinned else args.output
    fetched = fetch_catalog(
        config,
        environ,
        pinned=args.pinned,
        url=args.url,
        target=Path(target) if target else None,
        all_providers=args.all,
        transport=transport,
    )
    print(
        f"wrote {fetched.models} models of {fetched.providers} providers to {fetched.target}",
        file=out,
    )
    return 0


def _verify(
    args: argparse.Namespace,
    config: AgentConfig,
    transport: httpx.BaseTransport | None,
    out: TextIO,
) -> int:
    url = source_url(config, pinned=args.pinned, url=args.url)
    remote = parse_catalog(download(url, transport), url)
    pinned = parse_catalog(pinned_bytes(), "pinned")
    drift = diff_catalogs(pinned, remote)
    for line in drift:
        print(line, file=out)
    if drift:
        print(f"{len(drift)} differences between the pinned snapshot and {url}", file=out)
        return 1
    print(f"pinned snapshot matches {url}", file=out)
    return 0


def diff_catalogs(pinned: CatalogData, remote: CatalogData) -> list[str]:
    """Lines describing how `remote` differs from `pinned` for the pinned providers.

    `+ p/m` added, `- p/m` removed, `~ p/m: field old -> new` changed (fields we read only).
    """
    lines: list[str] = []
    for name in sorted(pinned):
        old = pinned[name].models
        new = remote[name].models if name in remote else {}
        if name not in remote:
            lines.append(f"- {name} (whole provider)")
            continue
        lines += [f"- {name}/{m}" for m in sorted(set(old) - set(new))]
        lines += [f"+ {name}/{m}" for m in sorted(set(new) - set(old))]
        for model in sorted(set(old) & set(new)):
            lines += [f"~ {name}/{model}: {c}" for c in _changes(old[model], new[model])]
    return lines


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}{key}."))
        return flat
    return {prefix.rstrip("."): value}


def _changes(old: ModelDescriptor, new: ModelDescriptor) -> list[str]:
    before = _flatten(msgspec.to_builtins(old))
    after = _flatten(msgspec.to_builtins(new))
    keys = sorted(set(before) | set(after))
    return [
        f"{k} {before.get(k)!r} -> {after.get(k)!r}" for k in keys if before.get(k) != after.get(k)
    ]


def _show(
    args: argparse.Namespace,
    config: AgentConfig,
    environ: Mapping[str, str],
    cwd: Path | None,
    out: TextIO,
) -> int:
    catalog = load_catalog(environ, cwd)
    wanted = (
        None if args.all else [args.provider] if args.provider else configured_providers(config)
    )
    print(f"catalog: {catalog.source}", file=out)
    print(render_table(catalog, wanted), file=out)
    return 0


def _price(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def render_table(catalog: ModelCatalog, providers: list[str] | None = None) -> str:
    """A fixed-width table: provider, model, context, prices per million tokens, flags."""
    header = ("provider", "model", "context", "output", "in $/M", "out $/M", "tools", "reasoning")
    rows = [header]
    for name, model in catalog.models():
        if providers is not None and name not in providers:
            continue
        caps = catalog.caps(name, model.id, model)
        cost = model.cost
        rows.append(
            (
                name,
                model.id + (" (deprecated)" if caps.deprecated else ""),
                str(caps.max_context_tokens or "-"),
                str(caps.max_output_tokens or "-"),
                _price(cost.input if cost else None),
                _price(cost.output if cost else None),
                "yes" if caps.tools else "no",
                "yes" if caps.reasoning else "no",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def run_catalog(args: argparse.Namespace) -> int:
    """Entry of the `catalog` mode: load the config, then run the subcommand."""
    import os

    from oxydra.config.loader import ConfigSources, load_agent_config

    config = load_agent_config(ConfigSources(overrides=args.overrides)).config
    return run_catalog_command(list(args.argv), config, os.environ)
