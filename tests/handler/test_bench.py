"""The cache-hit benchmark runs and reports sane numbers (a smoke test, not a performance gate)."""

from __future__ import annotations

from bench.handler_cache import measure_cache_hit


async def test_measure_cache_hit() -> None:
    result = await measure_cache_hit(50)
    assert result["n"] == 50
    assert 0 < result["p50_ms"] <= result["p99_ms"] <= result["max_ms"]
