"""Lanes: a queue per session and a fair share of the `vm`'s turns per person (no I/O).

A turn sent while its session is busy, or while its person or the whole `vm` is at its
limit, waits in its session's lane instead of being refused.

Theory of operation:
1. A ticket runs when its session runs nothing, its person runs fewer than `per_user`
   turns, and the `vm` runs fewer than `total`. Otherwise it joins the tail of its
   session's lane; its position (1 = next in that session) is reported to the client.
2. A person may have at most `queue_limit` tickets waiting; one more is refused
   (`turn_queue_full`), so a flood is bounded and said, never silently dropped.
3. When a turn ends, freed slots go to people first, then to sessions: among the people
   with a startable ticket, the one running the fewest turns goes next (ties: the one whose
   last start is oldest), and within a person the sessions take turns, each starting the
   head of its lane. One person's flood therefore cannot starve another person (they get
   equal shares of the `vm`'s slots), and one busy session cannot starve its person's
   other sessions. Order within a session is kept.
4. Cancelling removes waiting tickets (one, a session's, or a person's) without them ever
   starting; the caller tells their clients.
5. This object only decides; the gateway starts the tickets it returns, and reports every
   end with `finish` exactly once per started ticket.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

from oxydra.gateway._admission import RefusedError

_NO_LANES: OrderedDict[str, deque[Ticket]] = OrderedDict()  # read-only stand-in


@dataclass(eq=False)
class Ticket:
    """One turn waiting for, or holding, its slot; `payload` is the gateway's own."""

    user_id: str
    session_id: str
    turn_id: str
    payload: Any = None
    started: bool = field(default=False, init=False)


class Lanes:
    """Per-session lanes with fair dispatch (module doc)."""

    def __init__(self, per_user: int, total: int, queue_limit: int) -> None:
        self.per_user, self.total, self.queue_limit = per_user, total, queue_limit
        self.running_total = 0
        self._running_users: dict[str, int] = {}
        self._running_sessions: set[str] = set()
        self._lanes: dict[str, OrderedDict[str, deque[Ticket]]] = {}
        self._people: dict[str, None] = {}  # people with waiting tickets (ordered set)
        self._last_start: dict[str, int] = {}  # person -> number of the last start
        self._starts = 0

    @property
    def waiting(self) -> int:
        """Tickets waiting, all people together."""
        return sum(len(q) for lanes in self._lanes.values() for q in lanes.values())

    def waiting_for(self, user_id: str) -> int:
        """Tickets of one person waiting."""
        return sum(len(q) for q in self._lanes.get(user_id, {}).values())

    def submit(self, ticket: Ticket) -> int:
        """Start the ticket (returns 0) or queue it (returns its position in its session).

        Raises:
            RefusedError: `turn_queue_full`, the person already has `queue_limit` waiting.
        """
        if self._may_start(ticket) and not self._lane(ticket, create=False):
            self._mark_started(ticket)
            return 0
        if self.waiting_for(ticket.user_id) >= self.queue_limit:
            raise RefusedError(
                f"too many queued turns (queue limit: {self.queue_limit})", "turn_queue_full"
            )
        lane = self._lane(ticket, create=True)
        lane.append(ticket)
        self._people[ticket.user_id] = None
        return len(lane)

    def finish(self, ticket: Ticket) -> list[Ticket]:
        """A started ticket ended; returns the tickets that start now (rule 3)."""
        assert ticket.started, "finish of a ticket that never started"
        ticket.started = False
        self.running_total -= 1
        self._running_sessions.discard(ticket.session_id)
        left = self._running_users[ticket.user_id] - 1
        if left:
            self._running_users[ticket.user_id] = left
        else:
            del self._running_users[ticket.user_id]
        return self._dispatch()

    def cancel(self, ticket: Ticket) -> bool:
        """Remove one waiting ticket; False when it is not waiting (running or gone)."""
        lane = self._lanes.get(ticket.user_id, _NO_LANES).get(ticket.session_id)
        if lane is None or ticket not in lane:
            return False
        lane.remove(ticket)
        self._tidy(ticket.user_id, ticket.session_id)
        return True

    def cancel_session(self, user_id: str, session_id: str) -> list[Ticket]:
        """Remove every waiting ticket of a session, oldest first."""
        lanes = self._lanes.get(user_id)
        lane = lanes.pop(session_id, None) if lanes is not None else None
        self._tidy(user_id, None)
        return list(lane or ())

    def cancel_user(self, user_id: str) -> list[Ticket]:
        """Remove every waiting ticket of a person (cancel-all), oldest lane first."""
        lanes = self._lanes.pop(user_id, _NO_LANES)
        self._people.pop(user_id, None)
        return [t for lane in lanes.values() for t in lane]

    def queued(self, session_id: str, user_id: str) -> list[Ticket]:
        """The waiting tickets of a session, in order."""
        return list(self._lanes.get(user_id, _NO_LANES).get(session_id) or ())

    # ---- internals -------------------------------------------------------------------

    def _may_start(self, ticket: Ticket) -> bool:
        return (
            ticket.session_id not in self._running_sessions
            and self._running_users.get(ticket.user_id, 0) < self.per_user
            and self.running_total < self.total
        )

    def _mark_started(self, ticket: Ticket) -> None:
        self._starts += 1
        self._last_start[ticket.user_id] = self._starts
        ticket.started = True
        self.running_total += 1
        self._running_sessions.add(ticket.session_id)
        self._running_users[ticket.user_id] = self._running_users.get(ticket.user_id, 0) + 1

    def _lane(self, ticket: Ticket, *, create: bool) -> deque[Ticket]:
        lanes = self._lanes.get(ticket.user_id)
        if lanes is None:
            if not create:
                return deque()
            lanes = self._lanes[ticket.user_id] = OrderedDict()
        lane = lanes.get(ticket.session_id)
        if lane is None:
            if not create:
                return deque()
            lane = lanes[ticket.session_id] = deque()
        return lane

    def _dispatch(self) -> list[Ticket]:
        started: list[Ticket] = []
        while self.running_total < self.total and self._people:
            ranked = sorted(
                self._people,
                key=lambda u: (self._running_users.get(u, 0), self._last_start.get(u, 0)),
            )
            ticket = next((t for u in ranked if (t := self._next_of(u)) is not None), None)
            if ticket is None:
                break
            started.append(ticket)
        return started

    def _next_of(self, user_id: str) -> Ticket | None:
        """Start the head of the person's next ready lane (sessions round robin)."""
        if self._running_users.get(user_id, 0) >= self.per_user:
            return None
        lanes = self._lanes.get(user_id)
        if not lanes:
            return None
        for session_id in list(lanes):
            if session_id in self._running_sessions:
                continue
            lane = lanes[session_id]
            ticket = lane.popleft()
            lanes.move_to_end(session_id)  # this session waits behind the person's others
            self._mark_started(ticket)
            self._tidy(user_id, session_id)
            return ticket
        return None

    def _tidy(self, user_id: str, session_id: str | None) -> None:
        lanes = self._lanes.get(user_id)
        if lanes is None:
            return
        if session_id is not None and not lanes.get(session_id, True):
            del lanes[session_id]
        if not lanes:
            del self._lanes[user_id]
            self._people.pop(user_id, None)
