"""The credit formula ``credit/v1`` (issue 18 item 1): known answers for every constant,
the minimum-history rule, and Hypothesis properties (monotone the documented way)."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry.credit import FORMULA, MAX_SCORE, CreditInputs, credit_score

GOOD = ("sales_completed", "days_active")
BAD = (
    "fake_deliveries_refused",
    "disputes_lost",
    "bad_sale_attempts",
    "dead_goods_offered",
    "overdue_royalties",
)

#: The smallest rated history: 10 sales (30 * bit_length 4 = 120), 30 days (200*30//365 = 16).
SMALL = CreditInputs(sales_completed=10, days_active=30)


@pytest.mark.parametrize(
    ("inputs", "score"),
    [
        (SMALL, 636),
        # Each weight alone on the smallest history: penalty = 400 * w // 20 = 20 * w.
        (dataclasses.replace(SMALL, fake_deliveries_refused=1), 636 - 400),
        (dataclasses.replace(SMALL, disputes_lost=1), 636 - 200),
        (dataclasses.replace(SMALL, bad_sale_attempts=1), 636 - 300),
        (dataclasses.replace(SMALL, dead_goods_offered=1), 636 - 100),
        (dataclasses.replace(SMALL, overdue_royalties=1), 636 - 60),
        # 100 sales (7 bits: 210), a year (200), 5 refunds: 400 * 50 // 110 = 181.
        (CreditInputs(sales_completed=100, days_active=365, disputes_lost=5), 729),
        # Caps: sales points stop at 300, time at 200: the maximum.
        (CreditInputs(sales_completed=2**20, days_active=10_000), MAX_SCORE),
        # The penalty's cap and the floor at 0; a fake delivery among 1000 sales: 8000 // 1010.
        (dataclasses.replace(SMALL, bad_sale_attempts=100), 0),
        (CreditInputs(sales_completed=1000, days_active=1000, fake_deliveries_refused=1), 993),
    ],
)
def test_known_answers(inputs: CreditInputs, score: int) -> None:
    found = credit_score(inputs)
    assert (found.formula, found.rated, found.score) == (FORMULA, True, score)
    assert found.as_dict() == {
        "formula": "credit/v2",
        "rating": "rated",
        "score": score,
        "inputs": dataclasses.asdict(inputs),
    }


@pytest.mark.parametrize(
    "inputs",
    [
        CreditInputs(),
        CreditInputs(sales_completed=9, days_active=10_000),
        CreditInputs(sales_completed=10**6, days_active=29),
        # Unrated is not "bad": refusals do not make a new account rated.
        CreditInputs(sales_completed=3, days_active=3, bad_sale_attempts=50),
    ],
)
def test_below_the_minimum_history_is_unrated_not_a_low_score(inputs: CreditInputs) -> None:
    found = credit_score(inputs)
    assert not found.rated and found.score is None
    assert found.as_dict()["rating"] == "unrated"


@pytest.mark.parametrize("bad", [-1, 2**53, True, 1.0])
def test_inputs_are_bounded_integers(bad: object) -> None:
    with pytest.raises(ValueError, match="sales_completed"):
        CreditInputs(sales_completed=bad)  # type: ignore[arg-type]


counts = st.integers(min_value=0, max_value=10**7)
inputs_st = st.builds(
    CreditInputs,
    **{name: counts for name in (*GOOD, *BAD)},
)


@given(inputs_st)
def test_deterministic_bounded_and_rated_exactly_past_the_minimum(inputs: CreditInputs) -> None:
    first, again = credit_score(inputs), credit_score(dataclasses.replace(inputs))
    assert first == again
    assert first.rated == (inputs.sales_completed >= 10 and inputs.days_active >= 30)
    assert first.rated == (first.score is not None)
    if first.score is not None:
        assert 0 <= first.score <= MAX_SCORE


def _value(inputs: CreditInputs) -> float:
    score = credit_score(inputs).score
    return -1 if score is None else score


@given(inputs_st, st.sampled_from(GOOD), st.integers(min_value=1, max_value=10**6))
def test_more_sales_or_days_never_lower_the_score(
    inputs: CreditInputs, name: str, more: int
) -> None:
    grown = dataclasses.replace(inputs, **{name: getattr(inputs, name) + more})
    assert _value(grown) >= _value(inputs)


@given(inputs_st, st.sampled_from(BAD), st.integers(min_value=1, max_value=10**6))
def test_any_bad_fact_never_raises_the_score_nor_the_rating(
    inputs: CreditInputs, name: str, more: int
) -> None:
    worse = dataclasses.replace(inputs, **{name: getattr(inputs, name) + more})
    assert credit_score(worse).rated == credit_score(inputs).rated
    assert _value(worse) <= _value(inputs)


@given(inputs_st, st.sampled_from(BAD))
def test_a_bad_fact_on_a_rated_uncapped_history_lowers_it(inputs: CreditInputs, name: str) -> None:
    # One more bad fact on the smallest history costs at least 60 points (weight 3 * 20),
    # unless the score is already 0: the documented direction, strictly.
    base = dataclasses.replace(SMALL, **{name: getattr(inputs, name) % 3})
    worse = dataclasses.replace(base, **{name: getattr(base, name) + 1})
    before, after = credit_score(base).score, credit_score(worse).score
    assert before is not None and after is not None
    assert after < before or before == 0


def test_the_document_names_the_formula_v1_and_v2_share_the_arithmetic() -> None:
    """credit/v2 changed what a sale is (registry.creditfacts), not the arithmetic: the same
    inputs score the same under either name, and the name is what the document says."""
    inputs = CreditInputs(sales_completed=1000, days_active=1000, fake_deliveries_refused=1)
    v1, v2 = credit_score(inputs, "credit/v1"), credit_score(inputs)
    assert (v1.formula, v2.formula, FORMULA) == ("credit/v1", "credit/v2", "credit/v2")
    assert v1.score == v2.score == 993
    with pytest.raises(ValueError, match="unknown credit formula"):
        credit_score(inputs, "credit/v3")
