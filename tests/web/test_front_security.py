"""The page's hostile cases against a real `vm`: CSRF, Origin, Host, rate limit, headers, logs."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from oxydra.testing.fake_llm import FakeLLM
from oxydra.wire import gateway as g
from tests.gateway.support import TOKEN, VmProcess, recv, send


class Page:
    def __init__(self, process: VmProcess, base: str) -> None:
        self.process, self.base = process, base
        self.origin = base.rstrip("/")
        self.host = self.origin.removeprefix("http://")

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base, timeout=20)

    async def sign_in(self, http: httpx.AsyncClient) -> tuple[str, str]:
        res = await http.post(
            "/auth/signin",
            headers={"Authorization": f"Bearer {TOKEN}", "Origin": self.origin},
        )
        assert res.status_code == 200, res.text
        return res.cookies["oxydra_session"], res.json()["csrf_token"]


@pytest.fixture
async def page(tmp_path: Path) -> AsyncIterator[Page]:
    async with FakeLLM() as llm:
        process = VmProcess(tmp_path, llm.base_url)
        endpoint = await process.start()
        yield Page(process, endpoint.replace("ws://", "http://").removesuffix("/ws") + "/")
        if process.proc and process.proc.poll() is None:
            await process.stop()


async def test_the_page_has_a_strict_csp_and_no_inline_script(page: Page) -> None:
    async with page.client() as http:
        res = await http.get("/")
        assert res.status_code == 200
        csp = res.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "default-src 'none'" in csp
        assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        assert res.headers["x-content-type-options"] == "nosniff"
        assert res.headers["cache-control"] == "no-cache"
        scripts = re.findall(r"<script[^>]*>", res.text)
        assert scripts and all("src=" in s and "integrity=" in s for s in scripts)
        assert "style=" not in res.text and " on" not in res.text.replace("\n", " ").lower()
        asset = re.search(r'src="([^"]+app\.js)"', res.text)
        assert asset is not None
        js = await http.get(asset.group(1))
        assert js.status_code == 200 and "immutable" in js.headers["cache-control"]
        assert js.headers["content-type"].startswith("text/javascript")
        assert (await http.get("/static/0000000000000000/app.js")).status_code == 404


async def test_sign_in_sets_an_httponly_strict_cookie_and_never_takes_the_token_in_a_url(
    page: Page,
) -> None:
    async with page.client() as http:
        res = await http.get(f"/?token={TOKEN}")
        assert "set-cookie" not in res.headers
        assert (await http.get("/auth/session")).status_code == 401
        res = await http.post(
            "/auth/signin", headers={"Authorization": f"Bearer {TOKEN}", "Origin": page.origin}
        )
        cookie = res.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
        assert TOKEN not in res.text and TOKEN not in cookie
        assert (await http.get("/auth/session")).json()["user_id"] == "alice"
    log = (page.process.tmp / "vm.err").read_text()
    assert TOKEN not in log and res.cookies["oxydra_session"] not in log


async def test_cross_origin_and_csrf_less_state_changes_are_refused(page: Page) -> None:
    async with page.client() as http:
        evil = {"Authorization": f"Bearer {TOKEN}", "Origin": "http://evil.example"}
        assert (await http.post("/auth/signin", headers=evil)).status_code == 403
        assert (
            await http.post("/auth/signin", headers={"Authorization": f"Bearer {TOKEN}"})
        ).status_code == 403, "a POST without Origin is not the page's"
        _, csrf = await page.sign_in(http)
        own = {"Origin": page.origin}
        assert (await http.post("/auth/signout", headers=own)).status_code == 403
        bad = {**own, "X-CSRF-Token": "forged"}
        assert (await http.post("/auth/signout", headers=bad)).status_code == 403
        cross = {"Origin": "http://evil.example", "X-CSRF-Token": csrf}
        assert (await http.post("/auth/signout", headers=cross)).status_code == 403
        site = {**own, "X-CSRF-Token": csrf, "Sec-Fetch-Site": "cross-site"}
        assert (await http.post("/auth/signout", headers=site)).status_code == 403
        assert (await http.get("/auth/session")).status_code == 200, "still signed in"
        ok = {**own, "X-CSRF-Token": csrf}
        assert (await http.post("/auth/signout", headers=ok)).status_code == 200
        assert (await http.get("/auth/session")).status_code == 401


async def test_a_rebinding_host_is_refused(page: Page) -> None:
    async with page.client() as http:
        res = await http.get("/", headers={"Host": "evil.example:80"})
        assert res.status_code == 421
        res = await http.post(
            "/auth/signin",
            headers={
                "Host": "evil.example",
                "Origin": "http://evil.example",
                "Authorization": f"Bearer {TOKEN}",
            },
        )
        assert res.status_code == 421


async def test_sign_in_is_rate_limited_per_peer(page: Page) -> None:
    async with page.client() as http:
        headers = {"Authorization": "Bearer nope", "Origin": page.origin}
        codes = [(await http.post("/auth/signin", headers=headers)).status_code for _ in range(5)]
        assert codes == [401] * 5
        good = {"Authorization": f"Bearer {TOKEN}", "Origin": page.origin}
        res = await http.post("/auth/signin", headers=good)
        assert res.status_code == 429 and int(res.headers["retry-after"]) > 0
        assert "set-cookie" not in res.headers, "not even the right token is checked"


async def test_the_cookie_opens_ws_only_from_the_pages_own_origin(page: Page) -> None:
    async with page.client() as http:
        cookie, _ = await page.sign_in(http)
    url = page.base.replace("http://", "ws://") + "ws"
    for origin in ("http://evil.example", None):
        headers = {"Cookie": f"oxydra_session={cookie}"}
        with pytest.raises(InvalidStatus) as refused:
            await connect(url, additional_headers=headers, origin=origin)  # type: ignore[arg-type]
        assert refused.value.response.status_code in {401, 403}
    with pytest.raises(InvalidStatus):
        await connect(
            url, additional_headers={"Cookie": "oxydra_session=forged"}, origin=page.origin
        )  # type: ignore[arg-type]
    ws = await connect(
        url,
        additional_headers={"Cookie": f"oxydra_session={cookie}"},
        origin=page.origin,  # type: ignore[arg-type]
    )
    await send(ws, g.Hello(request_id="h", protocol_version=2, user_id="alice"))
    assert isinstance(await recv(ws), g.HelloAck)
    await ws.close()
    ws = await connect(
        url, additional_headers={"Cookie": f"oxydra_session={cookie}"}, origin=page.origin
    )  # type: ignore[arg-type]
    await send(ws, g.Hello(request_id="h", protocol_version=2, user_id="bob"))
    refused_frame = await recv(ws)
    assert isinstance(refused_frame, g.ErrorFrame), "the cookie's user, not the hello's"
    await ws.close()


async def test_the_json_reads_need_a_session_and_refuse_cross_site(page: Page) -> None:
    async with page.client() as http:
        assert (await http.get("/api/schedules")).status_code == 401
        assert (await http.get("/api/trace/abc")).status_code == 401
        await page.sign_in(http)
        assert (await http.get("/api/schedules")).json() == {"schedules": []}
        assert (await http.get("/api/trace/unknown-turn")).status_code == 404
        res = await http.get("/api/schedules", headers={"Sec-Fetch-Site": "cross-site"})
        assert res.status_code == 403
        res = await http.get("/api/schedules", headers={"Host": "evil.example"})
        assert res.status_code == 421


async def test_signing_out_ends_the_browsers_open_connection(page: Page) -> None:
    from websockets.exceptions import ConnectionClosed

    async with page.client() as http:
        cookie, csrf = await page.sign_in(http)
        url = page.base.replace("http://", "ws://") + "ws"
        headers = {"Cookie": f"oxydra_session={cookie}"}
        ws = await connect(url, additional_headers=headers, origin=page.origin)  # type: ignore[arg-type]
        await send(ws, g.Hello(request_id="h", protocol_version=2, user_id="alice"))
        assert isinstance(await recv(ws), g.HelloAck)
        own = {"Origin": page.origin, "X-CSRF-Token": csrf}
        assert (await http.post("/auth/signout", headers=own)).status_code == 200
        await send(ws, g.HealthCheck(request_id="x"))
        with pytest.raises(ConnectionClosed) as closed:
            await recv(ws)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
