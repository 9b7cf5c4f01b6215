"""Security policy: SSRF guard and pinned egress, workspace jail, scrubbing, shell policy."""

import typing as _typing

from oxydra._lazy import lazy_getattr as _lazy_getattr

if _typing.TYPE_CHECKING:
    from oxydra.security._connector import Connector
    from oxydra.security._dumpable import protect_agent_process
    from oxydra.security._hosts import parse_inet_aton
    from oxydra.security._ipranges import Verdict, classify
    from oxydra.security._openat import (
        Openat2Opener,
        Opener,
        WalkOpener,
        default_opener,
        openat2_works,
    )
    from oxydra.security._pinned import GuardedTransport
    from oxydra.security.confine import (
        ShellSandbox,
        shell_environment,
        shell_sandbox,
        shell_status,
    )
    from oxydra.security.egress import EgressClient, FetchResponse
    from oxydra.security.jail import (
        PERSONA_NAMES,
        Mount,
        SearchHit,
        Workspace,
        refuse_persona_write,
    )
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

__getattr__ = _lazy_getattr(
    globals(),
    {
        "AuditEntry": "oxydra.security.taint_state",
        "AuditLog": "oxydra.security.taint_state",
        "Connector": "oxydra.security._connector",
        "DEFAULT_ALLOW": "oxydra.security.shellpolicy",
        "EgressCheck": "oxydra.security.taint",
        "EgressClient": "oxydra.security.egress",
        "FetchResponse": "oxydra.security.egress",
        "GuardedTransport": "oxydra.security._pinned",
        "Mount": "oxydra.security.jail",
        "Openat2Opener": "oxydra.security._openat",
        "Opener": "oxydra.security._openat",
        "PERSONA_NAMES": "oxydra.security.jail",
        "Resolver": "oxydra.security.ssrf",
        "Scrubber": "oxydra.security.scrub",
        "SearchHit": "oxydra.security.jail",
        "ShellPolicy": "oxydra.security.shellpolicy",
        "ShellRules": "oxydra.security.shellpolicy",
        "ShellSandbox": "oxydra.security.confine",
        "ShellVerdict": "oxydra.security.shellpolicy",
        "SsrfGuard": "oxydra.security.ssrf",
        "StreamScrubber": "oxydra.security.scrub",
        "SystemResolver": "oxydra.security.ssrf",
        "TaintDecision": "oxydra.security.taint",
        "TaintPolicy": "oxydra.security.taint",
        "TaintedPaths": "oxydra.security.taint_state",
        "Verdict": "oxydra.security._ipranges",
        "VettedTarget": "oxydra.security.ssrf",
        "WalkOpener": "oxydra.security._openat",
        "Workspace": "oxydra.security.jail",
        "classify": "oxydra.security._ipranges",
        "context_label": "oxydra.security.taint",
        "default_opener": "oxydra.security._openat",
        "encoded_forms": "oxydra.security.scrub",
        "for_model": "oxydra.security.taint",
        "looks_random": "oxydra.security.scrub",
        "neutralize": "oxydra.security.taint",
        "openat2_works": "oxydra.security._openat",
        "parse_allowlist": "oxydra.security.ssrf",
        "parse_inet_aton": "oxydra.security._hosts",
        "parse_url": "oxydra.security.ssrf",
        "programs_of": "oxydra.security.shellpolicy",
        "protect_agent_process": "oxydra.security._dumpable",
        "read_paths": "oxydra.security.taint",
        "refuse_persona_write": "oxydra.security.jail",
        "shannon_entropy": "oxydra.security.scrub",
        "shell_environment": "oxydra.security.confine",
        "shell_sandbox": "oxydra.security.confine",
        "shell_status": "oxydra.security.confine",
        "virtual_path": "oxydra.security.taint_state",
        "wrap_untrusted": "oxydra.security.taint",
        "written_paths": "oxydra.security.taint",
    },
)
