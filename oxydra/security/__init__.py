"""Security policy: SSRF guard and pinned egress, workspace jail, scrubbing, shell policy."""

from oxydra.security._hosts import parse_inet_aton
from oxydra.security._ipranges import Verdict, classify
from oxydra.security._openat import Openat2Opener, Opener, WalkOpener, default_opener, openat2_works
from oxydra.security.confine import (
    ShellSandbox,
    protect_agent_process,
    shell_environment,
    shell_sandbox,
    shell_status,
)
from oxydra.security.egress import Connector, EgressClient, FetchResponse
from oxydra.security.jail import PERSONA_NAMES, Mount, SearchHit, Workspace, refuse_persona_write
from oxydra.security.scrub import (
    Scrubber,
    StreamScrubber,
    encoded_forms,
    looks_random,
    shannon_entropy,
)
from oxydra.security.shellpolicy import (
    DEFAULT_ALLOW,
    ShellPolicy,
    ShellRules,
    ShellVerdict,
    programs_of,
)
from oxydra.security.ssrf import (
    Resolver,
    SsrfGuard,
    SystemResolver,
    VettedTarget,
    parse_allowlist,
    parse_url,
)

__all__ = [
    "Connector",
    "DEFAULT_ALLOW",
    "EgressClient",
    "FetchResponse",
    "Mount",
    "Openat2Opener",
    "Opener",
    "PERSONA_NAMES",
    "Resolver",
    "Scrubber",
    "SearchHit",
    "ShellPolicy",
    "ShellRules",
    "ShellSandbox",
    "ShellVerdict",
    "SsrfGuard",
    "StreamScrubber",
    "SystemResolver",
    "Verdict",
    "VettedTarget",
    "WalkOpener",
    "Workspace",
    "classify",
    "default_opener",
    "encoded_forms",
    "looks_random",
    "openat2_works",
    "parse_allowlist",
    "parse_inet_aton",
    "parse_url",
    "programs_of",
    "protect_agent_process",
    "refuse_persona_write",
    "shannon_entropy",
    "shell_environment",
    "shell_sandbox",
    "shell_status",
]
