"""Interactive latency at scale-to-zero cost: days of Claude Code sessions, replayed.

Run through ``python -m bench sessions`` (``--quick``, ``--seed N``, ``--assumptions PATH``,
``--json``). It draws seeded days of Claude Code sessions (`bench._sessions_trace`) for each
team size the latency model names (1 and 5 developers sharing one endpoint), and replays them in
simulated time (`bench._sessions_replay`) against a model of a RunPod endpoint
(`bench._sessions_endpoint`), once per policy:

- ``none``: plain scale to zero, a queue endpoint;
- ``always_on``: a minimum worker at the active price, billed all day;
- ``keep_warm``, ``hedge``: each policy of `ccrelay.coldstart` alone, on a queue endpoint;
- ``affinity``: a load-balancing endpoint, each session pinned to its worker (soft);
- ``all``: the three together, as a gateway runs them; the goals are judged on it.

The gateway in the replay drives `ccrelay.coldstart.ColdStartPolicies`, the objects the real
gateway runs, with their default settings, the endpoint's idle timeout and the GPU's flex price.
Every run is repeated with ``prompt_eval_tokens_per_s`` and ``model_load_s`` at the file's low
and high ends, one at a time.

Every figure comes from the project's latency model (by default the one in the shared folder
beside the checkout; ``--assumptions PATH`` names another). What it leaves open is decided
here, and named:

- each developer runs their own gateway (``ccrelay code``), so a team's gateways know only
  their own answers and the endpoint's worker counts;
- developers start within the workday's first hour; each day starts on an endpoint at zero;
- ``tokens_added_per_request`` is the whole growth of the prompt (the previous answer, tool
  results, the user's words); a slot caches the prompt it served, which shares nothing with
  another session's; the compaction request itself is not replayed;
- a worker starts when waiting requests outnumber the slots of workers already starting; a
  queue endpoint gives a job to a random ready worker with a free slot; ``queue_pick_up_s``
  applies to load-balanced requests too; the load balancer's two-minute wait is not enforced;
- a worker evaluates one prompt at a time, and generates in every busy slot at the full rate;
- the fallback generates at the self-hosted rate (the file gives only its time to first token);
- an always-on worker is billed for 24 hours a day.

Exit code 1 when a goal is missed, as the other benchmarks.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from bench._sessions_assumptions import MOVABLE, Assumptions, default_path, load
from bench._sessions_replay import Outcome, PolicySetup, policy_setups, replay
from bench._sessions_report import Goal, QueueLoss, Report, Run
from bench._sessions_trace import DeveloperDay, team
from bench._table import Row, nearest_rank

__all__ = ["DEFAULT_SEED", "GOAL_POLICY", "POLICY_NAMES", "Report", "measure", "rows"]

DEFAULT_SEED = 22
DAYS = 10
"""Days replayed and pooled: one day of six sessions is too few to judge a p95 or a cost by."""
QUICK_SESSIONS = 2
"""With ``--quick``: one day of this many sessions per developer."""
POLICY_NAMES = ("none", "always_on", "keep_warm", "hedge", "affinity", "all")
GOAL_POLICY = "all"


def summarise(
    developers: int,
    policy: str,
    out: Outcome,
    moved: tuple[str, str, float] | None = None,
) -> Run:
    served = out.requests
    per_day = 1 / out.days
    by_self = [r for r in served if r.backend == "self"]
    ttft = [r.ttft_s for r in served]
    fallback_usd = sum(r.fallback_usd for r in served) * per_day
    anthropic_usd = sum(r.anthropic_usd for r in served) * per_day
    prompt_self = sum(r.prompt_tokens for r in by_self)
    gpu_usd = out.gpu_usd * per_day
    cost = gpu_usd + fallback_usd
    return Run(
        developers=developers,
        policy=policy,
        assumption=moved[1] if moved else "central",
        moved=moved[0] if moved else None,
        moved_value=moved[2] if moved else None,
        requests=round(len(served) * per_day),
        p50_ttft_s=nearest_rank(ttft, 0.5),
        p95_ttft_s=nearest_rank(ttft, 0.95),
        cold_wait_share=sum(r.cold_wait for r in served) / len(served),
        fallback_share=1 - len(by_self) / len(served),
        kv_hit_share=sum(r.cached_tokens for r in by_self) / prompt_self if prompt_self else 0.0,
        evaluated_mtok=(prompt_self - sum(r.cached_tokens for r in by_self) + out.prefill_tokens)
        * per_day
        / 1e6,
        placed_among_several_share=out.placed_among_several / out.placed if out.placed else 0.0,
        gpu_seconds=out.flex_seconds * per_day,
        gpu_usd=gpu_usd,
        fallback_mtok=sum(
            r.prompt_tokens + r.output_tokens for r in served if r.backend == "fallback"
        )
        * per_day
        / 1e6,
        fallback_usd=fallback_usd,
        cost_usd=cost,
        anthropic_usd=anthropic_usd,
        cost_vs_anthropic=cost / anthropic_usd,
    )


def _with_always_on(runs: list[Run]) -> list[Run]:
    """Each run's cost against the always-on run of the same team and assumption."""
    always = {
        (r.developers, r.moved, r.assumption): r.cost_usd for r in runs if r.policy == "always_on"
    }
    return [
        dataclasses.replace(
            r, cost_vs_always_on=r.cost_usd / always[(r.developers, r.moved, r.assumption)]
        )
        for r in runs
    ]


