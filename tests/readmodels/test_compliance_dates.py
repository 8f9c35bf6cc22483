"""A compliance report whose period is past 9999-12-31 (red team: a uint64 allows 2^64 - 1, and
``datetime`` holds years 1 to 9999), on real SQLite and PostgreSQL: the registry refuses to
build one, the offline verifier refuses one the registry's own key signed with a verdict and
exit 11 (it crashed formatting the summary's dates), and its CSV is rows, never a crash. The
route's 422 and the CLI's exit 3 are tests/api/test_hostile_compliance.py."""

from __future__ import annotations

import copy
import csv
import io
import json
import secrets
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from sqlalchemy import Engine

from api.cli.verify import EXIT_BUNDLE_INVALID
from readmodels.compliance import build_report
from readmodels.compliancecsv import BOM, csv_text
from registry.creator import CreatorKeys
from registry.eip712 import DEV_DOMAIN
from registry.errors import InvalidInput
from registry.service import Registry
from tests.conftest import Clock
from tests.readmodels.test_compliance import DAY, Market, _check, _market, _report, _signed_by
from tests.trust import trust_root_of
from tests.verifier.test_verify_cli import Verify
from verifier.compliance import ComplianceReport
from verifier.compliancefacts import summarize
from verifier.errors import BundleInvalid
from verifier.timetext import LAST_MOMENT

UINT64_MAX = 2**64 - 1
#: The largest integer RFC 8785 writes (I-JSON, RFC 7493 §2.2): a report whose period is
#: later cannot be hashed, so not signed either (its check fails at the signature).
LARGEST_SIGNED = 2**53 - 1
#: Periods no report covers that the registry's key can still sign: ending one second past
#: 9999, inside year 36812, at the largest integer canonical JSON writes.
HOSTILE_PERIODS = [
    (LAST_MOMENT - DAY, LAST_MOMENT + 1),
    (2**40, 2**40 + DAY),
    (LARGEST_SIGNED - DAY, LARGEST_SIGNED),
]


@pytest.fixture
def market(engine: Engine, creator: CreatorKeys, clock: Clock) -> Market:
    registry = Registry(
        engine,
        domain=DEV_DOMAIN,
        account=Account.create(),
        master_key=secrets.token_bytes(32),
        clock=clock,
    )
    return _market(registry, creator, clock)


def _hostile(document: dict[str, Any], start: int, end: int) -> dict[str, Any]:
    """The report over another period, its summary computed again as the registry would,
    and signed again by the registry's own key (by the caller)."""
    doctored = copy.deepcopy(document)
    doctored["period_from"], doctored["period_to"] = start, end
    doctored["summary"] = summarize(
        platform=doctored["platform"], start=start, end=end, signals=doctored["signals"]
    )
    return doctored


@pytest.mark.parametrize("period", HOSTILE_PERIODS, ids=["9999+1s", "2^40", "2^53-1"])
def test_a_signed_report_past_9999_is_refused_with_a_verdict_not_a_crash(
    market: Market, tmp_path: Path, period: tuple[int, int]
) -> None:
    registry = market.registry
    document = json.loads(_report(market).to_json())
    signed = _signed_by(registry, _hostile(document, *period))
    with pytest.raises(BundleInvalid) as refused:
        _check(registry, signed)
    assert refused.value.step == "period"
    assert f"this one runs from {period[0]} to {period[1]}" in refused.value.detail
    assert "9999-12-31 23:59:59 UTC" in refused.value.detail

    # ``tracemark verify``: one FAIL line and exit 11, never a traceback (exit 1).
    verify = Verify(tmp_path)
    root = verify.trust_file(trust_root_of(registry))
    failed = verify(verify.write(signed, "report.json"), "--trust", root, expect=11)
    assert EXIT_BUNDLE_INVALID == 11
    assert failed.stderr.startswith("FAIL: a report's period is calendar dates")
    assert str(period[1]) in " ".join(failed.stderr.split())
    answer = json.loads(
        verify(verify.write(signed, "report.json"), "--trust", root, "--json", expect=11).stdout
    )
    assert (answer["status"], answer["failed_step"]) == ("failed", "period")


def test_a_report_past_2_53_is_refused_at_its_signature_with_a_verdict(
    market: Market, tmp_path: Path
) -> None:
    """Up to 2^64 - 1 parses (uint64); past 2^53 - 1 its hash cannot be taken (RFC 8785), so
    no signature covers it: refused at step 0, exit 11, never a crash."""
    document = _hostile(json.loads(_report(market).to_json()), UINT64_MAX - DAY, UINT64_MAX)
    with pytest.raises(BundleInvalid) as refused:
        _check(market.registry, document)
    assert refused.value.step == "signature"
    verify = Verify(tmp_path)
    root = verify.trust_file(trust_root_of(market.registry))
    failed = verify(verify.write(document, "report.json"), "--trust", root, expect=11)
    assert failed.stderr.startswith("FAIL: the registry's signature does not cover this report")


def test_the_registry_builds_no_report_past_9999_and_does_the_last_second(
    market: Market,
) -> None:
    registry = market.registry
    for start, end in [*HOSTILE_PERIODS, (UINT64_MAX - DAY, UINT64_MAX)]:
        with pytest.raises(InvalidInput, match="a report's period is calendar dates"):
            build_report(registry, "cardhub", start=start, end=end)
    last = build_report(registry, "cardhub", start=LAST_MOMENT - DAY, end=LAST_MOMENT)
    assert last.summary["en"][0].endswith("to 9999-12-31 23:59:59 UTC")
    _check(registry, json.loads(last.to_json()))  # and it verifies


def test_the_csv_of_a_fetched_report_past_9999_is_rows_with_the_numbers(market: Market) -> None:
    """``tracemark compliance report --api URL --csv FILE`` writes the CSV of what the API
    answered, before any check: a hostile answer's times are cells, never a crash."""
    document = _hostile(json.loads(_report(market).to_json()), UINT64_MAX - DAY, UINT64_MAX)
    document["signals"][0]["raised_at"] = UINT64_MAX
    report = ComplianceReport.parse(json.dumps(document))
    rows = list(csv.DictReader(io.StringIO(csv_text(report).removeprefix(BOM))))
    assert rows[0]["period_to"] == f"{UINT64_MAX} (Unix seconds)"
    assert rows[0]["raised_at"] == f"{UINT64_MAX} (Unix seconds)"
    assert rows[0]["period_from"] == f"{UINT64_MAX - DAY} (Unix seconds)"
