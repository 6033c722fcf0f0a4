"""Cold-start hedging: while no worker is ready, a hosted fallback answers and a worker starts.

A prompt sent to a RunPod endpoint with no ready worker waits for a whole cold start (tens of
seconds to minutes). This policy sends it to the fallback at once instead and asks for one
warm-up job (no inference), which starts a worker; the session returns to the self-hosted
backend once that worker is warm for it. "Warm for it" is more than up: a fresh worker's cache
is empty, and a Claude Code prompt of 60k tokens takes half a minute to evaluate, so with
``prefill`` the session's latest prompt is first sent to the worker with ``max_tokens: 1`` (its
answer thrown away), and the session returns when that prefill has answered.

A request already sent to the endpoint moves to the fallback only if, ``hedge_after_s`` after
it was sent, no byte came back and its job is not running (still queued, or waiting for a
worker): a job that runs is never cancelled, its answer is on the way. The gateway then
withdraws the queued job (it never ran) and the warm-up keeps the worker starting.

Whether a worker is ready comes from what the gateway has seen (`EndpointView`): a worker
answered less than an idle timeout ago (a request, a keep-warm ping, a warm-up), or fresh worker
counts from ``/health`` or REST v2 say one is idle or running; fresh counts of none mean cold.
With nothing fresh to go by (a session starting on an endpoint others may keep warm), the
request goes to the endpoint with ``probe_when_unsure`` and the late hedge moves it if it waits;
without, it goes to the fallback.

What each cold start cost in fallback dollars (an episode: from the first prompt sent to the
fallback until every session is back and every fallback answer is in) is kept as
`episode_usd`, the price keep-warm weighs holding a worker against.
"""

from __future__ import annotations

from collections import OrderedDict

from ccrelay.coldstart.endpoint_view import EndpointView
from ccrelay.coldstart.settings import HedgeSettings

__all__ = ["ColdStartHedge"]

_EWMA = 0.3
MAX_SESSIONS = 1024
"""Sessions remembered (their last self-hosted answer; those waiting to return); oldest dropped."""
WARM_UP_LOST_S = 900.0
"""A warm-up unanswered this long is taken as lost and may be sent again (the gateway's own
job deadline normally reports it first)."""


class ColdStartHedge:
    def __init__(self, settings: HedgeSettings, view: EndpointView, *, enabled: bool) -> None:
        self.settings = settings
        self.view = view
        self.enabled = enabled and settings.enabled
        self.warm_up_sent_at: float | None = None
        self._away: OrderedDict[str, float | None] = OrderedDict()
        """Sessions the fallback serves, with when their prefill was sent (None: not yet)."""
        self._served: OrderedDict[str, float] = OrderedDict()
        """When a worker last answered each session (an answer or a prefill)."""
        self._episode: _Episode | None = None
        self.episode_usd: float | None = None
        """What a cold start has cost in fallback dollars (moving average), None before one."""

    def serves_self(self, session_id: str, now: float, prompt_tokens: int | None = None) -> bool:
        """Whether this session's next request goes to the self-hosted backend.

        `prompt_tokens` (an estimate) lets a long prompt that no worker's cache is known to
        hold count as cold too: evaluating it all would keep the user waiting just the same.
        """
        if not self.enabled:
            return True
        if session_id in self._away:
            if self.view.known_warm(now) and not self.settings.prefill:
                self._back(session_id)
                return True
            self._go_away(session_id)
            return False
        long = self.settings.cache_cold_tokens
        big = long is not None and prompt_tokens is not None and prompt_tokens >= long
        if big and not self.cached(session_id, now):
            self._go_away(session_id)
            return False
        if self.view.known_warm(now):
            return True
        ready = self.view.counts_say_ready(now, self.settings.observe_every_s)
        if ready or (ready is None and self._probe()):
            return True
        self._go_away(session_id)
        return False

    def cached(self, session_id: str, now: float) -> bool:
        """A worker has answered this session since the workers were last known cold, and is
        still up: its cache holds the session's prompt (unless other sessions pushed it out)."""
        served = self._served.get(session_id)
        since = self.view.warm_since
        return (
            served is not None
            and since is not None
            and served >= since
            and self.view.known_warm(now)
        )

    def _served_now(self, session_id: str, now: float) -> None:
        self._served[session_id] = now
        self._served.move_to_end(session_id)
        while len(self._served) > MAX_SESSIONS:
            self._served.popitem(last=False)

    def _probe(self) -> bool:
        """Nothing says whether a worker is ready: try the endpoint, the late hedge backs it."""
        return self.settings.probe_when_unsure and self.settings.hedge_after_s is not None

    def late_hedge(self, session_id: str, *, job_running: bool) -> bool:
        """Whether a self-hosted request with no first byte yet moves to the fallback."""
        if not self.enabled or self.settings.hedge_after_s is None or job_running:
            return False
        self._go_away(session_id)
        return True

    def warm_up_due(self, now: float) -> bool:
        """A warm-up is wanted (sessions wait on the fallback, no worker is known warm) and
        none is under way."""
        if not self._away or self.view.known_warm(now):
            return False
        sent = self.warm_up_sent_at
        return sent is None or now - sent >= WARM_UP_LOST_S

    def on_warm_up_sent(self, now: float) -> None:
        self.warm_up_sent_at = now

    def on_warm_up_done(self) -> None:
        self.warm_up_sent_at = None

    def prefills_due(self, now: float) -> list[str]:
        """Sessions whose prompt should now be sent to the warm worker as a prefill."""
        if not (self.settings.prefill and self._away and self.view.known_warm(now)):
            return []
        return [session for session, sent in self._away.items() if sent is None]

    def on_prefill_sent(self, session_id: str, now: float) -> None:
        if session_id in self._away:
            self._away[session_id] = now

    def on_prefill_done(self, session_id: str, now: float, *, ok: bool) -> None:
        if ok:
            self._served_now(session_id, now)
        if session_id not in self._away:
            return
        if ok:
            self._back(session_id)
        else:
            self._away[session_id] = None  # sent again on the next tick

    def on_fallback_answer(self, usd: float) -> None:
        episode = self._episode
        if episode is not None:
            episode.usd += usd
            episode.in_flight -= 1
            self._close_episode()

    def on_self_answer(self, session_id: str, now: float) -> None:
        """The worker answered this session itself."""
        self._served_now(session_id, now)
        if session_id in self._away and not self.settings.prefill:
            self._back(session_id)

    def away(self) -> list[str]:
        return list(self._away)

    def _go_away(self, session_id: str) -> None:
        """The session's request goes to the fallback (the caller sends it there)."""
        if self._episode is None:
            self._episode = _Episode(priced=session_id in self._served)
        self._episode.in_flight += 1
        self._away.setdefault(session_id, None)
        while len(self._away) > MAX_SESSIONS:  # an endpoint that never warms: oldest go back
            self._away.popitem(last=False)

    def _back(self, session_id: str) -> None:
        del self._away[session_id]
        self._close_episode()

    def _close_episode(self) -> None:
        episode = self._episode
        if episode is None or self._away or episode.in_flight > 0:
            return
        self._episode = None
        if not episode.priced:
            return
        if self.episode_usd is None:
            self.episode_usd = episode.usd
        else:
            self.episode_usd += _EWMA * (episode.usd - self.episode_usd)


class _Episode:
    """A cold spell: from the first request sent to the fallback until every session is back
    and every fallback answer is in. Only one that began with a session the worker had served
    before prices a cold start (a new session's first prompt is cold whatever the hold)."""

    def __init__(self, *, priced: bool) -> None:
        self.priced = priced
        self.usd = 0.0
        self.in_flight = 0
