"""CPU time of the processes that answer for a server side, read from ``/proc``: named groups of
pids (found again at every sample, so that processes born mid-way count too), each group's
user + system seconds over a measured stretch. Used by ``bench.cluster_bench``."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

#: What a group finder returns: group name -> the pids in it now.
Groups = Mapping[str, list[int]]

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of the process ``pid`` (every thread), or None once it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces: split after its last ")".
    fields = raw.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def live_cpu_seconds(pid: int) -> float:
    """``cpu_seconds`` of a process that must still be running (a server the bench started)."""
    seconds = cpu_seconds(pid)
    if seconds is None:
        raise SystemExit(f"process {pid} is gone: its CPU cannot be read")
    return seconds


def command_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except (FileNotFoundError, ProcessLookupError):
        return ""


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children, their children, ...), from /proc's parent pids."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        ppid = int(raw.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry))
    found, queue = [], [pid]
    while queue:
        for child in parents.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return found


class CpuMeter:
    """Each group's CPU seconds between ``start`` and ``stop``.

    A pid seen at ``start`` counts from its value then; one first seen later (a PostgreSQL
    backend a pool opened mid-way, a restarted child) was born during the stretch and counts
    from zero. A pid that ends mid-way counts up to its last sample: ``interval`` bounds
    what is lost. Sampling runs in a thread of the measuring process, never in the servers.
    """

    def __init__(self, find: Callable[[], Groups], interval: float = 1.0) -> None:
        self.find = find
        self.interval = interval
        self._first: dict[tuple[str, int], float] = {}
        self._last: dict[tuple[str, int], float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self, *, at_start: bool = False) -> None:
        for group, pids in self.find().items():
            for pid in pids:
                used = cpu_seconds(pid)
                if used is None:
                    continue
                key = (group, pid)
                if key not in self._first:
                    self._first[key] = used if at_start else 0.0
                self._last[key] = used

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def start(self) -> None:
        self._first.clear()
        self._last.clear()
        self._stop.clear()
        self._sample(at_start=True)
        self._thread = threading.Thread(target=self._run, name="cpu-meter", daemon=True)
        self._thread.start()

    def stop(self) -> dict[str, float]:
        """Seconds of CPU per group over the stretch (a group with no process: 0)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()
        used: dict[str, float] = {}
        for (group, pid), last in self._last.items():
            used[group] = used.get(group, 0.0) + last - self._first[(group, pid)]
        return used

    def pids(self) -> dict[str, int]:
        """How many distinct processes each group had over the stretch."""
        count: dict[str, int] = {}
        for group, _pid in self._last:
            count[group] = count.get(group, 0) + 1
        return count


__all__ = ["CpuMeter", "command_name", "cpu_seconds", "descendants"]
