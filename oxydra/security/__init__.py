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
from oxydra.security.egress import Connector, EgressClient, FetchResponse, GuardedTransport
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
from oxydra.security.taint import (
    EgressCheck,
    TaintDecision,
    TaintPolicy,
    context_label,
    for_model,
    neutralize,
    read_paths,
    wrap_untrusted,
    written_paths,
)
from oxydra.security.taint_state import AuditEntry, AuditLog, TaintedPaths, virtual_path

__all__ = [
    "AuditEntry",
    "AuditLog",
    "Connector",
    "DEFAULT_ALLOW",
    "EgressCheck",
    "EgressClient",
    "FetchResponse",
    "GuardedTransport",
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
    "TaintDecision",
    "TaintPolicy",
    "TaintedPaths",
    "Verdict",
    "VettedTarget",
    "WalkOpener",
    "Workspace",
    "classify",
    "context_label",
    "default_opener",
    "encoded_forms",
    "for_model",
    "looks_random",
    "neutralize",
    "openat2_works",
    "parse_allowlist",
    "parse_inet_aton",
    "parse_url",
    "programs_of",
    "protect_agent_process",
    "read_paths",
    "refuse_persona_write",
    "shannon_entropy",
    "shell_environment",
    "shell_sandbox",
    "shell_status",
    "virtual_path",
    "wrap_untrusted",
    "written_paths",
]
