from __future__ import annotations

import pytest
from pydantic import ValidationError

from ccrelay_config.pricing import DEFAULT_BASELINE_MODEL, ModelPrice, PriceTable


def price(input_per_mtok: float, output_per_mtok: float) -> ModelPrice:
    return ModelPrice(input_per_mtok=input_per_mtok, output_per_mtok=output_per_mtok)


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("claude-opus-4-1-20250805", (15.0, 75.0)),
        ("claude-opus-4-20250514", (15.0, 75.0)),
        ("claude-opus-4-5-20251101", (5.0, 25.0)),
        ("claude-sonnet-4-5-20250929", (3.0, 15.0)),
        ("claude-sonnet-4-20250514", (3.0, 15.0)),
        ("claude-haiku-4-5", (1.0, 5.0)),
        ("claude-3-5-haiku-20241022", (0.8, 4.0)),
        # what Claude Code 2.1.197 and 2.1.332 ask for: Opus is $5/$25 since 4.5 (issue 24:
        # 4.8 was matched as `claude-opus-4*`, $15/$75), Opus 5.5 $4/$20
        ("claude-opus-4-8", (5.0, 25.0)),
        ("claude-opus-4-6", (5.0, 25.0)),
        ("claude-opus-4-7", (5.0, 25.0)),
        ("claude-opus-4-0", (15.0, 75.0)),
        ("claude-opus-5-5", (4.0, 20.0)),
        ("claude-opus-5", (5.0, 25.0)),
        ("claude-sonnet-4-6", (3.0, 15.0)),
        ("claude-sonnet-5", (2.0, 10.0)),
        ("claude-sonnet-5-5", (2.0, 10.0)),
        ("claude-haiku-5-5", (0.1, 0.5)),
        ("claude-haiku-4-5-20251001", (1.0, 5.0)),
        ("claude-fable-5-1", (10.0, 50.0)),
        ("claude-3-7-sonnet-latest", (3.0, 15.0)),
        ("qwen-3-coder-480b", (2.0, 2.0)),
        ("qwen3-coder:30b", (0.0, 0.0)),
        ("llama-3.3-70b-on-my-pod", (0.0, 0.0)),
    ],
)
def test_default_table_list_prices(model: str, expected: tuple[float, float]) -> None:
    found = PriceTable().price(model)
    assert (found.input_per_mtok, found.output_per_mtok) == expected


def test_cost_is_per_million_tokens() -> None:
    table = PriceTable()
    assert table.cost("qwen-3-coder-480b", 1_000_000, 500_000) == pytest.approx(3.0)
    assert table.cost("claude-sonnet-4-5", 1200, 340) == pytest.approx((1200 * 3 + 340 * 15) / 1e6)
    assert table.cost("qwen3-coder:480b", 10**9, 10**9) == 0.0


def test_most_specific_pattern_wins_whatever_the_order() -> None:
    table = PriceTable(
        models={"gpt-*": price(1, 1), "gpt-4o-mini*": price(0.15, 0.6), "gpt-4o*": price(2.5, 10)}
    )
    assert table.price("gpt-4o-mini-2024-07-18").input_per_mtok == 0.15
    assert table.price("gpt-4o-2024-08-06").input_per_mtok == 2.5
    assert table.price("gpt-3.5-turbo").input_per_mtok == 1


def test_exact_key_beats_any_pattern_and_matching_ignores_case() -> None:
    table = PriceTable(models={"Qwen-*": price(9, 9), "QWEN-3-CODER-480B": price(2, 2)})
    assert table.price("qwen-3-coder-480b").input_per_mtok == 2
    assert table.price("Qwen-3-Coder-480B").input_per_mtok == 2
    assert table.price("qwen-2.5").input_per_mtok == 9


def test_overrides_apply_on_top_of_the_defaults() -> None:
    table = PriceTable(overrides={"qwen3-coder*": price(0.5, 0.5)})
    assert table.price("qwen3-coder:30b").input_per_mtok == 0.5
    assert table.price("claude-opus-4-1").output_per_mtok == 75.0  # defaults still there


def test_unknown_model_uses_the_configurable_default() -> None:
    assert PriceTable(models={}).cost("anything", 10**6, 10**6) == 0.0
    table = PriceTable(models={}, default=price(1, 2))
    assert table.cost("anything", 10**6, 10**6) == pytest.approx(3.0)


def test_baseline_is_a_sonnet_class_anthropic_price() -> None:
    table = PriceTable()
    assert table.baseline == DEFAULT_BASELINE_MODEL
    assert table.baseline_cost(1_000_000, 1_000_000) == pytest.approx(18.0)
    cheaper = PriceTable(baseline="claude-haiku-4-5")
    assert cheaper.baseline_cost(1_000_000, 0) == pytest.approx(1.0)


def test_validation_forbids_negative_prices_and_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        ModelPrice(input_per_mtok=-1, output_per_mtok=0)
    with pytest.raises(ValidationError):
        PriceTable.model_validate({"models": {}, "currency": "EUR"})


def test_loads_from_config_shaped_data_and_is_frozen() -> None:
    table = PriceTable.model_validate(
        {
            "models": {"my-model*": {"input_per_mtok": 1, "output_per_mtok": 4}},
            "baseline": "my-model-large",
        }
    )
    assert table.baseline_cost(1_000_000, 1_000_000) == pytest.approx(5.0)
    with pytest.raises(ValidationError):
        table.baseline = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("model", "priced_as", "expected"),
    [
        ("claude-opus-6", "claude-opus-5-5", (4.0, 20.0)),
        ("claude-opus-5-7-20270101", "claude-opus-5-5", (4.0, 20.0)),
        ("claude-sonnet-6-1", "claude-sonnet-5-5", (2.0, 10.0)),
        ("claude-haiku-7", "claude-haiku-5-5", (0.1, 0.5)),
        ("claude-fable-5-2", "claude-fable-5-1", (10.0, 50.0)),  # no published price yet
        ("claude-mythos-5-2", "claude-mythos-5-1", (10.0, 50.0)),
        ("claude-some-future-model", "claude-sonnet-5-5", (2.0, 10.0)),  # no family: Sonnet
    ],
)
def test_an_unknown_claude_model_gets_its_family_s_newest_price_and_says_so(
    model: str, priced_as: str, expected: tuple[float, float]
) -> None:
    table = PriceTable()
    found = table.price(model)
    assert (found.input_per_mtok, found.output_per_mtok) == expected
    assert table.priced_as(model) == priced_as


@pytest.mark.parametrize(
    "model", ["claude-opus-4-8", "claude-opus-4-20250514", "gpt-oss-120b", "x"]
)
def test_a_known_model_is_priced_as_itself(model: str) -> None:
    assert PriceTable().priced_as(model) is None


def test_opus_5_5_reads_its_cache_at_a_twentieth_of_its_input() -> None:
    price = PriceTable().price("claude-opus-5-5")
    assert price.cost(0, 0, cache_read=1_000_000) == pytest.approx(0.20)
    assert price.cost(0, 0, cache_write=1_000_000) == pytest.approx(5.0)  # 1.25x


def test_a_user_table_s_newest_model_is_the_family_s_newest() -> None:
    table = PriceTable(models={"claude-opus-4-5": price(5, 25), "claude-opus-4-1": price(15, 75)})
    assert table.priced_as("claude-opus-9") == "claude-opus-4-5"
    assert table.price("claude-haiku-9") == table.default  # no Haiku known: the default
