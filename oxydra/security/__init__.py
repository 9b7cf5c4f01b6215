"""Security policy: SSRF guard and pinned egress, workspace jail, scrubbing, shell policy."""

from oxydra.security._hosts import parse_inet_aton
from oxydra.security._ipranges import Verdict, classify
from oxydra.security.egress import Connector, EgressClient, FetchResponse
from oxydra.security.ssrf import Resolver, SsrfGuard, SystemResolver, VettedTarget, parse_allowlist

__all__ = [
    "Connector",
    "EgressClient",
    "FetchResponse",
    "Resolver",
    "SsrfGuard",
    "SystemResolver",
    "Verdict",
    "VettedTarget",
    "classify",
    "parse_allowlist",
    "parse_inet_aton",
]
