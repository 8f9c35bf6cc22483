"""The ``tracemark`` command: creators register and revoke, operators run and inspect the log.

The creator commands talk to a registry's HTTP API with ``--api URL`` (signing locally), or
call the registry's service layer on the database directly (the operator's mode). Exit codes
(README): 0 ok, 1 internal error, 2 usage, 3 invalid input, 4 not found, 5 conflict,
6 signature refused, 7 busy (retry), 8 configuration, 9 the stored log contradicts itself,
10 the chain is unreachable, 11 a bundle does not verify, 12 a bundle checks out but is not
yet evidence against the chain, 13 the API refused the credentials, 14 the API is
unreachable, 15 no pinned trust root names the evidence's registry, 16 the evidence's
anchor is not final yet, 17 an absence proof verified: the good is not registered, 18 a
monitor's alarm: the log contradicts itself or what the monitor verified (split view, rollback).
"""

# Each command's module is imported when the command runs (api.cli.lazy.COMMANDS, the
# order of --help too): ``tracemark verify`` imports none of the others.
import atexit
import os
import sys
import threading
from typing import NoReturn

from api.cli.app import EXIT_CODES, app, fail, state


def main() -> None:
    """The ``tracemark`` program: run the command line, then exit with its code."""
    state.is_program = True
    try:
        app()
    except SystemExit as done:
        if state.ends_without_teardown and isinstance(done.code, int):
            _end_without_teardown(done)
        raise


def _end_without_teardown(done: SystemExit) -> NoReturn:
    """Exit with ``done``'s code as Python's exit does, but for freeing memory.

    NOTE: Python's exit waits for threads, runs the exit handlers, flushes stdout and stderr,
    then tears the interpreter down: every module cleared, a last cyclic collection, every
    object freed. After ``tracemark verify`` of an export that teardown took ~0.07 s CPU of a
    ~0.9 s run (issue 11's benchmark, bench/trust_verify_bench.py), and the OS reclaims the
    process's memory at once anyway. So a command that opts in (``State.ends_without_teardown``:
    nothing of its own to close or write) ends here with the same exit handlers run and the
    same output flushed; with another thread still running, or output that cannot be
    flushed, Python's own exit runs instead (the same code, and its own report)."""
    if threading.active_count() > 1:
        raise done
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):  # a closed pipe: Python's exit reports it its own way
        raise done from None
    os._exit(int(done.code or 0))


__all__ = ["EXIT_CODES", "app", "fail", "main"]
