"""The page's static files, read from the package (so they ship inside `oxydra.pyz`).

Every asset is served under `/static/<build>/<name>`, where `<build>` is a hash over all the
assets: a changed file gets a new URL, so assets may be cached forever (`immutable`) while the
HTML page itself is never cached. The HTML names each script and stylesheet with its
`integrity` hash (SRI), so a file altered between here and the browser does not run.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from importlib import resources

TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
}


@dataclass(frozen=True)
class Asset:
    """One static file: its bytes, type, and SRI hash."""

    body: bytes
    content_type: str
    integrity: str


class Assets:
    """The static files of `oxydra.web`, loaded once."""

    def __init__(self) -> None:
        folder = resources.files("oxydra.web") / "static"
        files: dict[str, Asset] = {}
        digest = hashlib.sha256()
        for entry in sorted(folder.iterdir(), key=lambda e: e.name):
            suffix = "." + entry.name.rpartition(".")[2]
            if not entry.is_file() or suffix not in TYPES:
                continue
            body = entry.read_bytes()
            sri = "sha384-" + base64.b64encode(hashlib.sha384(body).digest()).decode()
            files[entry.name] = Asset(body, TYPES[suffix], sri)
            digest.update(entry.name.encode() + b"\0" + body + b"\0")
        self.files = files
        self.build = digest.hexdigest()[:16]

    def url(self, name: str) -> str:
        """The cacheable URL of an asset."""
        return f"/static/{self.build}/{name}"

    def page(self, name: str) -> bytes:
        """An HTML page with `{{url:x}}` and `{{sri:x}}` filled for each asset `x`."""
        text = self.files[name].body.decode()
        for asset, item in self.files.items():
            text = text.replace("{{url:" + asset + "}}", self.url(asset))
            text = text.replace("{{sri:" + asset + "}}", item.integrity)
        return text.encode()

    def find(self, path: str) -> Asset | None:
        """The asset a `/static/<build>/<name>` path names, for this build only."""
        prefix, _, name = path.removeprefix("/static/").partition("/")
        if prefix != self.build or "/" in name:
            return None
        return self.files.get(name)
