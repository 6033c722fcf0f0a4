"""Session keep-warm: hold a worker through a session's pauses while that is worth its price.

A RunPod worker stops ``idle_timeout`` after its last job and is billed until it stops
(runpod/docs serverless/pricing.mdx: "billed from when a worker starts until it fully stops").
Claude Code's user pauses between turns, often longer than the idle timeout, and the next
prompt then waits for a cold start. While a session is active this policy asks for a ping (a
job that runs no inference) just before the idle timeout would end, which resets it.

How long to hold: a ski-rental rule. After a session's last answer a quiet spell of unknown
length ``g`` follows. Holding the worker for ``h`` seconds (never less than the idle timeout
``I``, which holds it anyway) costs, at the GPU price ``p`` per second::

    cost(h, g) = p * g               if g <= h   (the worker was warm when the prompt came)
               = p * h + B           if g >  h   (released, then a cold start)
               = p * h               if the session never comes back

with ``B = p * S + W`` the price of a cold start: its ``S`` billed start seconds (timed on the
gateway's own warm-ups) and ``W``, what the wait costs: with a hedging fallback, the fallback
dollars a cold start has cost (`ColdStartHedge.episode_usd`); without one, the developer's
wait, ``wait_usd_per_s * S``.

- Before it has seen enough pauses the policy holds ``h = B / p``, clipped to ``[I, max_hold]``:
  it rents until the rent paid equals the purchase price, so a spell costs at most twice what
  the best choice in hindsight would have (the deterministic ski-rental bound).
- Once it has seen ``min_pauses`` spells longer than ``I`` (of any of this gateway's sessions,
  the last ``pause_memory``; a session quiet for ``max_hold`` counts as one that never came
  back), it holds the ``h`` that minimises the summed cost above over those spells. The sum
  rises between observed spells and falls at each, so the best ``h`` is ``I`` or one of them.

Pings stop once a ping's idle timeout would outlast ``h``: the worker stops between ``h + margin``
and ``h + I`` after the session's last answer.

Everything is computable by the gateway: ``p`` from config or the price table, ``S`` and the
pauses from its own clock, ``W`` from the fallback's priced answers.

Gateway calls, per RunPod backend (session = ``X-Claude-Code-Session-Id``), all with ``now`` in
seconds on a monotonic clock (`ccrelay.coldstart.policies.ColdStartPolicies` makes them):

- a request arrives: ``on_request(session, now, self_hosted=...)``; it ends:
  ``on_answer(session, now, self_hosted=...)``; moved to the fallback: ``on_moved_to_fallback``;
- a warm-up timed: ``on_cold_start(seconds)``; the hedge priced one: ``set_cold_penalty(usd)``;
- its timer: ``due(now)`` names the session to ping for (None: no ping), ``next_at(now)`` when
  to ask again; a ping sent: ``on_ping_sent(now)``, its answer ``on_ping_done()``.

What a worker's answers say (it stays up an idle timeout after each) is kept in the shared
`EndpointView`, which the caller updates.
"""

from __future__ import annotations

import bisect
import math
from collections import OrderedDict, deque
from collections.abc import Iterable

from ccrelay.coldstart.endpoint_view import EndpointView
from ccrelay.coldstart.settings import KeepWarmSettings

__all__ = ["SessionKeepWarm", "best_hold"]

_EWMA = 0.3
ENDED = math.inf
"""A quiet spell that outlasted ``max_hold``: the session is taken to have ended."""


def best_hold(
    spells: Iterable[float], *, floor_s: float, cap_s: float, rent: float, buy: float
) -> float:
    """The hold in ``[floor_s, cap_s]`` that minimises the summed cost over observed spells.

    Spells up to `floor_s` cost the same for every hold and are ignored; `ENDED` ones cost the
    rent of the whole hold and no purchase.
    """
    finite = sorted(g for g in spells if floor_s < g <= cap_s)
    longer = sum(1 for g in spells if g > cap_s and g != ENDED)
    ended = sum(1 for g in spells if g == ENDED)
    best_h, best_cost = floor_s, _cost(floor_s, finite, 0, 0.0, longer, ended, rent, buy)
    covered = 0.0
    for i, h in enumerate(finite):
        covered += h
        if i + 1 < len(finite) and finite[i + 1] == h:
            continue
        upto = bisect.bisect_right(finite, h)
        cost = _cost(h, finite, upto, covered, longer, ended, rent, buy)
        if cost < best_cost:
            best_h, best_cost = h, cost
    return best_h


def _cost(
    h: float,
    finite: list[float],
    upto: int,
    covered: float,
    longer: int,
    ended: int,
    rent: float,
    buy: float,
) -> float:
    released = len(finite) - upto + longer
    return rent * covered + (rent * h + buy) * released + rent * h * ended


class _Session:
    __slots__ = ("in_flight", "last_end", "self_in_flight")

    def __init__(self) -> None:
        self.last_end: float | None = None
        self.in_flight = 0
        self.self_in_flight = 0


