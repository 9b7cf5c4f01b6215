"""`runner web`: the REST API under /api/v1 (envelopes, edits, secrets, CSRF, auth)."""

from __future__ import annotations

import asyncio
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from oxydra.config.runner_schema import RunnerWeb
from oxydra.core.errors import RunnerError
from oxydra.web._http import loopback_hosts
from oxydra.web._server import serve_http
from oxydra.web.configurator import Configurator, Setup
from oxydra.web.runweb import plan_bind

RUNNER = """workspace_root = "ws"
default_tier = "process"

[users.alice]
config_path = "users/alice.toml"
"""
AGENT = """[runtime]
max_turns = 7

[providers.registry.openai]
provider_type = "openai"
api_key = "sk-secret-123"
"""


class Api:
    def __init__(self, base: str, dirpath: Path, configurator: Configurator) -> None:
        self.base, self.dir, self.configurator = base, dirpath, configurator
        self.origin = base.rstrip("/")
        self.http = httpx.AsyncClient(base_url=base, timeout=20)
        self.launched: list[list[str]] = []


async def start(tmp_path: Path, token: str | None = None) -> tuple[Api, Any]:
    conf = tmp_path / ".oxydra"  # as ./.oxydra: one of the agent loader's directories
    (conf / "users").mkdir(parents=True)
    (conf / "runner.toml").write_text(RUNNER)
    (conf / "agent.toml").write_text(AGENT)
    (conf / "users" / "alice.toml").write_text('[behavior]\ntimezone = "UTC"\n')
    launched: list[list[str]] = []

    def launcher(argv: list[str]) -> int:
        launched.append(argv)
        return 4242

    configurator = Configurator(
        Setup(conf / "runner.toml", insecure_tier=True, token=token, home=tmp_path / "home"),
        set(),
        launcher=launcher,
    )
    server = await serve_http(configurator.handle, "127.0.0.1", 0)
    port = server.address[1]
    configurator.hosts = loopback_hosts(port)
    api = Api(f"http://127.0.0.1:{port}/", conf, configurator)
    api.launched = launched
    return api, server


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    api, server = await start(tmp_path)
    yield api
    await api.http.aclose()
    await server.close()


async def csrf(api: Api) -> dict[str, str]:
    res = await api.http.get("/api/v1/auth/session")
    return {"X-CSRF-Token": res.json()["data"]["csrf_token"], "Origin": api.origin}


async def test_answers_use_the_rust_envelopes(api: Api) -> None:
    res = await api.http.get("/api/v1/meta")
    body = res.json()
    assert res.status_code == 200 and set(body) == {"data", "meta"}
    assert body["meta"]["request_id"] and body["data"]["paths"]["agent_config"].endswith(
        "agent.toml"
    )
    assert body["data"]["host"]["memory_mib"] > 0
    res = await api.http.get("/api/v1/nowhere")
    assert res.status_code == 404 and res.json()["error"]["code"] == "not_found"
    assert (await api.http.delete("/api/v1/meta")).json()["error"]["code"] == "method_not_allowed"
    assert "content-security-policy" in res.headers
    users = (await api.http.get("/api/v1/config/users")).json()["data"]
    assert users == [{"user_id": "alice", "config_path": "users/alice.toml"}]
    status = (await api.http.get("/api/v1/status/alice")).json()["data"]
    assert status["user_id"] == "alice" and status["running"] is False
    models = (await api.http.get("/api/v1/catalog")).json()["data"]["models"]
    assert any(m["cost"] for m in models), "prices from the pinned catalog"
    onboarding = (await api.http.get("/api/v1/onboarding/status")).json()["data"]
    assert onboarding["providers_with_keys"] == ["openai"] and onboarding["users"] == ["alice"]


