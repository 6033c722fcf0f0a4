"""The sessions benchmark's figures: one `Run` per replay, the goal verdicts, the text and JSON.

A goal missed under the file's physics says by how much, which policy came closest (and what
it cost), and which moved assumption binds: the one whose favourable end does best, with the
figure there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from bench._table import Row

__all__ = ["Goal", "QueueLoss", "Report", "Run"]

Measure = Literal["p95_ttft_s", "cost_vs_anthropic"]
_WORDS = {"p95_ttft_s": "p95 time to first token", "cost_vs_anthropic": "cost / Anthropic"}
_UNITS = {"p95_ttft_s": "s", "cost_vs_anthropic": "x"}


@dataclass(frozen=True)
class Run:
    developers: int
    policy: str
    assumption: str
    """``central``, or the end (``low``/``high``) of the one assumption `moved`."""
    moved: str | None
    moved_value: float | None
    requests: int
    p50_ttft_s: float
    p95_ttft_s: float
    cold_wait_share: float
    fallback_share: float
    kv_hit_share: float
    """Share of the self-hosted requests' prompt tokens read from a slot's cache."""
    evaluated_mtok: float
    """Prompt tokens the workers evaluated (prefills included), millions."""
    placed_among_several_share: float
    gpu_seconds: float
    """Flex seconds billed, idle timeouts included (an always-on worker is priced apart)."""
    gpu_usd: float
    fallback_mtok: float
    """Tokens the fallback read and wrote, millions."""
    fallback_usd: float
    cost_usd: float
    anthropic_usd: float
    cost_vs_anthropic: float
    cost_vs_always_on: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            k: round(v, 6) if isinstance(v, float) else v
            for k, v in dataclasses.asdict(self).items()
        }


def _figure(measure: Measure, value: float) -> str:
    return f"{value:.2f} s" if measure == "p95_ttft_s" else f"{value:.2f}x"


@dataclass(frozen=True)
class Goal:
    developers: int
    measure: Measure
    target: float
    policy: str
    value: float
    ok: bool
    closest_policy: str
    closest_value: float
    closest_other: float
    """The closest policy's other measure (its cost for a latency goal, its p95 for a cost one)."""
    spent: str = ""
    """For a cost goal: what the judged policy paid, GPU and fallback."""
    binding: str | None = None
    binding_end: str | None = None
    binding_setting: float | None = None
    binding_value: float | None = None

    @classmethod
    def judge(
        cls,
        developers: int,
        measure: Measure,
        target: float,
        judged: Run,
        central: Sequence[Run],
        ends: Sequence[Run],
    ) -> Goal:
        other: Measure = "cost_vs_anthropic" if measure == "p95_ttft_s" else "p95_ttft_s"
        closest = min(central, key=lambda r: getattr(r, measure))
        value = getattr(judged, measure)
        goal = cls(
            developers,
            measure,
            target,
            judged.policy,
            value,
            value <= target,
            closest.policy,
            getattr(closest, measure),
            getattr(closest, other),
            ""
            if measure == "p95_ttft_s"
            else f"GPU {judged.gpu_usd:.2f} $ ({judged.gpu_seconds / 3600:.1f} h) + fallback "
            f"{judged.fallback_usd:.2f} $ a day",
        )
        if goal.ok or not ends:
            return goal
        best = min(ends, key=lambda r: getattr(r, measure))
        return dataclasses.replace(
            goal,
            binding=best.moved,
            binding_end=best.assumption,
            binding_setting=best.moved_value,
            binding_value=getattr(best, measure),
        )

    def sentence(self) -> str:
        if self.ok:
            return "ok"
        words = [f"MISSED by {_figure(self.measure, self.value - self.target)}"]
        if self.spent:
            words.append(self.spent)
        other = "cost" if self.measure == "p95_ttft_s" else "p95"
        other_measure: Measure = "cost_vs_anthropic" if other == "cost" else "p95_ttft_s"
        words.append(
            f"closest policy {self.closest_policy}: {_figure(self.measure, self.closest_value)} "
            f"({other} {_figure(other_measure, self.closest_other)})"
        )
        if self.binding is not None and self.binding_value is not None:
            at = f"at its {self.binding_end} end ({self.binding_setting:g}): "
            at += _figure(self.measure, self.binding_value)
            if self.binding_value <= self.target:
                words.append(f"the file's {self.binding} binds: {at}")
            else:
                words.append(f"no moved assumption meets it; {self.binding} does best, {at}")
        return "; ".join(words)

    def as_json(self) -> dict[str, Any]:
        data = {
            k: round(v, 6) if isinstance(v, float) else v
            for k, v in dataclasses.asdict(self).items()
        }
        data["verdict"] = self.sentence()
        return data


@dataclass(frozen=True)
class QueueLoss:
    """What a queue endpoint (any free worker takes a job) loses against session affinity."""

    developers: int
    policies: str
    queue: Run
    load_balanced: Run

    def as_json(self) -> dict[str, Any]:
        q, lb = self.queue, self.load_balanced
        return {
            "developers": self.developers,
            "policies": self.policies,
            "kv_hit_share_queue": round(q.kv_hit_share, 6),
            "kv_hit_share_affinity": round(lb.kv_hit_share, 6),
            "evaluated_mtok_queue": round(q.evaluated_mtok, 6),
            "evaluated_mtok_affinity": round(lb.evaluated_mtok, 6),
            "p95_ttft_s_queue": round(q.p95_ttft_s, 6),
            "p95_ttft_s_affinity": round(lb.p95_ttft_s, 6),
            "placed_among_several_share": round(q.placed_among_several_share, 6),
        }


