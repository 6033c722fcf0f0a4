"""The sessions benchmark: its trace, its endpoint model, its report and its command line.

Nothing here asserts a latency target: the figures are the benchmark's to judge. What is
asserted is that the replay is deterministic and that each policy changes what it should.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest

from bench import __main__ as bench_main
from bench import sessions
from bench._sessions_assumptions import Assumptions, AssumptionsError, default_path, load
from bench._sessions_endpoint import DAY_S, Endpoint, Job
from bench._sessions_loop import Loop
from bench._sessions_replay import policy_setups
from bench._sessions_report import Report, Run
from bench._sessions_trace import team
from tests.bench.conftest import ModelFile, write_model

POLICIES = {"none", "always_on", "keep_warm", "hedge", "affinity", "all"}
ROW_FIELDS = {
    "developers",
    "policy",
    "assumption",
    "moved",
    "p50_ttft_s",
    "p95_ttft_s",
    "cold_wait_share",
    "gpu_usd",
    "fallback_usd",
    "cost_usd",
    "anthropic_usd",
    "cost_vs_anthropic",
}


@pytest.fixture(scope="module")
def central(tmp_path_factory: pytest.TempPathFactory) -> Assumptions:
    return load(write_model(tmp_path_factory.mktemp("model")))


@pytest.fixture(scope="module")
def quick(central: Assumptions) -> Report:
    return sessions.measure(central, 22, days=1, sessions=2, quick=True)


def run(report: Report, developers: int, policy: str) -> Run:
    return next(
        r for r in report.runs if (r.developers, r.policy, r.moved) == (developers, policy, None)
    )


def test_the_same_seed_replays_the_same_day(central: Assumptions, quick: Report) -> None:
    again = sessions.measure(central, 22, days=1, sessions=2, quick=True)
    assert again.as_json() == quick.as_json()
    assert team(23, 1, central) != team(22, 1, central)


def test_a_teams_first_developer_has_the_lone_developers_day(central: Assumptions) -> None:
    lone, five = team(22, 1, central), team(22, 5, central)
    assert five[0] == lone[0]
    assert len({day.sessions for day in five}) == 5
    assert team(22, 1, central, day=1)[0] != lone[0]
    sessions_drawn = lone[0].sessions
    assert len(sessions_drawn) == central.sessions_per_developer
    first = sessions_drawn[0].turns[0]
    assert first.think_s == 0 and first.requests[0].added_tokens == 0
    assert all(turn.requests for s in sessions_drawn for turn in s.turns)


def test_always_on_never_waits_on_a_cold_start(quick: Report) -> None:
    always = [r for r in quick.runs if r.policy == "always_on"]
    assert len(always) == 2 * 5
    assert all(r.cold_wait_share == 0 for r in always)
    assert all(r.gpu_usd >= DAY_S * 0.00037 for r in always)  # billed all day, active price


@pytest.mark.parametrize("developers", [1, 5])
def test_each_policy_changes_what_it_should(quick: Report, developers: int) -> None:
    none, keep, hedge, both = (
        run(quick, developers, p) for p in ("none", "keep_warm", "hedge", "all")
    )
    assert none.cold_wait_share > 0
    assert keep.cold_wait_share < none.cold_wait_share
    assert keep.gpu_usd > none.gpu_usd  # holding the worker is billed
    assert none.fallback_share == keep.fallback_share == 0
    assert hedge.fallback_share > 0 and hedge.fallback_usd > 0
    assert hedge.p95_ttft_s < none.p95_ttft_s
    assert both.p95_ttft_s < none.p95_ttft_s
    assert both.fallback_usd < hedge.fallback_usd  # keep-warm saves cold starts the hedge pays for


def test_affinity_raises_cache_hits_when_several_workers_run(central: Assumptions) -> None:
    one_slot = dataclasses.replace(central, parallel_slots=1)  # five sessions need workers
    trace = [team(22, 5, one_slot, 2)]
    setups = policy_setups(one_slot)
    queue = sessions.summarise(
        5, "none", sessions._replay_days(trace, one_slot, setups["none"], 22)
    )
    pinned = sessions.summarise(
        5, "affinity", sessions._replay_days(trace, one_slot, setups["affinity"], 22)
    )
    assert queue.placed_among_several_share > 0.3
    assert pinned.kv_hit_share > queue.kv_hit_share + 0.05
    assert pinned.evaluated_mtok < queue.evaluated_mtok


def test_queue_mode_loss_is_reported_for_both_teams(quick: Report) -> None:
    assert {(q.developers, q.policies) for q in quick.queue_loss} == {
        (1, "none"),
        (1, "all"),
        (5, "none"),
        (5, "all"),
    }


def test_a_missed_goal_names_the_assumption_that_binds(quick: Report) -> None:
    goals = {(g.developers, g.measure): g for g in quick.goals}
    assert set(goals) == {
        (1, "p95_ttft_s"),
        (1, "cost_vs_anthropic"),
        (5, "p95_ttft_s"),
        (5, "cost_vs_anthropic"),
    }
    for goal in goals.values():
        assert goal.policy == "all"
        assert goal.ok == (goal.value <= goal.target)
        if not goal.ok:
            assert goal.binding in ("prompt_eval_tokens_per_s", "model_load_s")
            assert goal.sentence().startswith("MISSED by")


def test_json_has_every_run_and_field(
    model_file: ModelFile, capsys: pytest.CaptureFixture[str]
) -> None:
    path = model_file()
    status = bench_main.main(
        ["sessions", "--quick", "--json", "--seed", "7", "--assumptions", str(path)]
    )
    report = json.loads(capsys.readouterr().out)
    assert status == (0 if report["goals_met"] else 1)
    assert report["seed"] == 7 and report["assumptions"] == str(path)
    runs = report["runs"]
    assert len(runs) == 2 * len(POLICIES) * 5
    assert all(set(row) >= ROW_FIELDS for row in runs)
    assert {row["policy"] for row in runs} == POLICIES
    assert {row["developers"] for row in runs} == {1, 5}
    assert {(row["assumption"], row["moved"]) for row in runs} == {
        ("central", None),
        ("low", "prompt_eval_tokens_per_s"),
        ("high", "prompt_eval_tokens_per_s"),
        ("low", "model_load_s"),
        ("high", "model_load_s"),
    }
    for row in runs:
        assert math.isclose(
            row["cost_vs_anthropic"], row["cost_usd"] / row["anthropic_usd"], rel_tol=1e-4
        )
    assert len(report["goals"]) == 4
    assert all("verdict" in goal for goal in report["goals"])


def test_a_missed_goal_is_marked_and_exits_1(
    model_file: ModelFile, capsys: pytest.CaptureFixture[str]
) -> None:
    path = model_file(goal={"p95_time_to_first_token_s": 0.01})
    assert bench_main.main(["sessions", "--quick", "--assumptions", str(path)]) == 1
    out = capsys.readouterr().out
    assert "MISSED" in out
    assert "## ccrelay benchmarks" in out and "seed 22" in out


def test_goals_met_exit_0(model_file: ModelFile, capsys: pytest.CaptureFixture[str]) -> None:
    lenient = {"p95_time_to_first_token_s": 1e6, "cost_vs_anthropic_max": {"1": 1e6, "5": 1e6}}
    path = model_file(goal=lenient)
    assert bench_main.main(["sessions", "--quick", "--assumptions", str(path)]) == 0
    assert "MISSED" not in capsys.readouterr().out


def test_a_missing_or_incomplete_model_is_a_clear_error(
    tmp_path: Path, model_file: ModelFile, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.json"
    assert bench_main.main(["sessions", "--assumptions", str(missing)]) == 2
    assert f"no assumptions file at {missing}" in capsys.readouterr().err
    path = model_file(gpu={"prompt_eval_tokens_per_s": {"value": 2000}})
    with pytest.raises(AssumptionsError, match="prompt_eval_tokens_per_s needs a low and a high"):
        load(path)
    path.write_text('{"gpu": {}}', encoding="utf-8")
    with pytest.raises(AssumptionsError, match=r"gpu\.prompt_eval_tokens_per_s"):
        load(path)


def test_json_and_the_sessions_flags_are_for_the_sessions_benchmark(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        bench_main.main(["handler", "--json"])
    with pytest.raises(SystemExit):
        bench_main.main(["routing", "--seed", "3"])
    assert "sessions benchmark" in capsys.readouterr().err


def test_the_model_is_found_beside_a_worktrees_main_checkout(tmp_path: Path) -> None:
    model = tmp_path / "shared" / "reference" / "latency-model.json"
    model.parent.mkdir(parents=True)
    model.write_text("{}", encoding="utf-8")
    (tmp_path / "main" / ".git" / "worktrees" / "x").mkdir(parents=True)
    worktree = tmp_path / "wt" / "x"
    worktree.mkdir(parents=True)
    (worktree / ".git").write_text(f"gitdir: {tmp_path}/main/.git/worktrees/x\n", encoding="utf-8")
    assert default_path(worktree) == model
    assert default_path(tmp_path / "main") == model


# the endpoint model


def endpoint(a: Assumptions, **kw: object) -> tuple[Loop, Endpoint]:
    import random

    loop = Loop()
    options = {"load_balanced": False, "min_workers": 0, **kw}
    return loop, Endpoint(loop, a, rng=random.Random(0), **options)  # type: ignore[arg-type]


def request(
    done: list[Job], session: str, prompt: int, *, epoch: int = 0, output: int = 100
) -> Job:
    return Job("request", done.append, session, epoch, prompt, output)


def test_a_cold_start_is_waited_for_and_billed_with_the_idle_timeout(central: Assumptions) -> None:
    loop, ep = endpoint(central)
    done: list[Job] = []
    ep.submit(request(done, "s", 12_000))
    loop.run()
    (job,) = done
    cold = central.container_and_engine_s + central.model_load_s
    assert job.cold_wait
    assert job.first_token_at == pytest.approx(cold + 0.3 + 12_000 / 2000)
    busy = cold + 0.3 + 6 + 100 / 100
    assert ep.flex_seconds() == math.ceil(busy + central.idle_timeout_s)
    assert ep.gpu_usd() == pytest.approx(ep.flex_seconds() * 0.00053)


def test_a_slot_keeps_its_sessions_prompt(central: Assumptions) -> None:
    loop, ep = endpoint(central, min_workers=1)
    done: list[Job] = []
    ep.submit(request(done, "s", 20_000))
    loop.run()
    for job in (
        request(done, "s", 21_000),  # the session's next prompt: 1000 tokens to evaluate
        request(done, "t", 21_000),  # another session's: all of it
        request(done, "s", 16_000, epoch=1),  # after compaction: the system prompt and tools
    ):
        ep.submit(job)
        loop.run()
    assert [j.cached_tokens for j in done] == [0, 20_000, 0, 12_000]
    assert not any(j.cold_wait for j in done)
    assert ep.flex_seconds() == 0 and ep.gpu_usd() == pytest.approx(DAY_S * 0.00037)


def test_workers_are_capped_at_max_workers(central: Assumptions) -> None:
    loop, ep = endpoint(central)
    done: list[Job] = []
    for n in range(40):
        ep.submit(request(done, f"s{n}", 12_000))
    loop.run()
    assert len(done) == 40
    assert len(ep.workers) == central.max_workers


def test_a_strict_request_waits_for_its_worker(central: Assumptions) -> None:
    loop, ep = endpoint(dataclasses.replace(central, parallel_slots=1), load_balanced=True)
    done: list[Job] = []
    ep.submit(request(done, "a", 12_000))
    ep.submit(request(done, "b", 12_000))  # one slot each: two workers
    pinned: list[Job] = []

    def later() -> None:  # both workers up and idle
        worker = done[0].worker
        assert worker is not None and len(ep.workers) == 2
        for session in ("a", "c"):
            job = request(done, session, 13_000)
            job.header = f"strict {worker.worker_id}"
            pinned.append(job)
            ep.submit(job)

    loop.at(90.0, later)
    loop.run()
    first, second = pinned
    assert first.worker is second.worker is done[0].worker
    assert first.cached_tokens == 12_000
    assert second.started_at is not None and first.first_token_at is not None
    assert second.started_at > first.first_token_at  # it waited although the other was free