async def test_a_bad_type_is_refused_with_its_field_and_the_file_is_unchanged(api: Api) -> None:
    agent = api.dir / "agent.toml"
    before = agent.read_bytes()
    headers = await csrf(api)
    res = await api.http.patch(
        "/api/v1/config/agent", json={"runtime": {"max_turns": "lots"}}, headers=headers
    )
    assert res.status_code == 422
    error = res.json()["error"]
    assert error["code"] == "invalid_config"
    assert [d["field"] for d in error["details"]] == ["runtime.max_turns"]
    assert agent.read_bytes() == before and not list(api.dir.glob("agent.toml.bak-*"))
    res = await api.http.patch(
        "/api/v1/config/agent", json={"runtime": {"max_turns": 12}}, headers=headers
    )
    data = res.json()["data"]
    assert res.status_code == 200 and data["written"]
    assert tomllib.loads(agent.read_text())["runtime"]["max_turns"] == 12
    backups = list(api.dir.glob("agent.toml.bak-*"))
    assert len(backups) == 1 and backups[0].read_bytes() == before
    assert "-max_turns = 7" in data["diff"] and "+max_turns = 12" in data["diff"]


async def test_secrets_are_masked_out_and_a_masked_value_sent_back_keeps_the_secret(
    api: Api,
) -> None:
    got = (await api.http.get("/api/v1/config/agent")).json()["data"]
    assert got["providers"]["registry"]["openai"]["api_key"] == "********"
    effective = (await api.http.get("/api/v1/config/agent/effective")).text
    res = await api.http.patch("/api/v1/config/agent", json=got, headers=await csrf(api))
    assert res.status_code == 200, res.text
    assert "sk-secret-123" not in res.text and "sk-secret-123" not in effective
    stored = tomllib.loads((api.dir / "agent.toml").read_text())
    assert stored["providers"]["registry"]["openai"]["api_key"] == "sk-secret-123"
    validate = await api.http.post(
        "/api/v1/config/agent/validate", json={"runtime": {"max_turns": 0}}, headers=await csrf(api)
    )
    assert validate.status_code == 422, "dry run checks the same schema"


