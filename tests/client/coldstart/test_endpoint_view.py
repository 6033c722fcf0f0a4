"""Worker counts as RunPod reports them, and what a gateway's own answers tell it."""

from __future__ import annotations

from typing import Any

import pytest

from ccrelay.coldstart import EndpointView, WorkerCounts

# runpod/docs serverless/endpoints/operation-reference.mdx (current /health reply)
HEALTH_NOW = {
    "jobs": {"completed": 1, "failed": 5, "inProgress": 0, "inQueue": 2, "retried": 0},
    "workers": {"idle": 0, "running": 0},
}
# runpod/docs docs/sdks/javascript/endpoints.md (2024) showed more keys
HEALTH_2024 = {"workers": {"idle": 4, "initializing": 1, "ready": 4, "running": 1, "throttled": 0}}
# runpod/docs api-reference-v2/openapi.json, ListEndpointWorkersResponse example
WORKERS_LIST = {
    "endpointVersion": 4,
    "summary": {
        "running": 1,
        "idle": 1,
        "initializing": 0,
        "throttled": 0,
        "unhealthy": 0,
        "total": 2,
    },
    "workers": [{"id": "8g3n5t6r", "status": "RUNNING", "isStale": False, "gpuCount": 1}],
}


def test_health_replies_old_and_new() -> None:
    assert WorkerCounts.from_health(HEALTH_NOW) == WorkerCounts(ready=0, initializing=0)
    assert WorkerCounts.from_health({"workers": {"idle": 1, "running": 2}}) == WorkerCounts(3)
    assert WorkerCounts.from_health(HEALTH_2024) == WorkerCounts(ready=5, initializing=1)


def test_rest_v2_workers_summary() -> None:
    assert WorkerCounts.from_workers_list(WORKERS_LIST) == WorkerCounts(ready=2, initializing=0)


@pytest.mark.parametrize(
    "body",
    [None, [], "x", {}, {"workers": [1]}, {"workers": {"idle": True}}, {"summary": {"idle": 1}}],
)
def test_what_is_not_a_count_reads_as_nothing_known(body: Any) -> None:
    assert WorkerCounts.from_health(body) is None
    assert WorkerCounts.from_workers_list(body) is None


def test_an_answer_vouches_for_a_worker_until_its_idle_timeout_less_the_margin() -> None:
    view = EndpointView(idle_timeout_s=60, margin_s=5)
    assert not view.known_warm(0.0)
    view.on_worker_answer(100.0)
    assert view.known_warm(154.9)
    assert not view.known_warm(155.0)


def test_worker_counts_go_stale() -> None:
    view = EndpointView(idle_timeout_s=60, margin_s=5)
    assert view.counts_say_ready(0.0, max_age_s=10) is None
    view.observe(WorkerCounts(ready=1), 100.0)
    assert view.counts_say_ready(110.0, max_age_s=10) is True
    assert view.counts_say_ready(110.1, max_age_s=10) is None
    view.observe(WorkerCounts(ready=0, initializing=1), 120.0)
    assert view.counts_say_ready(121.0, max_age_s=10) is False


def test_a_run_of_answers_starts_again_after_a_gap_of_an_idle_timeout() -> None:
    view = EndpointView(idle_timeout_s=60, margin_s=5)
    view.on_worker_answer(0.0)
    view.on_worker_answer(58.0)  # a ping inside the margin still finds the same worker
    view.on_worker_answer(110.0)
    assert view.warm_since == 0.0
    view.on_worker_answer(171.0)  # the worker may have stopped at 170
    assert view.warm_since == 171.0


def test_a_ready_count_taken_while_our_worker_was_warm_says_nothing_once_it_may_have_stopped() -> (
    None
):
    view = EndpointView(idle_timeout_s=60, margin_s=5)
    view.on_worker_answer(100.0)
    view.observe(WorkerCounts(ready=1), 110.0)  # that one worker is likely the one that answered
    assert view.counts_say_ready(150.0, 60) is True
    assert view.counts_say_ready(156.0, 60) is None  # past 155: it may be stopping
    assert view.counts_stale(156.0, 60)
    view.observe(WorkerCounts(ready=1), 157.0)  # read again after: another worker, or still up
    assert view.counts_say_ready(158.0, 60) is True
    view.observe(WorkerCounts(ready=0), 110.0)
    assert view.counts_say_ready(156.0, 60) is False  # none ready stays true
