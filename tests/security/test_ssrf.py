"""Hostile tests for the SSRF guard and the pinned egress client.

No test here can reach the network: names resolve through a stub, and the connector
refuses (and fails the test on) any non-loopback address that is not routed to our own
loopback server.
"""

from __future__ import annotations

import ipaddress
import socket

import pytest

from oxydra.core.errors import PolicyError, ToolError, ToolTimeoutError
from oxydra.security import EgressClient, SsrfGuard, classify, parse_inet_aton
from tests.security.cases_ssrf import (
    ALL_CASES,
    ALLOWLIST_CASES,
    PUBLIC,
    REFERENCE_CASES,
    SequenceResolver,
    SsrfCase,
    StubResolver,
)
from tests.support.net import ForbiddenConnect, LoopbackHTTPServer, LoopbackOnlyConnector, Reply


def _client(case: SsrfCase, connector: LoopbackOnlyConnector) -> EgressClient:
    guard = SsrfGuard(resolver=StubResolver(case.dns), allowlist=case.allowlist)
    return EgressClient(guard, connector=connector, timeout=5)


def test_the_case_table_holds_at_least_sixty_inputs() -> None:
    assert len(ALL_CASES) >= 60
    assert len({c.id for c in ALL_CASES}) == len(ALL_CASES)


class TestCaseTable:
    @pytest.mark.parametrize(
        "case", [c for c in ALL_CASES if c.expect == "block"], ids=lambda c: c.id
    )
    async def test_blocked_input_is_refused_before_any_connect(self, case: SsrfCase) -> None:
        connector = LoopbackOnlyConnector()
        with pytest.raises(PolicyError):
            await _client(case, connector).fetch(case.url)
        assert connector.attempts == []

    @pytest.mark.parametrize(
        "case", [c for c in ALL_CASES if c.expect == "allow"], ids=lambda c: c.id
    )
    async def test_allowed_input_pins_a_vetted_address(self, case: SsrfCase) -> None:
        guard = SsrfGuard(resolver=StubResolver(case.dns), allowlist=case.allowlist)
        target = await guard.vet(case.url)
        assert target.pinned in target.addresses
        assert target.allowlisted == (not classify(ipaddress.ip_address(target.pinned)).public)

    @pytest.mark.parametrize(
        "case",
        [c for c in REFERENCE_CASES if c.expect == "allow"],
        ids=lambda c: c.id,
    )
    async def test_allowed_public_input_connects_only_to_the_pinned_address(
        self, case: SsrfCase
    ) -> None:
        connector = LoopbackOnlyConnector()
        with pytest.raises(ForbiddenConnect) as caught:
            await _client(case, connector).fetch(case.url)
        target = await SsrfGuard(resolver=StubResolver(case.dns)).vet(case.url)
        assert caught.value.host == target.pinned
        assert len(connector.attempts) == 1


