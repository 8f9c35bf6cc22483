"""``bench.processcpu``, what ``bench.cluster_bench`` counts a server side's CPU with: a
process's own CPU, one born mid-way counted from zero, one that ends counted up to its last
sample, and children found under their parent."""

from __future__ import annotations

import subprocess
import sys
import time

from bench.processcpu import CpuMeter, cpu_seconds, descendants

#: CPU seconds each busy child burns (its own measurement, by process_time).
BURN = 0.3
BUSY = (
    "import time\n"
    f"end = time.process_time() + {BURN}\n"
    "while time.process_time() < end: pass\n"
    "time.sleep(30)\n"
)


def _busy() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", BUSY])


def _until_burnt(process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while (cpu_seconds(process.pid) or 0.0) < BURN and time.monotonic() < deadline:
        time.sleep(0.05)


def test_a_meter_counts_the_stretch_only_and_processes_born_in_it() -> None:
    before = _busy()
    _until_burnt(before)  # its burn is over before the stretch: counts nothing
    later: list[subprocess.Popen[bytes]] = []
    try:
        seen: list[int] = []
        meter = CpuMeter(lambda: {"before": [before.pid], "later": list(seen)}, 0.05)
        meter.start()
        later.append(_busy())
        _until_burnt(later[0])
        seen.append(later[0].pid)  # first sampled after its burn, as a backend found late
        time.sleep(0.2)
        used = meter.stop()
        # Born during the stretch: all of its CPU (its start, then the burn).
        assert used["later"] >= BURN * 0.9
        assert used.get("before", 0.0) < BURN / 2
        assert meter.pids() == {"before": 1, "later": 1}
    finally:
        for process in (before, *later):
            process.kill()
            process.wait()


def test_a_process_that_ends_counts_up_to_its_last_sample() -> None:
    process = _busy()
    meter = CpuMeter(lambda: {"gone": [process.pid]}, 0.05)
    meter.start()
    _until_burnt(process)
    time.sleep(0.2)  # a few samples after the burn
    process.kill()
    process.wait()
    used = meter.stop()
    assert cpu_seconds(process.pid) is None
    assert used["gone"] >= BURN * 0.5


def test_descendants_are_found_under_their_parent() -> None:
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys, time\n"
            "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'])\n"
            "time.sleep(30)\n",
        ]
    )
    try:
        deadline = time.monotonic() + 30
        while not descendants(parent.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        children = descendants(parent.pid)
        assert len(children) == 1
        assert descendants(children[0]) == []
    finally:
        for pid in descendants(parent.pid):
            subprocess.run(["kill", str(pid)], check=False)
        parent.kill()
        parent.wait()
