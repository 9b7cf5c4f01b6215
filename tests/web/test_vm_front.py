"""Whether `vm` serves the page: loopback by default, elsewhere only when told."""

from __future__ import annotations

from oxydra.app.vm import _web_front
from oxydra.config.schema import AgentConfig, GatewayConfig
from oxydra.web import WebFront


def config(**gateway: object) -> AgentConfig:
    return AgentConfig(gateway=GatewayConfig(**gateway))  # type: ignore[arg-type]


def test_the_page_is_served_on_loopback_and_can_be_turned_off() -> None:
    assert isinstance(_web_front(config(), {"t": "u"}, "127.0.0.1", None).front, WebFront)
    assert isinstance(_web_front(config(), {"t": "u"}, "[::1]", None).front, WebFront)
    assert _web_front(config(web=False), {"t": "u"}, "127.0.0.1", None) is None


def test_a_non_loopback_bind_serves_no_page_unless_insecure_http_is_set() -> None:
    assert _web_front(config(), {"t": "u"}, "0.0.0.0", None) is None
    front = _web_front(config(web_insecure_http=True), {"t": "u"}, "0.0.0.0", None)
    assert isinstance(front.front, WebFront)


def test_the_page_is_built_at_first_use_with_the_address_bound_before() -> None:
    front = _web_front(config(), {"t": "u"}, "127.0.0.1", None)
    front.bind("127.0.0.1", 8080, ["https://chat.example.org"])
    assert front._front is None, "built before anyone asked for the page"
    assert front.front.hosts == {
        "127.0.0.1:8080",
        "localhost:8080",
        "[::1]:8080",
        "chat.example.org",
    }


def test_bind_answers_to_loopback_names_and_configured_origins() -> None:
    front = WebFront({"t": "u"}, ())
    front.bind("127.0.0.1", 8080, ["https://chat.example.org"])
    assert front.hosts == {
        "127.0.0.1:8080",
        "localhost:8080",
        "[::1]:8080",
        "chat.example.org",
    }
    front.bind("10.0.0.5", 9000)
    assert front.hosts == {"10.0.0.5:9000"}
