"""``velocityrules.window_max`` (a bisection per start) against the sliding window it replaced:
the same count and the same start, on known answers and on random sorted times; and the
per-window counts of platform velocity's baseline (bisected at the windows' edges) against
counting each time."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from hypothesis import given
from hypothesis import strategies as st

from readmodels.velocityrules import _per_window, window_max


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


def counted(times: Sequence[int], since: int, width: int, span: int) -> list[int]:
    """The per-window counts as platform velocity first wrote them (the reference)."""
    buckets = Counter((t - since) // width for t in times)
    return [*buckets.values(), *[0] * max(0, span - len(buckets))]


def test_per_window_known_answer() -> None:
    # Windows [100, 110), [110, 120), [120, 130): 110 opens the second, 129 closes the third.
    assert _per_window([100, 105, 110, 129], 100, 129, 10, 3) == [2, 1, 1]


@given(
    st.lists(st.integers(min_value=0, max_value=10_000), max_size=150).map(sorted),
    st.integers(min_value=0, max_value=5_000),
    st.integers(min_value=1, max_value=700),
)
def test_per_window_equals_counting_each_time(times: list[int], since: int, width: int) -> None:
    now = since + 5_000
    inside = [t for t in times if since <= t <= now]  # the look-back's records
    span = max(1, (now - since) // width + 1)
    assert sorted(_per_window(inside, since, now, width, span)) == sorted(
        counted(inside, since, width, span)
    )
