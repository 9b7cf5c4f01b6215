"""Web: the chat page served on the gateway's port, and the runner's configurator.

`WebFront` answers plain HTTP beside the gateway's `/ws` (the page, its assets, browser
sign-in). The page's files are package data under `static/`, shipped inside `oxydra.pyz`.
"""

from oxydra.web._assets import Assets
from oxydra.web._auth import BrowserSessions, SignInLimiter
from oxydra.web.front import PageReads, WebFront

__all__ = ["Assets", "BrowserSessions", "PageReads", "SignInLimiter", "WebFront"]
