"""The gateway benchmark's targets are held against the floor measured in the same run: each
shows the gateway's figure, the floor's, and the ratio or difference marked against its target.
Nothing here runs a server or asserts a timing."""

from __future__ import annotations

import math

import pytest

from bench._table import format_rows
from bench.gateway import CPU_RATIO, RSS_MORE_MB, against_floor


def test_a_ratio_target_shows_both_figures_and_the_ratio() -> None:
    met = against_floor("gateway CPU per request", "CPU", 0.5, 0.4, "ms", ratio=CPU_RATIO)
    assert [(row.name, row.value) for row in met[:2]] == [
        ("gateway CPU per request", 0.5),
        ("  floor: bare aiohttp proxy CPU", 0.4),
    ]
    assert (met[2].name, met[2].value, met[2].unit) == ("  CPU / floor", 1.25, "x")
    assert (met[2].target, met[2].ok) == ("<= 1.3", True)
    missed = against_floor("gateway CPU per request", "CPU", 0.6, 0.4, "ms", ratio=CPU_RATIO)
    assert missed[2].value == pytest.approx(1.5) and missed[2].ok is False
    assert "MISSED" in format_rows(missed, "gateway").splitlines()[-1]


def test_a_difference_target_is_in_the_figures_unit() -> None:
    rows = against_floor("RSS", "RSS", 50.0, 40.0, "MB", more=RSS_MORE_MB)
    assert (rows[2].name, rows[2].value, rows[2].unit) == ("  RSS - floor", 10.0, "MB")
    assert (rows[2].target, rows[2].ok) == ("<= +12", True)
    assert against_floor("RSS", "RSS", 60.0, 40.0, "MB", more=RSS_MORE_MB)[2].ok is False


def test_a_ratio_to_no_floor_is_not_taken() -> None:
    """A floor of zero or less (noise on an idle machine) gives no ratio: missed, not met."""
    [_, _, ratio] = against_floor("added p50", "added p50", 0.3, 0.0, "ms", ratio=1.3)
    assert math.isnan(ratio.value) and ratio.ok is False
