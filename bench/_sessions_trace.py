"""A seeded day of Claude Code sessions, drawn from the latency model's session shape.

A developer's day is a list of sessions; a session a list of turns (one user prompt each); a
turn an agent loop of requests. What the trace fixes are the draws: gaps, token counts, counts.
When each request is sent depends on when the previous one was answered (the next request of a
turn follows a tool run after the answer; a turn follows the user's thinking after the turn's
last answer; a session follows the previous one after a gap), so the replay places them.

Each developer draws each day from their own stream (``seed/day/developer``): a team's developer
0 has the same days as a lone developer.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from bench._sessions_assumptions import Assumptions, Lognormal

__all__ = ["DeveloperDay", "Request", "Session", "Turn", "developer_day", "team"]

ARRIVAL_WINDOW_S = 3600.0
"""Developers start their first session at a uniform time within the workday's first hour."""


@dataclass(frozen=True)
class Request:
    added_tokens: int
    """Tokens the prompt grew by since the session's previous request (the previous answer,
    tool results, a new user prompt); 0 for a session's first request."""
    output_tokens: int
    tool_gap_s: float
    """The tool run after this answer, before the turn's next request (unused for the last)."""


@dataclass(frozen=True)
class Turn:
    think_s: float
    """The user's pause before this turn, after the previous turn's last answer."""
    requests: tuple[Request, ...]


@dataclass(frozen=True)
class Session:
    session_id: str
    gap_s: float
    """Before it: after the developer's previous session ended (the first: after the workday
    began)."""
    turns: tuple[Turn, ...]

    @property
    def requests(self) -> int:
        return sum(len(turn.requests) for turn in self.turns)


@dataclass(frozen=True)
class DeveloperDay:
    developer: int
    day: int
    sessions: tuple[Session, ...]


def _lognormal(rng: random.Random, shape: Lognormal) -> float:
    return rng.lognormvariate(math.log(shape.median), shape.sigma)


def _geometric(rng: random.Random, mean: float) -> int:
    """At least 1, with the given mean (trials until the first success, p = 1 / mean)."""
    if mean <= 1:
        return 1
    return 1 + int(math.log(1.0 - rng.random()) / math.log(1.0 - 1.0 / mean))


def developer_day(
    seed: int, developer: int, a: Assumptions, sessions: int | None = None, day: int = 0
) -> DeveloperDay:
    rng = random.Random(f"{seed}/{day}/{developer}")
    drawn = []
    for n in range(sessions or a.sessions_per_developer):
        gap = rng.uniform(0, ARRIVAL_WINDOW_S) if n == 0 else _lognormal(rng, a.session_gap_s)
        turns = []
        for t in range(_geometric(rng, a.turns_per_session_mean)):
            think = 0.0 if t == 0 else _lognormal(rng, a.think_gap_s)
            requests = []
            for r in range(_geometric(rng, a.requests_per_turn_mean)):
                first = t == 0 and r == 0
                added = 0 if first else round(_lognormal(rng, a.tokens_added_per_request))
                output = max(1, round(_lognormal(rng, a.output_tokens_per_request)))
                requests.append(Request(added, output, _lognormal(rng, a.tool_gap_s)))
            turns.append(Turn(think, tuple(requests)))
        drawn.append(Session(f"day{day}-dev{developer}-s{n}", gap, tuple(turns)))
    return DeveloperDay(developer, day, tuple(drawn))


def team(
    seed: int, developers: int, a: Assumptions, sessions: int | None = None, day: int = 0
) -> tuple[DeveloperDay, ...]:
    """One day of a team of `developers` sharing an endpoint."""
    return tuple(developer_day(seed, d, a, sessions, day) for d in range(developers))
