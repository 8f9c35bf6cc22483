"""The verify benchmark's numbers: a phase's summary, the medians over rounds and their ratios to
bare, the table."""

from __future__ import annotations

import statistics
from collections import Counter
from typing import Any

from bench.common import percentile

TARGET_RATIO = 0.5
TARGET_P99_MS = 25.0
PHASES = ("bare", "verify_fingerprint", "verify_code")


def summarise(raw: dict[str, Any]) -> dict[str, Any]:
    lat = raw["latencies"]
    n = raw["requests"]
    out = {
        "requests": n,
        "seconds": round(raw["seconds"], 3),
        "rps": raw["rps"],
        "p50_ms": percentile(lat, 0.50) * 1e3,
        "p99_ms": percentile(lat, 0.99) * 1e3,
        "p999_ms": percentile(lat, 0.999) * 1e3,
        "max_ms": max(lat) * 1e3,
        "client_cpu_us_per_req": raw["client_cpu_s"] / n * 1e6,
        "client_cpu_util": raw["client_cpu_s"] / raw["seconds"],
        "server_cpu_us_per_req": raw["server_cpu_s"] / n * 1e6,
        "server_cpu_util": raw["server_cpu_s"] / raw["seconds"],
        # Cores other processes used meanwhile (someone's tests, say): noise, not ours.
        "foreign_cpu_util": raw["foreign_cpu_s"] / raw["seconds"],
        "errors": raw["errors"],
    }
    if raw["error_samples"]:
        out["error_samples"] = raw["error_samples"]
    return out


def medians(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for phase in PHASES:
        rows = [r[phase] for r in rounds]
        numeric = [k for k, v in rows[0].items() if isinstance(v, int | float)]
        med = {k: statistics.median(row[k] for row in rows) for k in numeric}
        errors: Counter[str] = Counter()
        for row in rows:
            errors.update(row["errors"])
        med["errors"] = dict(errors)
        out[phase] = med
    bare = out["bare"]
    for phase in ("verify_fingerprint", "verify_code"):
        out[phase]["ratio_rps"] = out[phase]["rps"] / bare["rps"]
        out[phase]["ratio_rps_per_round"] = [r[phase]["rps"] / r["bare"]["rps"] for r in rounds]
        # Server CPU per request, bare / this: the throughput ratio a server that had its core
        # to itself would reach; steadier than throughput when other processes take CPU.
        out[phase]["cpu_ratio"] = statistics.median(
            r["bare"]["server_cpu_us_per_req"] / r[phase]["server_cpu_us_per_req"] for r in rounds
        )
        out[phase]["ratio_p50"] = out[phase]["p50_ms"] / bare["p50_ms"]
        out[phase]["ratio_p99"] = out[phase]["p99_ms"] / bare["p99_ms"]
        out[phase]["pass"] = {
            "ratio": out[phase]["ratio_rps"] >= TARGET_RATIO,
            "p99": out[phase]["p99_ms"] < TARGET_P99_MS,
            "no_errors": not out[phase]["errors"],
        }
    return out


def table(medians_by_config: dict[str, Any]) -> None:
    print(
        f"\n{'config':9s} {'phase':19s} {'req/s':>7s} {'ratio':>6s} {'p50 ms':>7s} "
        f"{'p99 ms':>7s} {'server us/req':>13s} {'cpu ratio':>9s} {'client us/req':>13s} "
        f"{'others':>6s} "
        f"{'errors':>6s}"
    )
    for config, med in medians_by_config.items():
        for phase in PHASES:
            row = med[phase]
            ratio = f"{row['ratio_rps']:.0%}" if "ratio_rps" in row else "-"
            cpu_ratio = f"{row['cpu_ratio']:.0%}" if "cpu_ratio" in row else "-"
            print(
                f"{config:9s} {phase:19s} {row['rps']:7,.0f} {ratio:>6s} {row['p50_ms']:7.2f} "
                f"{row['p99_ms']:7.2f} {row['server_cpu_us_per_req']:13.0f} {cpu_ratio:>9s} "
                f"{row['client_cpu_us_per_req']:13.0f} {row['foreign_cpu_util']:6.2f} "
                f"{sum(row['errors'].values()):6d}"
            )
    print(
        "(ratio: throughput / bare's; server, client us/req: CPU time per request; cpu ratio:"
        " bare's server CPU per request / this one's; others: cores other processes used)"
    )
