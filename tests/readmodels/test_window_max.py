"""``velocityrules.window_max`` (a bisection per start) against the sliding window it replaced:
the same count and the same start, on known answers and on random sorted times."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import given
from hypothesis import strategies as st

from readmodels.velocityrules import window_max


def sliding(times: Sequence[int], window: int) -> tuple[int, int]:
    """The sliding window as ``window_max`` was written before (the reference)."""
    best, best_start, lo = 0, 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] > window:
            lo += 1
        if hi - lo + 1 > best:
            best, best_start = hi - lo + 1, lo
    return best, best_start


def test_known_answers() -> None:
    assert window_max([], 10) == (0, 0)
    assert window_max([5], 0) == (1, 0)
    # Both ends count: 0 and 10 are within 10 s of each other.
    assert window_max([0, 10, 21], 10) == (2, 0)
    # The busiest stretch is later; the first start holding the most is reported.
    assert window_max([0, 100, 101, 102, 200, 201, 202], 5) == (3, 1)
    # Equal times all fall in one window of 0 s.
    assert window_max([1, 7, 7, 7, 9], 0) == (3, 1)


@given(
    st.lists(st.integers(min_value=0, max_value=5_000), max_size=200).map(sorted),
    st.integers(min_value=0, max_value=600),
)
def test_equals_the_sliding_window(times: list[int], window: int) -> None:
    assert window_max(times, window) == sliding(times, window)
