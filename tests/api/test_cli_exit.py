"""How the ``tracemark`` program ends: ``verify`` without tearing the interpreter down, with
the same exit code, output and exit handlers; every other command as Python ends."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

#: Run ``api.cli.main`` as the ``tracemark`` script does, with an exit handler, an object
#: that says when the interpreter tears its module down, and optionally a thread still
#: running at the end.
_PROGRAM = r"""
import atexit, sys, threading, time

class Witness:
    def __del__(self):
        print("torn down", flush=True)

witness = Witness()
atexit.register(print, "exit handler ran")
if sys.argv[1] == "thread":
    threading.Thread(target=lambda: (time.sleep(0.3), print("thread finished"))).start()
sys.argv = ["tracemark", *sys.argv[2:]]
from api.cli import main
main()
"""


def _run(*arguments: str, thread: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _PROGRAM, "thread" if thread else "-", *arguments],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_verify_ends_with_its_code_output_and_exit_handlers_but_no_teardown(
    tmp_path: Path,
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    done = _run("verify", str(bad), "--json")
    assert done.returncode == 3, done
    assert done.stderr.strip(), "the refusal is printed"
    assert "exit handler ran" in done.stdout
    assert "torn down" not in done.stdout


def test_verify_with_a_thread_still_running_ends_as_python_does(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    done = _run("verify", str(bad), thread=True)
    assert done.returncode == 3, done
    assert "thread finished" in done.stdout
    assert "exit handler ran" in done.stdout


def test_other_commands_end_as_python_does() -> None:
    done = _run("--help")
    assert done.returncode == 0, done
    assert "verify" in done.stdout
    assert "exit handler ran" in done.stdout
    assert "torn down" in done.stdout


def test_the_same_code_and_output_as_the_command_itself(tmp_path: Path) -> None:
    # What the command line runner sees in process is what the program exits with.
    from typer.testing import CliRunner

    from api.cli import app

    missing = tmp_path / "missing.json"
    in_process = CliRunner().invoke(app, ["verify", str(missing)])
    done = _run("verify", str(missing))
    assert done.returncode == in_process.exit_code == 3
    assert in_process.output.strip() in done.stderr


def test_evidence_is_left_to_the_end_of_the_program_only() -> None:
    # In the program the evidence is never freed object by object (the process ends without
    # teardown); in a test's process nothing is kept.
    from api.cli.app import State

    evidence = object()
    elsewhere = State()
    elsewhere.leave_to_exit(evidence)
    assert elsewhere._left_to_exit == []
    program = State()
    program.is_program = True
    program.leave_to_exit(evidence)
    assert program._left_to_exit == [evidence]
