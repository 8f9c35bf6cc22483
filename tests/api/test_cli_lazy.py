"""The command table of ``api.cli.lazy``: complete, exact, and what makes a command lazy.

``tracemark`` imports a command's module only when that command runs; the table says which
module registers each command. A module that registers a command (or a group's subcommand)
the table does not list for it would make that command vanish or come up empty: these tests
find every registration by importing each module of ``api/cli`` alone.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import api.cli
from api.cli.lazy import COMMANDS

#: In a fresh interpreter: the frame, then the modules named; every command and group then
#: registered, as {name: [its subcommands]} (a command: []).
_REGISTERED = r"""
import importlib, json, sys
from api.cli.app import app
from api.cli.lazy import _registered

for module in sys.argv[1:]:
    importlib.import_module(module)
found = {}
for name, (kind, info) in _registered(app).items():
    commands = info.typer_instance.registered_commands if kind == "group" else []
    found[name] = sorted(c.name or c.callback.__name__ for c in commands)
print(json.dumps(found))
"""


def _registered_after(*modules: str) -> dict[str, list[str]]:
    done = subprocess.run(
        [sys.executable, "-c", _REGISTERED, *modules], capture_output=True, text=True, check=True
    )
    found: dict[str, list[str]] = json.loads(done.stdout.splitlines()[-1])
    return found


def _modules() -> list[str]:
    return [
        f"api.cli.{info.name}"
        for info in pkgutil.iter_modules(api.cli.__path__)
        if info.name not in ("app", "lazy")
    ]


def test_every_command_and_group_is_in_the_table() -> None:
    everything = _registered_after(*_modules())
    missing = sorted(set(everything) - set(COMMANDS))
    assert not missing, f"registered but not in api.cli.lazy.COMMANDS: {missing}"
    assert not set(COMMANDS) - set(everything), "COMMANDS names a command nothing registers"


def test_the_table_modules_register_each_command_whole() -> None:
    # A group's subcommands may come from several modules (``creator``: remote, identity):
    # importing the table's modules for a name alone must give all of them.
    everything = _registered_after(*_modules())
    for name, modules in COMMANDS.items():
        alone = _registered_after(*modules)
        assert name in alone, f"{modules} do not register {name!r}"
        assert alone[name] == everything[name], f"{name!r} needs more modules than {modules}"


def test_a_command_runs_with_its_own_modules_only() -> None:
    # `tracemark verify --help` in a fresh process: no other command's module is imported.
    program = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from api.cli import app\n"
        "result = CliRunner().invoke(app, ['verify', '--help'])\n"
        "assert result.exit_code == 0, result.output\n"
        "print(sorted(m for m in sys.modules if m.startswith('api.cli.')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True
    )
    loaded = set(eval(done.stdout.strip().splitlines()[-1]))
    for module in ("api.cli.server", "api.cli.creator", "api.cli.log", "api.cli.trust"):
        assert module not in loaded
    assert "api.cli.verify" in loaded


def test_help_lists_every_command_in_the_table_order() -> None:
    from typer.testing import CliRunner

    result = CliRunner().invoke(api.cli.app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    # A command's row starts at the panel's edge; its wrapped description is indented.
    rows = [line[2:].split(" ")[0] for line in result.output.splitlines() if line[2:3] != " "]
    listed = [row for row in rows if row in COMMANDS]
    assert listed == list(COMMANDS)


def test_a_group_built_empty_at_start_gets_its_subcommands() -> None:
    # `keys` is created by the frame; its subcommands come from api.cli.creator.
    from typer.testing import CliRunner

    result = CliRunner().invoke(api.cli.app, ["keys", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for subcommand in ("new", "show", "enroll", "rotate", "retire"):
        assert f" {subcommand} " in result.output


def test_an_unknown_command_is_refused_with_suggestions_from_every_module() -> None:
    from typer.testing import CliRunner

    result = CliRunner().invoke(api.cli.app, ["regster"])
    assert result.exit_code == 2
    assert "No such command 'regster'" in result.output
    assert "'register'" in result.output