def _table(header: list[str], lines: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]
    out = ["  ".join(c.ljust(widths[i]) for i, c in enumerate(header)).rstrip()]
    out.append("  ".join("-" * w for w in widths))
    for row in lines:
        out.append(
            "  ".join(
                c.ljust(w) if i < 2 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            ).rstrip()
        )
    return out


@dataclass(frozen=True)
class Report:
    seed: int
    days: int
    source: str
    quick: bool
    goal_policy: str
    runs: list[Run]
    goals: list[Goal]
    queue_loss: list[QueueLoss] = field(default_factory=list)

    @property
    def missed(self) -> bool:
        return any(not goal.ok for goal in self.goals)

    def _mark(self, run: Run, measure: Measure, text: str) -> str:
        for goal in self.goals:
            if (
                goal.developers == run.developers
                and goal.measure == measure
                and goal.policy == run.policy
                and run.moved is None
                and not goal.ok
            ):
                return text + " MISSED"
        return text

    def text(self) -> str:
        lines = [
            "## sessions: days of Claude Code sessions at scale to zero "
            + f"(seed {self.seed}, {self.days} day{'s' if self.days != 1 else ''} pooled"
            + (", --quick" if self.quick else "")
            + f"; assumptions {self.source})",
            "",
            "central assumptions; money, hours and requests per day; the goals are judged on "
            + f"policy `{self.goal_policy}`; cost = GPU billed + fallback tokens",
        ]
        header = [
            "devs",
            "policy",
            "requests",
            "p50 TTFT s",
            "p95 TTFT s",
            "cold waits",
            "fallback",
            "KV hits",
            "GPU h",
            "GPU $",
            "fallback Mtok",
            "fallback $",
            "cost $",
            "Anthropic $",
            "vs Anthropic",
            "vs always-on",
        ]
        body = [
            [
                str(r.developers),
                r.policy,
                str(r.requests),
                f"{r.p50_ttft_s:.2f}",
                self._mark(r, "p95_ttft_s", f"{r.p95_ttft_s:.2f}"),
                f"{r.cold_wait_share:.1%}",
                f"{r.fallback_share:.1%}",
                f"{r.kv_hit_share:.1%}",
                f"{r.gpu_seconds / 3600:.1f}",
                f"{r.gpu_usd:.2f}",
                f"{r.fallback_mtok:.2f}",
                f"{r.fallback_usd:.2f}",
                f"{r.cost_usd:.2f}",
                f"{r.anthropic_usd:.2f}",
                self._mark(r, "cost_vs_anthropic", f"{r.cost_vs_anthropic:.2f}x"),
                f"{r.cost_vs_always_on:.2f}x",
            ]
            for r in self.runs
            if r.moved is None
        ]
        lines += _table(header, body)
        lines += ["", "p95 TTFT s / cost vs Anthropic, one assumption at its low or high end"]
        moved = list(
            dict.fromkeys((r.moved, r.assumption, r.moved_value) for r in self.runs if r.moved)
        )
        header = ["devs", "policy", "central", *(f"{m} {e} ({v:g})" for m, e, v in moved)]
        body = []
        for r in (r for r in self.runs if r.moved is None):
            cells = [str(r.developers), r.policy, f"{r.p95_ttft_s:.2f} / {r.cost_vs_anthropic:.2f}"]
            for m, e, _ in moved:
                x = next(
                    x
                    for x in self.runs
                    if (x.developers, x.policy, x.moved, x.assumption)
                    == (r.developers, r.policy, m, e)
                )
                cells.append(f"{x.p95_ttft_s:.2f} / {x.cost_vs_anthropic:.2f}")
            body.append(cells)
        lines += _table(header, body)
        lines += ["", f"goals (policy {self.goal_policy}, central)"]
        for g in self.goals:
            who = f"{g.developers} developer" + ("s" if g.developers != 1 else "")
            lines.append(
                f"  {who}: {_WORDS[g.measure]} {_figure(g.measure, g.value)} "
                f"(target <= {g.target:g}{_UNITS[g.measure]}): {g.sentence()}"
            )
        lines += ["", "what a queue endpoint loses against affinity (central)"]
        for q in self.queue_loss:
            a, b = q.queue, q.load_balanced
            lines.append(
                f"  {q.developers} dev, {q.policies}: KV hits {a.kv_hit_share:.1%} -> "
                f"{b.kv_hit_share:.1%}, prompt tokens evaluated {a.evaluated_mtok:.2f}M -> "
                f"{b.evaluated_mtok:.2f}M, p95 {a.p95_ttft_s:.2f} -> {b.p95_ttft_s:.2f} s; "
                f"{a.placed_among_several_share:.1%} of jobs placed while more than one "
                "worker was ready"
            )
        return "\n".join(lines)

    def as_json(self) -> dict[str, Any]:
        return {
            "benchmark": "sessions",
            "seed": self.seed,
            "days": self.days,
            "quick": self.quick,
            "assumptions": self.source,
            "goal_policy": self.goal_policy,
            "goals_met": not self.missed,
            "goals": [g.as_json() for g in self.goals],
            "runs": [r.as_json() for r in self.runs],
            "queue_mode": [q.as_json() for q in self.queue_loss],
        }

    def rows(self) -> list[Row]:
        """The goal verdicts, for the one table ``python -m bench`` prints."""
        out = []
        for g in self.goals:
            who = f"{g.developers} dev"
            name = f"{who}: {_WORDS[g.measure]} ({g.policy}, seed {self.seed})"
            out.append(Row(name, g.value, _UNITS[g.measure], f"<= {g.target:g}", g.ok))
        return out
