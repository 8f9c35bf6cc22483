"""Every JSON the CLI reads is bounded in size and depth before it is parsed: 150,000 nested
brackets are exit 3 and one line, never a crash (importing py_ecc raises the recursion limit
past what the C stack holds, so an unbounded ``json.loads`` segfaulted: exit 139).

Real subprocesses, so that a segfault shows as a negative return code."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from verifier.trust import MAX_TRUST_ROOT_BYTES

DEEP = 150_000


def _nested(levels: int) -> str:
    return "[" * levels + "]" * levels


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """Runs the installed ``tracemark`` on a data dir with a registry and creator keys."""
    script = shutil.which("tracemark", path=str(Path(sys.executable).parent))
    assert script is not None, "the tracemark console script is not installed in this venv"
    home = tmp_path_factory.mktemp("cli-json")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACEMARK_")}
    env["TRACEMARK_DATA_DIR"] = str(home / "data")
    env["TRACEMARK_TRUST_DIR"] = str(home / "trust")

    def invoke(*args: str | Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [script, *map(str, args)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=home,
        )

    assert invoke("init").returncode == 0
    assert invoke("keys", "new").returncode == 0
    return invoke


def _deep_file(tmp_path: Path, levels: int = DEEP) -> Path:
    path = tmp_path / "deep.json"
    path.write_text(_nested(levels))
    return path


def _refused(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 3, (result.returncode, result.stderr[-500:])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-500:]
    return lines[0]


@pytest.mark.parametrize("option", ["--royalty", "--metadata"])
def test_register_refuses_a_deeply_nested_json_file(run, tmp_path: Path, option: str) -> None:  # type: ignore[no-untyped-def]
    good = tmp_path / "a.bin"
    good.write_bytes(b"a")
    line = _refused(run("register", good, option, _deep_file(tmp_path), "--product", "p"))
    assert "nested deeper than" in line


def test_register_codes_refuses_a_deeply_nested_policy(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    codes = tmp_path / "codes.csv"
    codes.write_text("PA-X-1\n")
    result = run("register-codes", codes, "--royalty", _deep_file(tmp_path), "--product", "p")
    assert "nested deeper than" in _refused(result)


def test_verify_refuses_deeply_nested_evidence(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert "nested deeper than" in _refused(run("verify", _deep_file(tmp_path)))


def test_trust_roots_are_bounded_in_size_and_depth(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # 150,000 levels are beyond a trust root's size bound; the deepest that fits is not.
    assert "at most" in _refused(run("trust", "add", _deep_file(tmp_path)))
    fits = tmp_path / "fits.json"
    fits.write_text(_nested(MAX_TRUST_ROOT_BYTES // 2))
    # (``verify --trust FILE`` reads it with the same ``read_trust_root``.)
    assert "nested deeper than" in _refused(run("trust", "add", fits))


def test_an_item_given_as_an_option_is_bounded(run) -> None:  # type: ignore[no-untyped-def]
    # An argument holds at most 128 KiB on Linux: 20,000 levels (a traceback, exit 1, before).
    item = '{"a":' * 20_000 + "1" + "}" * 20_000
    assert "nested deeper than" in _refused(run("fingerprint", "--item", item))


def test_a_json_file_is_bounded_in_size(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    big = tmp_path / "big.json"
    big.write_text('{"a": "' + "x" * (2 * 1024 * 1024) + '"}')
    good = tmp_path / "a.bin"
    good.write_bytes(b"a")
    assert "larger than" in _refused(run("register", good, "--metadata", big, "--product", "p"))
