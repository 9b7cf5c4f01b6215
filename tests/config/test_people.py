"""People across channels: who a Telegram sender is, and configs that cannot work."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from oxydra.config.people import check_telegram, people_from
from oxydra.config.runner_schema import UserConfig
from oxydra.core.errors import ConfigError


def _config(**data: Any) -> UserConfig:
    return msgspec.convert(data, UserConfig)


def _telegram(*senders: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"telegram": {"enabled": True, "bot_token_env": "T", "senders": list(senders), **extra}}


def test_an_upstream_config_still_loads() -> None:
    config = _config(
        config_version="1.0.1",
        channels=_telegram({"platform_ids": ["111", "112"], "display_name": "Me"}),
    )
    check_telegram(config)
    people = people_from("alice", config)
    me = people.by_telegram("112")
    assert me is not None and me.id == "telegram-111" and me.display_name == "Me"
    assert not me.trusted, "an allow-list entry is not the owner unless it says so"
    assert people.by_telegram("999") is None


def test_a_sender_linked_to_the_owner_is_the_owner_and_trusted() -> None:
    config = _config(channels=_telegram({"platform_ids": ["111"], "person": "alice"}))
    alice = people_from("alice", config).by_telegram("111")
    assert alice is not None and alice.id == "alice" and alice.trusted


def test_people_carry_their_limits() -> None:
    config = _config(
        people=[
            {"id": "alice", "telegram": ["111"]},
            {"id": "guest", "telegram": ["222"], "tools": ["web_search"],
             "max_cost_usd_per_day": 0.5},
        ],
        channels=_telegram(),
    )  # fmt: skip
    guest = people_from("alice", config).by_telegram("222")
    assert guest is not None and guest.tools == frozenset({"web_search"})
    assert guest.max_cost_usd_per_day == 0.5 and not guest.trusted


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"people": [{"id": "alice", "telegram": ["111"]}, {"id": "bob", "telegram": ["111"]}]},
            "Telegram id 111 is mapped to two people: people[0].telegram (alice) and "
            "people[1].telegram (bob)",
        ),
        (
            {"people": [{"id": "bob"}],
             "channels": _telegram({"platform_ids": ["5"], "person": "bob"},
                                   {"platform_ids": ["5"], "person": "alice"})},
            "Telegram id 5 is mapped to two people: channels.telegram.senders[0] (bob) and "
            "channels.telegram.senders[1] (alice)",
        ),
        ({"channels": _telegram({"platform_ids": ["5"], "person": "carol"})},
         "channels.telegram.senders[0].person 'carol' is not in [[people]]"),
        ({"people": [{"id": "a b"}]}, "people[0].id 'a b' must be"),
        ({"people": [{"id": "x"}, {"id": "x"}]}, "people[1].id 'x' repeats people[0]"),
        ({"channels": _telegram({"platform_ids": [" "]})}, "needs at least one id"),
    ],
)  # fmt: skip
def test_configs_that_cannot_work_are_refused_naming_the_entries(
    data: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=r"users/alice\.toml") as caught:
        people_from("alice", _config(**data), "users/alice.toml")
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("telegram", "message"),
    [
        ({"enabled": True, "senders": [{"platform_ids": ["1"]}]}, "bot_token_env is required"),
        ({"enabled": True, "bot_token_env": "T"}, "no sender is allowed"),
    ],
)
def test_telegram_enabled_needs_a_token_variable_and_a_sender(
    telegram: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        check_telegram(_config(channels={"telegram": telegram}))


def test_unknown_keys_are_refused() -> None:
    with pytest.raises(msgspec.ValidationError, match="pollling"):
        _config(channels={"telegram": {"pollling_timeout_secs": 3}})
