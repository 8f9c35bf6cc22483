"""Shared helpers for the benchmarks: medians, result files, the machine they ran on."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


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