class TestGuardDetails:
    async def test_literal_addresses_never_consult_the_resolver(self) -> None:
        resolver = StubResolver()
        guard = SsrfGuard(resolver=resolver)
        for url in ("http://127.1/", "http://[::1]/", "http://8.8.8.8/"):
            try:
                await guard.vet(url)
            except PolicyError:
                pass
        assert resolver.calls == []

    async def test_reserved_names_are_refused_without_resolving(self) -> None:
        resolver = StubResolver({"localhost": ["127.0.0.1"]})
        with pytest.raises(PolicyError, match="reserved"):
            await SsrfGuard(resolver=resolver).vet("http://localhost/")
        assert resolver.calls == []

    async def test_pin_prefers_an_ipv4_answer(self) -> None:
        guard = SsrfGuard(resolver=StubResolver({"dual.test": ["2606:2800:220:1::1", PUBLIC]}))
        target = await guard.vet("http://dual.test/")
        assert target.pinned == PUBLIC and len(target.addresses) == 2

    async def test_ambiguous_spelling_names_the_decoded_address(self) -> None:
        with pytest.raises(PolicyError, match=r"8\.8\.8\.8"):
            await SsrfGuard(resolver=StubResolver()).vet("http://8.8.2056/")

    async def test_deny_if_any_names_the_private_answer(self) -> None:
        guard = SsrfGuard(resolver=StubResolver({"multi.test": ["8.8.8.8", "10.0.0.1"]}))
        with pytest.raises(PolicyError, match=r"10\.0\.0\.1"):
            await guard.vet("http://multi.test/")

    async def test_metadata_wrapped_in_v6_is_reported_as_metadata(self) -> None:
        verdict = classify(ipaddress.ip_address("::ffff:169.254.169.254"))
        assert verdict.kind == "metadata"

    @pytest.mark.parametrize(
        ("address", "kind"),
        [
            ("::ffff:127.0.0.1", "ipv4_embedded"),
            ("100.64.0.1", "cgnat"),
            ("100.100.100.200", "metadata"),
            ("::127.0.0.1", "ipv4_embedded"),
            ("64:ff9b::127.0.0.1", "ipv4_embedded"),
            ("2002:7f00:1::", "ipv4_embedded"),
            ("fec0::1", "site_local"),
            ("224.0.0.1", "multicast"),
            ("192.0.0.192", "metadata"),
            ("192.0.0.8", "reserved"),
            ("2001:db8::1", "documentation"),
            ("4000::1", "reserved"),
            ("2606:4700:4700::1111", "public"),
            ("8.8.8.8", "public"),
        ],
    )
    def test_range_table_covers_the_forms_ipaddress_flags_miss(
        self, address: str, kind: str
    ) -> None:
        assert classify(ipaddress.ip_address(address)).kind == kind

    @pytest.mark.parametrize(
        ("spelling", "decoded"),
        [
            ("127.1", "127.0.0.1"),
            ("0", "0.0.0.0"),
            ("2130706433", "127.0.0.1"),
            ("0x7f000001", "127.0.0.1"),
            ("0x7f.0.0.1", "127.0.0.1"),
            ("0177.0.0.1", "127.0.0.1"),
            ("017700000001", "127.0.0.1"),
            ("012.0.0.1", "10.0.0.1"),
            ("8.8.2056", "8.8.8.8"),
            ("2852039166", "169.254.169.254"),
            ("0xA9FEA9FE", "169.254.169.254"),
            ("0251.0376.0251.0376", "169.254.169.254"),
            ("1.2.3.4.5", None),
            ("256.1.1.1", None),
            ("1.2.65536", None),
            ("08.1.1.1", None),
        ],
    )
    def test_ipv4_literals_decode_as_inet_aton_does(
        self, spelling: str, decoded: str | None
    ) -> None:
        result = parse_inet_aton(spelling)
        assert (str(result) if result else None) == decoded

    @pytest.mark.parametrize("case", ALLOWLIST_CASES, ids=lambda c: c.id)
    async def test_allowlist_opens_only_what_it_names(self, case: SsrfCase) -> None:
        guard = SsrfGuard(resolver=StubResolver(case.dns), allowlist=case.allowlist)
        if case.expect == "allow":
            assert (await guard.vet(case.url)).allowlisted
        else:
            with pytest.raises(PolicyError):
                await guard.vet(case.url)


class TestRebinding:
    async def test_client_connects_to_the_first_vetted_answer_and_resolves_once(self) -> None:
        resolver = SequenceResolver([[PUBLIC], ["127.0.0.1"]])
        connector = LoopbackOnlyConnector()
        client = EgressClient(SsrfGuard(resolver=resolver), connector=connector, timeout=5)
        with pytest.raises(ForbiddenConnect) as caught:
            await client.fetch("http://rebind.test/")
        assert caught.value.host == PUBLIC
        assert resolver.calls == ["rebind.test"]
        assert connector.attempts == [(PUBLIC, 80)]

    async def test_pinned_request_carries_the_name_in_the_host_header(self) -> None:
        async with LoopbackHTTPServer({"/": Reply(200, b"hello")}) as server:
            resolver = SequenceResolver([[PUBLIC], ["127.0.0.1"]])
            connector = LoopbackOnlyConnector({PUBLIC: ("127.0.0.1", server.port)})
            client = EgressClient(SsrfGuard(resolver=resolver), connector=connector, timeout=5)
            response = await client.fetch("http://rebind.test/")
        assert response.content == b"hello"
        assert server.seen[0].headers["host"] == "rebind.test"
        assert resolver.calls == ["rebind.test"]


