"""The latency model's assumptions (``latency-model.json``), read and checked once.

The file lives in the shared folder beside the checkout (`default_path`) or wherever
``--assumptions`` points. Every figure the sessions benchmark uses comes from it; the few the
file does not give are named in `bench.sessions`' docstring. A value at its low or high end is a
copy with that one field moved (`Assumptions.moved`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = ["MOVABLE", "Assumptions", "AssumptionsError", "default_path", "load"]

MOVABLE = ("prompt_eval_tokens_per_s", "model_load_s")
"""The assumptions reported at their low and high ends too (the file's ``goal.report_also``)."""


class AssumptionsError(ValueError):
    """The assumptions file is missing, not JSON, or lacks a value the benchmark needs."""


class _Read(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Value(_Read):
    value: float
    low: float | None = None
    high: float | None = None


class _Lognormal(_Read):
    distribution: Literal["lognormal"]
    median: float = Field(gt=0)
    sigma: float = Field(ge=0)


class _Geometric(_Read):
    distribution: Literal["geometric"]
    mean: float = Field(ge=1)


class _Gpu(_Read):
    prompt_eval_tokens_per_s: _Value
    generation_tokens_per_s: _Value
    parallel_slots: _Value
    usd_per_s_flex: _Value
    usd_per_s_active: _Value


class _ColdStart(_Read):
    container_and_engine_s: _Value
    model_load_s: _Value
    flashboot_hit_probability: _Value
    flashboot_start_s: _Value


class _Endpoint(_Read):
    idle_timeout_s: _Value
    max_workers: _Value
    queue_pick_up_s: _Value


class _Fallback(_Read):
    name: str
    ttft_s: _Value
    usd_per_mtok_in: _Value
    usd_per_mtok_out: _Value


class _Anthropic(_Read):
    model: str
    usd_per_mtok_in: float
    usd_per_mtok_out: float
    cache_write_multiplier: float
    cache_read_multiplier: float
    cache_ttl_s: float


class _Sessions(_Read):
    workday_hours: float
    sessions_per_developer_per_day: _Value
    turns_per_session: _Geometric
    requests_per_turn: _Geometric
    tool_gap_s: _Lognormal
    think_gap_s: _Lognormal
    session_gap_s: _Lognormal
    first_prompt_tokens: _Value
    tokens_added_per_request: _Lognormal
    output_tokens_per_request: _Lognormal
    context_window_tokens: _Value


class _Teams(_Read):
    developers: list[int]


class _Goal(_Read):
    p95_time_to_first_token_s: float
    cost_vs_anthropic_max: dict[str, float]


class _File(_Read):
    gpu: _Gpu
    cold_start: _ColdStart
    endpoint: _Endpoint
    fallback: _Fallback
    anthropic_baseline: _Anthropic
    sessions: _Sessions
    teams: _Teams
    goal: _Goal


@dataclass(frozen=True)
class Lognormal:
    median: float
    sigma: float


@dataclass(frozen=True)
class Assumptions:
    """Every figure the simulation uses, flat; names follow the file's keys."""

    source: str
    prompt_eval_tokens_per_s: float
    generation_tokens_per_s: float
    parallel_slots: int
    usd_per_s_flex: float
    usd_per_s_active: float
    container_and_engine_s: float
    model_load_s: float
    flashboot_hit_probability: float
    flashboot_start_s: float
    idle_timeout_s: float
    max_workers: int
    queue_pick_up_s: float
    fallback_name: str
    fallback_ttft_s: float
    fallback_usd_per_mtok_in: float
    fallback_usd_per_mtok_out: float
    anthropic_model: str
    anthropic_usd_per_mtok_in: float
    anthropic_usd_per_mtok_out: float
    cache_write_multiplier: float
    cache_read_multiplier: float
    cache_ttl_s: float
    workday_hours: float
    sessions_per_developer: int
    turns_per_session_mean: float
    requests_per_turn_mean: float
    tool_gap_s: Lognormal
    think_gap_s: Lognormal
    session_gap_s: Lognormal
    first_prompt_tokens: int
    tokens_added_per_request: Lognormal
    output_tokens_per_request: Lognormal
    context_window_tokens: int
    developers: tuple[int, ...]
    goal_p95_ttft_s: float
    goal_cost_vs_anthropic: dict[int, float]
    ends: dict[str, tuple[float, float]]
    """(low, high) of each `MOVABLE` assumption."""

    @property
    def cold_start_s(self) -> float:
        return self.container_and_engine_s + self.model_load_s

    def moved(self, name: str, end: Literal["low", "high"]) -> Assumptions:
        low, high = self.ends[name]
        value = low if end == "low" else high
        return replace(self, **{name: value})  # type: ignore[arg-type]


def default_path(repo: Path) -> Path:
    """``shared/reference/latency-model.json`` in the folder that holds the checkout; for a
    git worktree, also beside the main checkout it belongs to."""
    relative = Path("shared") / "reference" / "latency-model.json"
    repo = repo.resolve()
    candidates = [repo.parent / relative]
    dot_git = repo / ".git"
    if dot_git.is_file():  # "gitdir: <main>/.git/worktrees/<name>"
        text = dot_git.read_text(encoding="utf-8", errors="replace").strip()
        if text.startswith("gitdir:"):
            gitdir = Path(text.removeprefix("gitdir:").strip())
            if len(gitdir.parents) > 3:
                candidates.append(gitdir.parents[3] / relative)
    return next((path for path in candidates if path.is_file()), candidates[0])


def load(path: Path) -> Assumptions:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AssumptionsError(
            f"no assumptions file at {path}: pass --assumptions PATH (latency-model.json)"
        ) from None
    except (OSError, ValueError) as exc:
        raise AssumptionsError(f"cannot read the assumptions file {path}: {exc}") from None
    try:
        f = _File.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise AssumptionsError(f"{path}: {where}: {first['msg']}") from None
    ends = {}
    for name, value in (
        ("prompt_eval_tokens_per_s", f.gpu.prompt_eval_tokens_per_s),
        ("model_load_s", f.cold_start.model_load_s),
    ):
        if value.low is None or value.high is None:
            raise AssumptionsError(f"{path}: {name} needs a low and a high end")
        ends[name] = (value.low, value.high)
    s = f.sessions
    return Assumptions(
        source=str(path),
        prompt_eval_tokens_per_s=f.gpu.prompt_eval_tokens_per_s.value,
        generation_tokens_per_s=f.gpu.generation_tokens_per_s.value,
        parallel_slots=int(f.gpu.parallel_slots.value),
        usd_per_s_flex=f.gpu.usd_per_s_flex.value,
        usd_per_s_active=f.gpu.usd_per_s_active.value,
        container_and_engine_s=f.cold_start.container_and_engine_s.value,
        model_load_s=f.cold_start.model_load_s.value,
        flashboot_hit_probability=f.cold_start.flashboot_hit_probability.value,
        flashboot_start_s=f.cold_start.flashboot_start_s.value,
        idle_timeout_s=f.endpoint.idle_timeout_s.value,
        max_workers=int(f.endpoint.max_workers.value),
        queue_pick_up_s=f.endpoint.queue_pick_up_s.value,
        fallback_name=f.fallback.name,
        fallback_ttft_s=f.fallback.ttft_s.value,
        fallback_usd_per_mtok_in=f.fallback.usd_per_mtok_in.value,
        fallback_usd_per_mtok_out=f.fallback.usd_per_mtok_out.value,
        anthropic_model=f.anthropic_baseline.model,
        anthropic_usd_per_mtok_in=f.anthropic_baseline.usd_per_mtok_in,
        anthropic_usd_per_mtok_out=f.anthropic_baseline.usd_per_mtok_out,
        cache_write_multiplier=f.anthropic_baseline.cache_write_multiplier,
        cache_read_multiplier=f.anthropic_baseline.cache_read_multiplier,
        cache_ttl_s=f.anthropic_baseline.cache_ttl_s,
        workday_hours=s.workday_hours,
        sessions_per_developer=int(s.sessions_per_developer_per_day.value),
        turns_per_session_mean=s.turns_per_session.mean,
        requests_per_turn_mean=s.requests_per_turn.mean,
        tool_gap_s=Lognormal(s.tool_gap_s.median, s.tool_gap_s.sigma),
        think_gap_s=Lognormal(s.think_gap_s.median, s.think_gap_s.sigma),
        session_gap_s=Lognormal(s.session_gap_s.median, s.session_gap_s.sigma),
        first_prompt_tokens=int(s.first_prompt_tokens.value),
        tokens_added_per_request=Lognormal(
            s.tokens_added_per_request.median, s.tokens_added_per_request.sigma
        ),
        output_tokens_per_request=Lognormal(
            s.output_tokens_per_request.median, s.output_tokens_per_request.sigma
        ),
        context_window_tokens=int(s.context_window_tokens.value),
        developers=tuple(f.teams.developers),
        goal_p95_ttft_s=f.goal.p95_time_to_first_token_s,
        goal_cost_vs_anthropic={int(k): v for k, v in f.goal.cost_vs_anthropic_max.items()},
        ends=ends,
    )
