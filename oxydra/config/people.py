"""People across channels: who a Telegram sender (or the gateway's user) is.

Rules (docs/channels.md):
1. A person is a gateway user id: sessions, notes and retrieval are kept per person, so two
   people never see each other's memory. The `vm`'s own user is the person of that id,
   whether or not `[[people]]` lists it.
2. Telegram ids reach a person through `[[people]] telegram = [...]` or a sender entry's
   `person = "..."`. A sender entry without `person` is a person of its own
   (`telegram-<first id>`), never the owner: an allow-list entry is not an identity.
3. One Telegram id belongs to at most one person; a config that maps it to two is refused
   at load, naming both entries.
4. Anyone not reachable this way is unknown: default deny.
"""

from __future__ import annotations

import re

import msgspec

from oxydra.config.runner_schema import Person, UserConfig
from oxydra.core.errors import ConfigError

__all__ = ["People", "PersonView", "check_telegram", "people_from"]

_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class PersonView(msgspec.Struct, frozen=True, kw_only=True):
    """A resolved person: trust decided, limits as configured."""

    id: str
    display_name: str
    trusted: bool
    tools: frozenset[str] | None = None
    max_cost_usd_per_day: float | None = None


class People:
    """The directory of one `vm`'s people."""

    def __init__(self, persons: dict[str, PersonView], telegram: dict[str, str]) -> None:
        self._persons = persons
        self._telegram = telegram

    def get(self, person_id: str) -> PersonView | None:
        """A person by id."""
        return self._persons.get(person_id)

    def by_telegram(self, sender_id: str) -> PersonView | None:
        """The person a Telegram user id belongs to, or None (unknown: deny)."""
        person = self._telegram.get(sender_id)
        return self._persons[person] if person is not None else None

    @property
    def persons(self) -> list[PersonView]:
        """Every person, by id."""
        return [self._persons[k] for k in sorted(self._persons)]


def people_from(owner: str, config: UserConfig, source: str = "users/<id>.toml") -> People:
    """Resolve `[[people]]` and the Telegram senders of `config` for the `vm` of `owner`.

    Raises:
        ConfigError: naming `source`, the key and both entries of a conflict.
    """
    entries: dict[str, tuple[Person, str]] = {}
    for i, person in enumerate(config.people):
        where = f"people[{i}]"
        if not _ID.fullmatch(person.id):
            raise ConfigError(
                f"{source}: {where}.id {person.id!r} must be 1-64 of A-Z a-z 0-9 _ . -"
            )
        if person.id in entries:
            raise ConfigError(f"{source}: {where}.id {person.id!r} repeats {entries[person.id][1]}")
        entries[person.id] = (person, where)
    if owner not in entries:
        entries[owner] = (Person(id=owner), "the vm's user")
    owners: dict[str, tuple[str, str]] = {}  # telegram id -> (person, entry)

    def claim(sender: str, person: str, where: str) -> None:
        sender = sender.strip()
        if not sender:
            raise ConfigError(f"{source}: {where} has an empty Telegram id")
        held = owners.get(sender)
        if held is not None and held[0] != person:
            raise ConfigError(
                f"{source}: Telegram id {sender} is mapped to two people: "
                f"{held[1]} ({held[0]}) and {where} ({person})"
            )
        owners[sender] = (person, where)

    for person_id, (person, where) in entries.items():
        for sender in person.telegram:
            claim(sender, person_id, f"{where}.telegram")
    telegram = config.channels.telegram
    for i, entry in enumerate(telegram.senders if telegram else []):
        where = f"channels.telegram.senders[{i}]"
        if not entry.platform_ids or not any(p.strip() for p in entry.platform_ids):
            raise ConfigError(f"{source}: {where}.platform_ids needs at least one id")
        person_id = entry.person or f"telegram-{entry.platform_ids[0].strip()}"
        if entry.person is not None and entry.person not in entries:
            raise ConfigError(f"{source}: {where}.person {entry.person!r} is not in [[people]]")
        if person_id not in entries:
            entries[person_id] = (Person(id=person_id, display_name=entry.display_name), where)
        for sender in entry.platform_ids:
            claim(sender, person_id, where)
    persons = {pid: _view(owner, p) for pid, (p, _) in entries.items()}
    return People(persons, {sender: held[0] for sender, held in owners.items()})


def _view(owner: str, person: Person) -> PersonView:
    return PersonView(
        id=person.id,
        display_name=person.display_name or person.id,
        trusted=person.trusted if person.trusted is not None else person.id == owner,
        tools=frozenset(person.tools) if person.tools is not None else None,
        max_cost_usd_per_day=person.max_cost_usd_per_day,
    )


def check_telegram(config: UserConfig, source: str = "users/<id>.toml") -> None:
    """Upstream's rules for `[channels.telegram]`: enabled needs a token variable and a sender.

    Raises:
        ConfigError: naming the key.
    """
    telegram = config.channels.telegram
    if telegram is None or not telegram.enabled:
        return
    if not telegram.bot_token_env:
        raise ConfigError(f"{source}: channels.telegram.bot_token_env is required when enabled")
    if not telegram.senders and not any(p.telegram for p in config.people):
        raise ConfigError(
            f"{source}: channels.telegram is enabled but no sender is allowed "
            "(add [[channels.telegram.senders]] or [[people]] telegram = [...])"
        )
    for i, entry in enumerate(telegram.senders):
        if entry.display_name is not None and not entry.display_name.strip():
            raise ConfigError(f"{source}: channels.telegram.senders[{i}].display_name is empty")