class TestRedirects:
    @pytest.mark.parametrize(
        ("status", "location"),
        [
            (302, "http://169.254.169.254/latest/meta-data/"),
            (307, "http://127.0.0.1:6379/"),
            (308, "file:///etc/passwd"),
            (301, "//127.0.0.1/"),
            (303, "http://[::ffff:127.0.0.1]/"),
            (302, "http://0x7f.1/"),
        ],
    )
    async def test_each_hop_is_re_vetted(self, status: int, location: str) -> None:
        async with LoopbackHTTPServer({"/r": Reply(status, headers={"location": location})}) as srv:
            connector = LoopbackOnlyConnector({PUBLIC: ("127.0.0.1", srv.port)})
            resolver = StubResolver({"public.test": [PUBLIC]})
            client = EgressClient(SsrfGuard(resolver=resolver), connector=connector, timeout=5)
            with pytest.raises(PolicyError):
                await client.fetch("http://public.test/r")
        assert connector.attempts == [(PUBLIC, 80)]

    async def test_a_chain_longer_than_the_cap_is_refused(self) -> None:
        routes: dict[str, Reply] = {
            f"/h{i}": Reply(302, headers={"location": f"/h{i + 1}"}) for i in range(11)
        }
        async with LoopbackHTTPServer(routes) as srv:  # type: ignore[arg-type]
            connector = LoopbackOnlyConnector({PUBLIC: ("127.0.0.1", srv.port)})
            resolver = StubResolver({"public.test": [PUBLIC]})
            client = EgressClient(SsrfGuard(resolver=resolver), connector=connector, timeout=5)
            with pytest.raises(PolicyError, match="more than 5 redirects"):
                await client.fetch("http://public.test/h0")
        assert len(srv.seen) == 6

    async def test_a_public_hop_is_followed_and_headers_stay_with_their_origin(self) -> None:
        other = "93.184.216.35"
        routes = {
            "/start": Reply(302, headers={"location": "http://other.test/end"}),
            "/end": Reply(200, b"done"),
        }
        async with LoopbackHTTPServer(routes) as srv:  # type: ignore[arg-type]
            connector = LoopbackOnlyConnector(
                {PUBLIC: ("127.0.0.1", srv.port), other: ("127.0.0.1", srv.port)}
            )
            resolver = StubResolver({"public.test": [PUBLIC], "other.test": [other]})
            client = EgressClient(SsrfGuard(resolver=resolver), connector=connector, timeout=5)
            response = await client.fetch(
                "http://public.test/start", headers={"X-Api-Key": "k-123"}
            )
        assert response.content == b"done"
        assert response.redirects == ("http://public.test/start",)
        assert srv.seen[0].headers.get("x-api-key") == "k-123"
        assert "x-api-key" not in srv.seen[1].headers


class TestLoopbackService:
    async def test_allowlisted_loopback_server_is_reachable(self) -> None:
        async with LoopbackHTTPServer({"/x": Reply(200, b"ok")}) as srv:
            guard = SsrfGuard(resolver=StubResolver(), allowlist=[f"127.0.0.1:{srv.port}"])
            client = EgressClient(guard, connector=LoopbackOnlyConnector(), timeout=5)
            response = await client.fetch(srv.url("/x"))
        assert (response.status, response.content) == (200, b"ok")

    async def test_loopback_server_is_refused_without_an_allowlist_entry(self) -> None:
        async with LoopbackHTTPServer({"/x": Reply(200, b"ok")}) as srv:
            client = EgressClient(SsrfGuard(resolver=StubResolver()), timeout=5)
            with pytest.raises(PolicyError, match="loopback"):
                await client.fetch(srv.url("/x"))
        assert srv.seen == []

    async def test_environment_proxy_is_ignored(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("HTTP_PROXY", "http://10.9.9.9:3128")
        monkeypatch.setenv("ALL_PROXY", "http://10.9.9.9:3128")
        async with LoopbackHTTPServer({"/x": Reply(200, b"ok")}) as srv:
            guard = SsrfGuard(resolver=StubResolver(), allowlist=["127.0.0.1"])
            connector = LoopbackOnlyConnector()
            response = await EgressClient(guard, connector=connector, timeout=5).fetch(
                srv.url("/x")
            )
        assert response.content == b"ok"
        assert connector.attempts == [("127.0.0.1", srv.port)]

    async def test_body_beyond_the_cap_is_cut_and_flagged(self) -> None:
        async with LoopbackHTTPServer({"/big": Reply(200, b"a" * 10_000)}) as srv:
            guard = SsrfGuard(resolver=StubResolver(), allowlist=["127.0.0.1"])
            client = EgressClient(guard, connector=LoopbackOnlyConnector(), timeout=5)
            response = await client.fetch(srv.url("/big"), max_bytes=1000)
        assert (len(response.content), response.truncated) == (1000, True)


class TestErrorTranslation:
    async def test_refused_connection_is_a_tool_error_not_an_httpx_error(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        guard = SsrfGuard(resolver=StubResolver(), allowlist=["127.0.0.1"])
        client = EgressClient(guard, connector=LoopbackOnlyConnector(), timeout=5)
        with pytest.raises(ToolError) as caught:
            await client.fetch(f"http://127.0.0.1:{port}/")
        assert type(caught.value).__module__.startswith("oxydra.")

    async def test_slow_server_is_a_tool_timeout(self) -> None:
        async with LoopbackHTTPServer({"/slow": Reply(200, b"late", delay=5)}) as srv:
            guard = SsrfGuard(resolver=StubResolver(), allowlist=["127.0.0.1"])
            client = EgressClient(guard, connector=LoopbackOnlyConnector(), timeout=0.2)
            with pytest.raises(ToolTimeoutError):
                await client.fetch(srv.url("/slow"))
