"""A latency model for the sessions benchmark's tests.

The benchmark reads the project's latency model from the shared folder beside the checkout,
which a clone may not have; these tests carry the same structure with the values it had when
they were written (only what the benchmark reads), so they run anywhere.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

LATENCY_MODEL: dict[str, Any] = {
    "gpu": {
        "prompt_eval_tokens_per_s": {"value": 2000, "low": 1000, "high": 4000},
        "generation_tokens_per_s": {"value": 100, "low": 60, "high": 160},
        "parallel_slots": {"value": 4},
        "usd_per_s_flex": {"value": 0.00053},
        "usd_per_s_active": {"value": 0.00037},
    },
    "cold_start": {
        "container_and_engine_s": {"value": 15, "low": 5, "high": 30},
        "model_load_s": {"value": 60, "low": 20, "high": 120},
        "flashboot_hit_probability": {"value": 0.0, "high": 0.5},
        "flashboot_start_s": {"value": 3},
    },
    "endpoint": {
        "idle_timeout_s": {"value": 60},
        "max_workers": {"value": 3},
        "queue_pick_up_s": {"value": 0.3},
    },
    "fallback": {
        "name": "cerebras",
        "ttft_s": {"value": 0.8, "low": 0.4, "high": 2.0},
        "usd_per_mtok_in": {"value": 0.99},
        "usd_per_mtok_out": {"value": 1.49},
    },
    "anthropic_baseline": {
        "model": "claude-sonnet-4-5",
        "usd_per_mtok_in": 3.0,
        "usd_per_mtok_out": 15.0,
        "cache_write_multiplier": 1.25,
        "cache_read_multiplier": 0.1,
        "cache_ttl_s": 300,
    },
    "sessions": {
        "workday_hours": 8,
        "sessions_per_developer_per_day": {"value": 6},
        "turns_per_session": {"distribution": "geometric", "mean": 10},
        "requests_per_turn": {"distribution": "geometric", "mean": 6},
        "tool_gap_s": {"distribution": "lognormal", "median": 3, "sigma": 0.8},
        "think_gap_s": {"distribution": "lognormal", "median": 90, "sigma": 1.0},
        "session_gap_s": {"distribution": "lognormal", "median": 1200, "sigma": 0.7},
        "first_prompt_tokens": {"value": 12000},
        "tokens_added_per_request": {"distribution": "lognormal", "median": 1200, "sigma": 1.0},
        "output_tokens_per_request": {"distribution": "lognormal", "median": 250, "sigma": 1.0},
        "context_window_tokens": {"value": 131072},
    },
    "teams": {"developers": [1, 5]},
    "goal": {
        "p95_time_to_first_token_s": 3.0,
        "cost_vs_anthropic_max": {"1": 0.6, "5": 0.3},
    },
}

ModelFile = Callable[..., Path]


def write_model(directory: Path, **changes: dict[str, Any]) -> Path:
    """The latency model with `changes` (``goal={...}``) merged into its sections, as a file."""
    model = copy.deepcopy(LATENCY_MODEL)
    for section, values in changes.items():
        model[section].update(values)
    path = directory / "latency-model.json"
    path.write_text(json.dumps(model), encoding="utf-8")
    return path


@pytest.fixture
def model_file(tmp_path: Path) -> ModelFile:
    return lambda **changes: write_model(tmp_path, **changes)