async def test_browser_state_changes_need_the_own_origin_and_csrf_token(api: Api) -> None:
    patch = {"runtime": {"max_turns": 9}}
    good = await csrf(api)
    for headers in (
        {"Origin": api.origin},
        {"Origin": api.origin, "X-CSRF-Token": "forged"},
        {"Origin": "http://evil.example", "X-CSRF-Token": good["X-CSRF-Token"]},
        {**good, "Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    ):
        res = await api.http.patch("/api/v1/config/agent", json=patch, headers=headers)
        assert res.status_code == 403, headers
    res = await api.http.get("/api/v1/meta", headers={"Host": "evil.example"})
    assert res.status_code == 421, "DNS rebinding"
    res = await api.http.post(
        "/api/v1/control/alice/start", headers={"Origin": "http://evil.example"}
    )
    assert res.status_code == 403 and api.launched == []
    assert tomllib.loads((api.dir / "agent.toml").read_text())["runtime"]["max_turns"] == 7


async def test_users_are_created_and_guests_controlled(api: Api) -> None:
    headers = await csrf(api)
    res = await api.http.post(
        "/api/v1/config/users",
        json={"user_id": "bob", "config": {"behavior": {"timezone": "Europe/Paris"}}},
        headers=headers,
    )
    assert res.status_code == 200, res.text
    runner = tomllib.loads((api.dir / "runner.toml").read_text())
    assert runner["users"]["bob"] == {"config_path": "users/bob.toml"}
    assert (await api.http.get("/api/v1/config/users/bob")).json()["data"]["behavior"]
    bad = await api.http.post("/api/v1/config/users", json={"user_id": "../x"}, headers=headers)
    assert bad.status_code == 422
    res = await api.http.post("/api/v1/control/bob/restart", headers=headers)
    assert res.json()["data"]["pid"] == 4242
    assert api.launched == [
        ["--config", str(api.dir / "runner.toml"), "--user", "bob", "--insecure", "restart"]
    ]
    assert (await api.http.post("/api/v1/control/nobody/start", headers=headers)).status_code == 404
    logs = (await api.http.get("/api/v1/logs/alice?tail=5")).json()["data"]
    assert logs["entries"] == []


async def test_token_mode_needs_a_session_or_bearer_and_limits_guesses(tmp_path: Path) -> None:
    api, server = await start(tmp_path, token="operator-token-1234")
    try:
        assert (await api.http.get("/api/v1/meta")).status_code == 401
        bearer = {"Authorization": "Bearer operator-token-1234"}
        assert (await api.http.get("/api/v1/meta", headers=bearer)).status_code == 200
        res = await api.http.patch(
            "/api/v1/config/agent", json={"runtime": {"max_turns": 8}}, headers=bearer
        )
        assert res.status_code == 200, "a script with the token needs no CSRF token"
        wrong = {"Authorization": "Bearer nope", "Origin": api.origin}
        codes = [
            (await api.http.post("/api/v1/auth/signin", headers=wrong)).status_code
            for _ in range(6)
        ]
        assert codes == [401] * 5 + [429]
    finally:
        await api.http.aclose()
        await server.close()


def test_a_non_loopback_bind_needs_tls_or_insecure_http_and_a_token() -> None:
    web = RunnerWeb()
    with pytest.raises(RunnerError, match="tls_cert_file"):
        plan_bind(web, "0.0.0.0:9400", insecure_http=False, token="t")
    with pytest.raises(RunnerError, match="auth_mode"):
        plan_bind(web, "0.0.0.0:9400", insecure_http=True, token=None)
    assert plan_bind(web, "0.0.0.0:9400", insecure_http=True, token="t") == ("0.0.0.0", 9400, False)
    tls = RunnerWeb(tls_cert_file="c.pem", tls_key_file="k.pem")
    assert plan_bind(tls, "[::]:1", insecure_http=False, token="t")[2] is True
    assert plan_bind(web, "127.0.0.1:0", insecure_http=False, token=None) == ("127.0.0.1", 0, False)


async def test_the_server_refuses_an_oversized_body(api: Api) -> None:
    res = await api.http.patch(
        "/api/v1/config/agent",
        content=b"{" + b" " * (2 << 20) + b"}",
        headers={"Content-Type": "application/json"},
    )
    assert res.status_code == 413
    await asyncio.sleep(0)


async def test_logs_are_followed_as_server_sent_events(api: Api) -> None:
    logs = api.dir / "ws" / "alice" / "logs"
    logs.mkdir(parents=True)
    log = logs / "oxydra-vm.stderr.log"
    log.write_text("2026-12-03T09:00:00Z first line\n")
    async with api.http.stream("GET", "/api/v1/logs/alice?follow=1") as res:
        assert res.headers["content-type"] == "text/event-stream"
        lines = res.aiter_lines()
        first = await asyncio.wait_for(anext(lines), 20)
        assert first.startswith("data: ") and "first line" in first
        with log.open("a") as fh:
            fh.write("2026-12-03T09:00:01Z second line\n")
        events = []
        while not any("second line" in e for e in events):
            events.append(await asyncio.wait_for(anext(lines), 20))
        assert not any("first line" in e for e in events), "a line is sent once"


async def test_onboarding_saves_a_first_key_that_is_never_shown_again(api: Api) -> None:
    agent = api.dir / "agent.toml"
    agent.write_text("[runtime]\nmax_turns = 7\n")
    status = (await api.http.get("/api/v1/onboarding/status")).json()["data"]
    assert status["providers_with_keys"] == []
    entry = {"provider_type": "anthropic", "api_key": "sk-ant-new-key"}
    res = await api.http.patch(
        "/api/v1/config/agent",
        json={"providers": {"registry": {"anthropic": entry}}},
        headers=await csrf(api),
    )
    assert res.status_code == 200 and "sk-ant-new-key" not in res.text
    status = (await api.http.get("/api/v1/onboarding/status")).json()["data"]
    assert status["providers_with_keys"] == ["anthropic"]
    shown = (await api.http.get("/api/v1/config/agent")).text
    assert "sk-ant-new-key" not in shown and "********" in shown


async def test_agent_edits_are_checked_as_the_loader_sees_every_file(api: Api) -> None:
    headers = await csrf(api)
    res = await api.http.patch(
        "/api/v1/config/agent", json={"selection": {"provider": "local"}}, headers=headers
    )
    assert res.status_code == 422, "names no registry entry"
    assert [d["field"] for d in res.json()["error"]["details"]] == ["selection.provider"]
    (api.dir / "providers.toml").write_text(
        '[providers.registry.local]\nprovider_type = "openai"\nbase_url = "http://127.0.0.1:1"\n'
    )
    res = await api.http.patch(
        "/api/v1/config/agent", json={"selection": {"provider": "local"}}, headers=headers
    )
    assert res.status_code == 200, "defined in providers.toml beside it, as at start-up"


async def test_over_tls_the_cookie_is_secure_and_plain_http_gets_no_answer(tmp_path: Path) -> None:
    import shutil
    import ssl
    import subprocess

    from oxydra.web.runweb import tls_context

    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    conf = tmp_path / ".oxydra"
    conf.mkdir()
    (conf / "runner.toml").write_text(RUNNER)
    setup = Setup(conf / "runner.toml", token="operator-token-1234", secure=True, home=tmp_path)
    configurator = Configurator(setup, set())
    server = await serve_http(
        configurator.handle, "127.0.0.1", 0, ssl=tls_context(str(cert), str(key))
    )
    port = server.address[1]
    configurator.hosts = loopback_hosts(port)
    origin = f"https://127.0.0.1:{port}"
    try:
        trust = ssl.create_default_context(cafile=str(cert))
        async with httpx.AsyncClient(base_url=origin, verify=trust, timeout=20) as http:
            res = await http.post(
                "/api/v1/auth/signin",
                headers={"Authorization": "Bearer operator-token-1234", "Origin": origin},
            )
            assert res.status_code == 200
            assert "; Secure" in res.headers["set-cookie"]
        async with httpx.AsyncClient(timeout=5) as plain:
            with pytest.raises(httpx.HTTPError):
                await plain.get(f"http://127.0.0.1:{port}/api/v1/meta")
    finally:
        await server.close()
    with pytest.raises(RunnerError, match="tls_cert_file"):
        tls_context(str(tmp_path / "missing.pem"), str(key))


async def test_catalog_refresh_downloads_into_the_user_cache_or_says_why_not(api: Api) -> None:
    from oxydra.catalog import pinned_bytes
    from oxydra.testing.fake_llm import FakeLLM

    headers = {**await csrf(api), "Content-Type": "application/json"}
    async with FakeLLM() as server:
        server.add_route("/api.json", pinned_bytes())
        agent = api.dir / "agent.toml"
        agent.write_text(agent.read_text() + f'\n[catalog]\nurl = "{server.base_url}/api.json"\n')
        res = await api.http.post("/api/v1/catalog/refresh", json={}, headers=headers)
        assert res.status_code == 200, res.text
        data = res.json()["data"]
        assert data["models"] > 0 and data["target"].startswith(str(api.dir.parent / "home"))
    status = (await api.http.get("/api/v1/catalog/status")).json()["data"]
    assert status["source"] == "user cache" and status["cached_at"]
    res = await api.http.post("/api/v1/catalog/refresh", json={}, headers=headers)
    assert res.status_code == 502 and res.json()["error"]["code"] == "catalog_unavailable"
    res = await api.http.post("/api/v1/catalog/refresh", json={"pinned": True}, headers=headers)
    assert res.status_code == 422, "no [catalog] pinned_url"
