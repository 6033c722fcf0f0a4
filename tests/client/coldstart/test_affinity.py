"""Session-to-worker affinity: RunPod's X-Runpod-Worker-Id values, expiry, bounded memory."""

from __future__ import annotations

import pytest

from ccrelay.coldstart import AffinitySettings, WorkerAffinity


def affinity(mode: str = "soft", **kw: object) -> WorkerAffinity:
    return WorkerAffinity(AffinitySettings(mode=mode, **kw), idle_timeout_s=60)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("mode", "header"),
    [
        ("soft", "8g3n5t6r"),
        ("strict", "strict 8g3n5t6r"),
        ("strict-resume", "strict-resume 8g3n5t6r"),
    ],
)
def test_the_header_names_the_worker_that_served_the_session(mode: str, header: str) -> None:
    # values as runpod/docs serverless/load-balancing/worker-affinity.mdx documents them
    policy = affinity(mode)
    assert policy.header("s1", 0.0) is None
    policy.record("s1", "8g3n5t6r", 10.0)
    assert policy.header("s1", 11.0) == header
    assert policy.header("s2", 11.0) is None


def test_off_sends_nothing_and_remembers_nothing() -> None:
    policy = affinity("off")
    policy.record("s1", "w1", 0.0)
    assert policy.header("s1", 1.0) is None
    assert len(policy) == 0


def test_a_mapping_expires_an_idle_timeout_after_the_last_answer() -> None:
    policy = affinity()
    policy.record("s1", "w1", 100.0)
    assert policy.header("s1", 159.9) == "w1"
    assert policy.header("s1", 160.0) is None  # the worker, and its cache, are gone
    assert len(policy) == 0
    policy.record("s1", "w2", 200.0)
    policy.record("s1", "w2", 250.0)  # each answer (or ping) renews it
    assert policy.header("s1", 300.0) == "w2"


def test_expiry_can_be_set() -> None:
    policy = affinity(expire_after_s=10.0)
    policy.record("s1", "w1", 0.0)
    assert policy.header("s1", 10.0) is None


def test_memory_is_bounded_oldest_session_first() -> None:
    policy = affinity(max_sessions=2)
    policy.record("a", "w1", 0.0)
    policy.record("b", "w1", 1.0)
    policy.header("a", 2.0)  # a lookup does not count as use; only answers do
    policy.record("c", "w2", 3.0)
    assert len(policy) == 2
    assert policy.header("a", 4.0) is None
    assert policy.header("b", 4.0) == "w1"
    assert policy.header("c", 4.0) == "w2"


@pytest.mark.parametrize("worker_id", ["", "strict w1", "w1\r\nX-Evil: 1", "w" * 200])
def test_a_worker_id_that_would_change_the_header_is_not_kept(worker_id: str) -> None:
    policy = affinity()
    policy.record("s1", worker_id, 0.0)
    assert policy.header("s1", 1.0) is None


def test_a_gone_worker_is_forgotten() -> None:
    policy = affinity("strict")
    policy.record("s1", "w1", 0.0)
    policy.forget("s1")  # after 404 affinity_worker_gone
    assert policy.header("s1", 1.0) is None
    policy.forget("never-seen")
