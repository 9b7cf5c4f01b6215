"""Web: the chat page served on the gateway's port, and the runner's configurator.

`WebFront` answers plain HTTP beside the gateway's `/ws` (the page, its assets, browser
sign-in). The page's files are package data under `static/`, shipped inside `oxydra.pyz`.
A lazy facade: a `vm` loads the page's modules and files at its first HTTP request.
"""

import typing as _typing

from oxydra._lazy import lazy_getattr as _lazy_getattr

if _typing.TYPE_CHECKING:
    from oxydra.web._assets import Assets
    from oxydra.web._auth import BrowserSessions, SignInLimiter
    from oxydra.web.front import PageReads, WebFront

__all__ = ["Assets", "BrowserSessions", "PageReads", "SignInLimiter", "WebFront"]

__getattr__ = _lazy_getattr(
    globals(),
    {
        "Assets": "oxydra.web._assets",
        "BrowserSessions": "oxydra.web._auth",
        "SignInLimiter": "oxydra.web._auth",
        "PageReads": "oxydra.web.front",
        "WebFront": "oxydra.web.front",
    },
)
