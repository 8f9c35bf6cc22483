"""A compliance report (issue 18 item 3) against a real chain (anvil), end to end through the
command line: ``tracemark compliance report`` writes the report and its CSV from the
registry's database, a stranger with the file, the registry's pinned trust root and a node
verifies it (exit 0), and a doctored file fails (exit 11). Registry on SQLite; both
databases in tests/readmodels/test_compliance.py."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from api.cli import app
from api.cli.verify import EXIT_BUNDLE_INVALID, EXIT_NOT_ANCHORED
from readmodels.compliancecsv import BOM
from readmodels.signals import SOLD_BY_NON_HOLDER
from registry.service import Registry
from registry.settings import load_settings
from tests.conftest import Clock
from tests.readmodels.test_compliance import DAY, _market
from tests.verifier.conftest import World
from tests.verifier.test_verify_cli import Verify

pytestmark = pytest.mark.slow


@pytest.fixture
def registry(tmp_path: Path, clock: Clock) -> Registry:
    """The world's registry in a data dir, so that the command line opens the very same one
    (its database and its key)."""
    return Registry.open(load_settings(data_dir=tmp_path / "registry-data"), clock=clock)


@pytest.fixture
def verify(tmp_path: Path) -> Verify:
    return Verify(tmp_path)


def _tracemark(tmp_path: Path, *args: str | Path, expect: int = 0) -> Result:
    env = {"TRACEMARK_DATA_DIR": str(tmp_path / "registry-data"), "TRACEMARK_API_URL": None}
    result = CliRunner().invoke(app, [str(a) for a in args], env=env)
    assert result.exit_code == expect, (result.exit_code, result.stdout, result.stderr)
    return result


def test_the_report_from_the_command_line_verifies_against_the_chain(
    world: World, verify: Verify, tmp_path: Path
) -> None:
    market = _market(world.registry, world.creator, world.clock)
    world.anchor()
    out, sheet = tmp_path / "report.json", tmp_path / "report.csv"
    period = ["--from", str(market.start), "--to", str(market.start + DAY)]
    args = ["compliance", "report", "--platform", "cardhub", *period]
    line = _tracemark(tmp_path, *args, "--out", out, "--csv", sheet).stdout
    assert line.startswith("1 signal about platform cardhub from ")
    assert f"written: {out}, {sheet}" in line
    summary = json.loads(_tracemark(tmp_path, *args, "--json").stdout)
    assert summary["facts"]["by_code"] == {SOLD_BY_NON_HOLDER: 1}
    assert summary["files"] == {"json": None, "csv": None}
    text = sheet.read_bytes().decode("utf-8")
    assert text.startswith(BOM)
    [row] = list(csv.DictReader(text.removeprefix(BOM).splitlines()))
    assert (row["code"], row["amounts"]) == (SOLD_BY_NON_HOLDER, "1000 EUR")
    # A bad period: one line, invalid input (3).
    bad = _tracemark(tmp_path, *args[:4], "--from", "2026-02-01", "--to", "2026-01-01", expect=3)
    assert bad.stderr.startswith("error: the period's end must be after its start")

    rpc = world.devchain.rpc_url
    verify.pin(world.registry)
    done = verify(out, "--rpc", rpc, expect=0)
    assert done.stdout.startswith("OK: 1 signal about platform cardhub from ")
    assert "evidence: 1 good (" in done.stdout and "anchored on chain 31337" in done.stdout
    answer = json.loads(verify(out, "--rpc", rpc, "--json", expect=0).stdout)
    assert answer["status"] == "verified" and answer["facts"]["amounts"] == {"EUR": "1000"}
    assert answer["zh"][0].startswith("平台 cardhub 在 ")
    # Without a node: everything but the chain holds, not yet evidence.
    verify(out, expect=EXIT_NOT_ANCHORED)

    document = json.loads(out.read_text(encoding="utf-8"))
    for name, tamper in _TAMPERINGS.items():
        doctored = json.loads(json.dumps(document))
        tamper(doctored)
        path = verify.write(doctored, f"{name}.json")
        failed = verify(path, "--rpc", rpc, expect=EXIT_BUNDLE_INVALID)
        assert failed.stderr.startswith("FAIL: "), name
    # Keys reordered (format last): still read as a compliance report, and verified.
    reordered = {k: document[k] for k in [*sorted(set(document) - {"format"}), "format"]}
    verify(verify.write(reordered, "reordered.json"), "--rpc", rpc, expect=0)


def _drop_evidence(d: dict[str, Any]) -> None:
    d["signals"][0]["evidence"] = d["signals"][0]["evidence"][1:]


def _change_amount(d: dict[str, Any]) -> None:
    for item in d["signals"][0]["evidence"]:
        if item["entry"] is not None:
            item["entry"]["price"] = "1"


def _change_summary(d: dict[str, Any]) -> None:
    d["summary"]["facts"]["by_code"] = {}


_TAMPERINGS = {
    "drop-evidence": _drop_evidence,
    "change-amount": _change_amount,
    "change-summary": _change_summary,
}
