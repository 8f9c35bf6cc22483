"""``tracemark verify`` starts without the database, the web framework or the HTTP client.

Every command module is imported on every start (each registers its commands), so a heavy
module-level import in any of them is paid by ``tracemark verify`` and ``tracemark --help``:
the commands import those where they run (``api/cli/app.py``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

#: Never needed to check evidence offline: the registry's database and its web framework,
#: the HTTP client, eth_account (signing), web3 (only with ``--rpc``).
FORBIDDEN = ["sqlalchemy", "sqlmodel", "fastapi", "httpx2", "eth_account", "web3", "uvicorn"]


def _imported_after(program: str) -> list[str]:
    # A fresh interpreter: in this one, other tests may already have imported anything.
    check = (
        "import json, sys\n"
        f"print(json.dumps(sorted(m for m in {FORBIDDEN!r} if m in sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program + "\n" + check],
        check=True,
        capture_output=True,
        text=True,
    )
    found: list[str] = json.loads(result.stdout.strip().splitlines()[-1])
    return found


def test_importing_the_cli_imports_no_infrastructure() -> None:
    assert _imported_after("import api.cli") == []


def test_verify_help_imports_no_infrastructure() -> None:
    # The real path of `tracemark verify --help`: typer builds every command (evaluating
    # each one's annotations) before it prints the help of one.
    program = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from api.cli import app\n"
        "result = CliRunner().invoke(app, ['verify', '--help'])\n"
        "assert result.exit_code == 0, result.output\n"
        "assert 'BUNDLE.json' in result.output\n"
    )
    assert _imported_after(program) == []


def test_exit_codes_are_mapped_without_the_heavy_modules() -> None:
    # The classes EXIT_CODES maps live in light modules and are the ones the heavy modules
    # raise (re-exported there), so `except`/isinstance still match.
    from api.cli import EXIT_CODES
    from registry.audit import LogCorrupt
    from verifier.client import NotAuthorized, RegistryUnreachable

    assert EXIT_CODES[LogCorrupt] == 9
    assert EXIT_CODES[NotAuthorized] == 13
    assert EXIT_CODES[RegistryUnreachable] == 14


def test_fingerprinting_runs_without_the_account_or_the_verifier(tmp_path: Path) -> None:
    # `tracemark fingerprint` may be called once per good by a creator's script: it loads
    # the code key alone (registry.codekeyring), never eth_account, pydantic's models of the
    # evidence, or the database (bench/cli_bench.py measures the start).
    keys = tmp_path / "keys"
    from typer.testing import CliRunner

    from api.cli import app

    made = CliRunner().invoke(app, ["--keys-dir", str(keys), "keys", "new"])
    assert made.exit_code == 0, made.output
    sample = tmp_path / "sample.bin"
    sample.write_bytes(b"sample")
    for arguments in (["--code", "CARD-0001"], [str(sample)]):
        program = (
            "import sys\n"
            "from typer.testing import CliRunner\n"
            "from api.cli import app\n"
            f"arguments = ['--keys-dir', {str(keys)!r}, 'fingerprint', *{arguments!r}]\n"
            "result = CliRunner().invoke(app, arguments)\n"
            "assert result.exit_code == 0, result.output\n"
            "assert result.output.startswith('0x'), result.output\n"
        )
        assert _imported_after(program) == [], arguments