class SessionKeepWarm:
    def __init__(
        self, settings: KeepWarmSettings, view: EndpointView, gpu_usd_per_s: float
    ) -> None:
        self.settings = settings
        self.view = view
        self.gpu_usd_per_s = gpu_usd_per_s
        self.cold_start_s = settings.cold_start_s
        self.cold_penalty_usd: float | None = None
        self._sessions: OrderedDict[str, _Session] = OrderedDict()
        self._spells: deque[float] = deque(maxlen=settings.pause_memory)
        self._hold_s: float | None = None
        self._ping_sent_at: float | None = None

    # what the gateway reports

    def on_request(self, session_id: str, now: float, *, self_hosted: bool) -> None:
        self._forget_ended(now)
        session = self._sessions.get(session_id)
        if session is None:
            session = self._sessions[session_id] = _Session()
            while len(self._sessions) > self.settings.max_sessions:
                self._sessions.popitem(last=False)
        elif session.in_flight == 0 and session.last_end is not None:
            self._spell(now - session.last_end)
        self._sessions.move_to_end(session_id)
        session.in_flight += 1
        session.self_in_flight += int(self_hosted)

    def on_answer(self, session_id: str, now: float, *, self_hosted: bool) -> None:
        """The request ended; the caller tells the `EndpointView` if a worker answered it."""
        session = self._sessions.get(session_id)
        if session is None:
            return
        session.in_flight = max(0, session.in_flight - 1)
        session.self_in_flight = max(0, session.self_in_flight - int(self_hosted))
        session.last_end = now

    def on_moved_to_fallback(self, session_id: str) -> None:
        """A request sent to the worker was moved to the fallback (a late hedge)."""
        session = self._sessions.get(session_id)
        if session is not None:
            session.self_in_flight = max(0, session.self_in_flight - 1)

    def on_cold_start(self, seconds: float) -> None:
        """A warm-up's time from sending to answer: what a start bills, learned."""
        self.cold_start_s += _EWMA * (seconds - self.cold_start_s)
        self._hold_s = None

    def set_cold_penalty(self, usd: float | None) -> None:
        """What a cold start costs beyond its GPU seconds (None: the developer's wait)."""
        if usd != self.cold_penalty_usd:
            self.cold_penalty_usd = usd
            self._hold_s = None

    def on_ping_sent(self, now: float) -> None:
        self._ping_sent_at = now

    def on_ping_done(self) -> None:
        self._ping_sent_at = None

    # what the policy decides

    def cold_start_usd(self) -> float:
        wait = self.cold_penalty_usd
        if wait is None:
            wait = self.settings.wait_usd_per_s * self.cold_start_s
        return self.gpu_usd_per_s * self.cold_start_s + wait

    def hold_s(self) -> float:
        """Seconds of quiet after a session's last answer that the worker is held for."""
        if self._hold_s is None:
            floor, cap = (
                self.view.idle_timeout_s,
                max(self.view.idle_timeout_s, self.settings.max_hold_s),
            )
            buy = self.cold_start_usd()
            if len(self._spells) >= self.settings.min_pauses:
                self._hold_s = best_hold(
                    self._spells, floor_s=floor, cap_s=cap, rent=self.gpu_usd_per_s, buy=buy
                )
            else:
                self._hold_s = min(cap, max(floor, buy / self.gpu_usd_per_s))
        return self._hold_s

    def hold_until(self) -> float | None:
        """When the last session's hold ends (None: no session holds the worker)."""
        ends = [s.last_end for s in self._sessions.values() if s.last_end is not None]
        busy = any(s.in_flight for s in self._sessions.values())
        if busy:
            return math.inf
        return max(ends) + self.hold_s() if ends else None

    def holding(self, now: float) -> bool:
        until = self.hold_until()
        return self.settings.enabled and until is not None and now < until

    def due(self, now: float) -> str | None:
        """The session to ping for now, if a ping is due (its worker-affinity header is used)."""
        at = self._ping_at(now)
        if at is None or now < at:
            return None
        last = self.view.last_answer_at
        if last is None or now >= last + self.view.idle_timeout_s:
            return None  # the worker is gone: a ping would be a cold start, the hedge's call
        return next(reversed(self._sessions), None)

    def next_at(self, now: float) -> float | None:
        """When `due` may next name a session (None: not before something else happens)."""
        sent = self._ping_sent_at
        if sent is not None and now - sent < self.view.idle_timeout_s:
            return sent + self.view.idle_timeout_s
        at = self._ping_at(now)
        return None if at is None else max(now, at)

    def _ping_at(self, now: float) -> float | None:
        if not self.settings.enabled:
            return None
        sent = self._ping_sent_at
        if sent is not None and now - sent < self.view.idle_timeout_s:
            return None  # one ping at a time; one unanswered for an idle timeout is lost
        if any(s.self_in_flight for s in self._sessions.values()):
            return None  # a running job keeps the worker
        warm_until, hold_until = self.view.warm_until(), self.hold_until()
        if warm_until is None or hold_until is None or warm_until >= hold_until:
            return None
        return warm_until

    def _spell(self, seconds: float) -> None:
        """Only spells past the idle timeout are kept: shorter ones cost the same whatever the
        hold, and would crowd the longer ones out of the memory."""
        if seconds <= self.view.idle_timeout_s:
            return
        self._spells.append(seconds if seconds <= self.settings.max_hold_s else ENDED)
        self._hold_s = None

    def _forget_ended(self, now: float) -> None:
        """Sessions quiet for longer than max_hold have ended: one spell each, then dropped."""
        for session_id, session in list(self._sessions.items()):
            if session.in_flight or session.last_end is None:
                continue
            if now - session.last_end > self.settings.max_hold_s:
                self._spell(ENDED)
                del self._sessions[session_id]
