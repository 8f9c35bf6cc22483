"""Shared helpers for the benchmarks: medians, result files, the machine they ran on."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

RESULTS = Path(__file__).parent / "results"
#: How a CPU time per call is printed in ``print_ratio``, by unit: its scale and its digits.
UNITS = {"us": (1e6, 0), "ms": (1e3, 2)}

T = TypeVar("T")


def median_seconds(run: Callable[[], object], repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def per_call_median(calls: list[Callable[[], object]], rounds: int = 5) -> float:
    """Median over ``rounds`` of the mean time per call over all ``calls`` (seconds)."""
    means = []
    for _ in range(rounds):
        started = time.perf_counter()
        for call in calls:
            call()
        means.append((time.perf_counter() - started) / len(calls))
    return statistics.median(means)


def rotations(kinds: Sequence[T], rounds: int) -> Iterator[tuple[int, list[T]]]:
    """Each round's number and ``kinds`` in the order they run in it: interleaved rounds, each
    kind going first in turn (round 0 in the given order), so drift hits all of them alike."""
    for number in range(rounds):
        turn = number % len(kinds)
        yield number, [*kinds[turn:], *kinds[:turn]]


def print_ratio(column: str, unit: str, ours: tuple[str, float], peer: tuple[str, float]) -> float:
    """Two medians of CPU seconds per call, labelled, as a table in ``unit`` ("us" or "ms"),
    then ours / peer and the load average, which it returns."""
    scale, digits = UNITS[unit]
    load = os.getloadavg()[0]
    print(f"{column:<44}{'CPU ' + unit + ' (median)':>18}")
    for label, seconds in (ours, peer):
        print(f"{label:<44}{seconds * scale:>18.{digits}f}")
    print(f"ratio: {ours[1] / peer[1]:.2f}  (load average {load:.1f})")
    return load


def save(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    data = {
        "benchmark": name,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **data,
    }
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile of ``values`` by nearest rank (no interpolation)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def sign_code_batch(
    registry: Any, creator: Any, batch: Any, *, product: str, new_product: bool
) -> Any:
    """The creator's signed BatchRegistration of a prepared batch of codes, as the benches
    register them: single use, no royalty recipients, no metadata, under the registry's domain
    and clock."""
    from registry.creator import sign_batch_registration
    from registry.fingerprints import GoodType, Use
    from registry.royalty import RoyaltyPolicy

    return sign_batch_registration(
        creator,
        registry.domain,
        batch,
        good_type=GoodType.CODE,
        product=product,
        use=Use.SINGLE,
        royalty_policy=RoyaltyPolicy.parse({"recipients": []}),
        metadata={},
        now=registry.clock(),
        new_product=new_product,
    )
