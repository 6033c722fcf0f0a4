"""`${VAR}`, `${VAR:-default}` and `$${` inside parsed config values."""

from __future__ import annotations

from ccrelay_config.interpolation import interpolate


def test_reference_is_replaced_by_the_variable() -> None:
    value, problems = interpolate({"a": "Bearer ${TOKEN}"}, {"TOKEN": "t0k"})
    assert value == {"a": "Bearer t0k"}
    assert problems == []


def test_default_is_used_when_the_variable_is_unset_or_empty() -> None:
    doc = {"url": "${URL:-http://localhost:4000/v1}", "x": "${EMPTY:-fallback}"}
    value, problems = interpolate(doc, {"EMPTY": ""})
    assert value == {"url": "http://localhost:4000/v1", "x": "fallback"}
    assert problems == []


def test_variable_wins_over_default() -> None:
    value, _ = interpolate("${URL:-http://a}", {"URL": "http://b"})
    assert value == "http://b"


def test_empty_default_is_allowed() -> None:
    value, problems = interpolate("x${NOPE:-}y", {})
    assert value == "xy"
    assert problems == []


def test_double_dollar_writes_a_literal_reference() -> None:
    value, problems = interpolate({"a": "$${HOME} and $${X:-y}"}, {"HOME": "/root"})
    assert value == {"a": "${HOME} and ${X:-y}"}
    assert problems == []


def test_lone_dollars_and_other_types_are_left_alone() -> None:
    doc = {"price": "$5", "n": 3, "flag": True, "none": None, "list": ["$", 1.5]}
    value, problems = interpolate(doc, {})
    assert value == doc
    assert problems == []


def test_nested_paths_are_reported_for_every_missing_variable() -> None:
    doc = {"backends": {"c": {"api_key": "${KEY_A}", "headers": {"h": "${KEY_B}"}}}, "l": ["${C}"]}
    _, problems = interpolate(doc, {})
    paths = {p.path: p for p in problems}
    assert set(paths) == {"backends.c.api_key", "backends.c.headers.h", "l[0]"}
    assert "KEY_A is not set" in paths["backends.c.api_key"].problem
    assert "export KEY_A=" in paths["backends.c.api_key"].fix
    assert "${KEY_A:-default}" in paths["backends.c.api_key"].fix


def test_a_value_cannot_inject_structure_or_further_references() -> None:
    # Interpolation runs after parsing: a value that looks like YAML or a reference stays text.
    value, problems = interpolate({"a": "${V}"}, {"V": "{b: 1}\n${OTHER}"})
    assert value == {"a": "{b: 1}\n${OTHER}"}
    assert problems == []


def test_keys_are_not_interpolated() -> None:
    value, _ = interpolate({"${K}": "v"}, {"K": "x"})
    assert value == {"${K}": "v"}
