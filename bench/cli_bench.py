"""How long a ``tracemark`` command takes to start, as a whole process, against ``python -c pass``.

Run: ``.venv/bin/python -m bench.cli_bench [--rounds R]``. Measures, alternating, median of
``--rounds`` whole processes each:

- ``tracemark --help``;
- ``tracemark fingerprint --code X`` (reads the creator's code key from a keys directory
  made for the run);
- ``tracemark fingerprint FILE`` (a 1 MiB file);
- the floor: ``python -c pass`` with the same interpreter.

Every command is paid for by a script that calls the CLI per good, so each must start within
0.5 s of the floor (issue 13). Writes ``bench/results/cli.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import save

#: The budget above the floor for each command (seconds).
TARGET_OVER_FLOOR = 0.5


def _timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=False, env=env)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.strip()}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    tracemark = str(Path(sys.executable).with_name("tracemark"))
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        env = {
            **os.environ,
            "TRACEMARK_KEYS_DIR": str(tmp / "keys"),
            "TRACEMARK_DATA_DIR": str(tmp / "data"),
        }
        subprocess.run([tracemark, "keys", "new"], check=True, capture_output=True, env=env)
        sample = tmp / "sample.bin"
        sample.write_bytes(os.urandom(1 << 20))
        commands = {
            "help": [tracemark, "--help"],
            "fingerprint_code": [tracemark, "fingerprint", "--code", "BENCH-0001"],
            "fingerprint_file": [tracemark, "fingerprint", str(sample)],
            "floor": [sys.executable, "-c", "pass"],
        }
        for argv in commands.values():  # warm the page cache and the bytecode cache
            _timed(argv, env)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.rounds):
            for name, argv in commands.items():
                times[name].append(_timed(argv, env))
    medians = {name: statistics.median(samples) for name, samples in times.items()}
    floor = medians["floor"]
    data: dict[str, object] = {
        "rounds": args.rounds,
        "floor_seconds_median": round(floor, 3),
        "target": f"each command within {TARGET_OVER_FLOOR} s of the floor",
    }
    for name in ("help", "fingerprint_code", "fingerprint_file"):
        over = medians[name] - floor
        data[name] = {
            "seconds_median": round(medians[name], 3),
            "seconds": [round(t, 3) for t in times[name]],
            "over_floor_seconds": round(over, 3),
            "within_target": over <= TARGET_OVER_FLOOR,
        }
    path = save("cli", data)
    print(json.dumps(data, indent=2))
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