def _goals(a: Assumptions, runs: list[Run]) -> list[Goal]:
    goals = []
    for developers in a.developers:
        central = [r for r in runs if r.developers == developers and r.moved is None]
        judged = next(r for r in central if r.policy == GOAL_POLICY)
        ends = [
            r
            for r in runs
            if r.developers == developers and r.policy == GOAL_POLICY and r.moved is not None
        ]
        targets = [("p95_ttft_s", a.goal_p95_ttft_s)]
        if developers in a.goal_cost_vs_anthropic:
            targets.append(("cost_vs_anthropic", a.goal_cost_vs_anthropic[developers]))
        for measure_name, target in targets:
            goals.append(Goal.judge(developers, measure_name, target, judged, central, ends))
    return goals


def _queue_loss(a: Assumptions, runs: list[Run], queue_all: dict[int, Run]) -> list[QueueLoss]:
    losses = []
    for developers in a.developers:
        central = {r.policy: r for r in runs if r.developers == developers and r.moved is None}
        losses.append(QueueLoss(developers, "none", central["none"], central["affinity"]))
        losses.append(QueueLoss(developers, "all", queue_all[developers], central["all"]))
    return losses


def _replay_days(
    trace: list[tuple[DeveloperDay, ...]], a: Assumptions, setup: PolicySetup, seed: int
) -> Outcome:
    return Outcome.merge([replay(team_day, a, setup, seed) for team_day in trace])


def measure(
    a: Assumptions,
    seed: int = DEFAULT_SEED,
    *,
    days: int = DAYS,
    sessions: int | None = None,
    quick: bool = False,
) -> Report:
    """Every policy for every team size, at the central assumptions and each moved one.

    `days` independent days are replayed (each on an endpoint scaled to zero overnight) and
    pooled: percentiles over all their requests, money and hours per day. `sessions` overrides
    the file's sessions per developer per day.
    """
    setups = policy_setups(a)
    variants: list[tuple[Assumptions, tuple[str, str, float] | None]] = [(a, None)]
    for name in MOVABLE:
        for end in ("low", "high"):
            moved = a.moved(name, end)
            variants.append((moved, (name, end, getattr(moved, name))))
    runs: list[Run] = []
    queue_all: dict[int, Run] = {}
    for developers in a.developers:
        trace = [team(seed, developers, a, sessions, day) for day in range(days)]
        for assumptions, moved in variants:
            for policy in POLICY_NAMES:
                out = _replay_days(trace, assumptions, setups[policy], seed)
                runs.append(summarise(developers, policy, out, moved))
        queue_setup = dataclasses.replace(setups["all"], load_balanced=False)
        queue_all[developers] = summarise(
            developers, "all", _replay_days(trace, a, queue_setup, seed)
        )
    runs = _with_always_on(runs)
    return Report(
        seed=seed,
        days=days,
        source=a.source,
        quick=quick,
        goal_policy=GOAL_POLICY,
        runs=runs,
        goals=_goals(a, runs),
        queue_loss=_queue_loss(a, runs, queue_all),
    )


def report(quick: bool, seed: int | None = None, assumptions: Path | None = None) -> Report:
    """The whole benchmark; `assumptions` defaults to the shared folder beside the checkout."""
    repo = Path(__file__).resolve().parents[1]
    a = load(assumptions or default_path(repo))
    seed = DEFAULT_SEED if seed is None else seed
    if quick:
        return measure(a, seed, days=1, sessions=QUICK_SESSIONS, quick=True)
    return measure(a, seed)


def rows(quick: bool) -> list[Row]:
    return report(quick).rows()
