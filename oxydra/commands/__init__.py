"""The CLI's own commands that are not a running mode: `oxydra catalog`,
`oxydra config`, `oxydra persona` and `oxydra skills`.

They sit at the CLI layer because they join lower packages (the catalog commands read the
config; `config check` validates against the catalog) that must not import each other.
"""

from oxydra.commands.catalog import run_catalog, run_catalog_command
from oxydra.commands.config import run_config
from oxydra.commands.persona import render_persona, run_persona
from oxydra.commands.skills import render_list, run_skills

__all__ = [
    "render_list",
    "render_persona",
    "run_catalog",
    "run_catalog_command",
    "run_config",
    "run_persona",
    "run_skills",
]
