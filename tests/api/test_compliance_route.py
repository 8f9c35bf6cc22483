"""``GET /v1/compliance/platforms/{platform}/report`` (issue 18 item 3) through the real app, on
SQLite and PostgreSQL: the platform's own key and an auditor get a report that verifies
offline, and its CSV; another platform gets exactly the 404 of an unknown platform."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from anchoring.devchain import free_port
from api.app import create_app
from api.cli import app
from readmodels.compliancecsv import BOM, CSV_COLUMNS
from readmodels.signals import SOLD_BY_NON_HOLDER
from registry.creator import CreatorKeys
from registry.service import Registry
from tests.api.conftest import KeyFactory, bearer
from tests.api.test_order_routes import PROBLEM
from tests.conftest import Clock
from tests.readmodels.test_compliance import DAY, _market
from tests.serving import serving
from tests.trust import policy_of
from verifier.compliance import ComplianceReport, check_compliance_report


def _problem(answer: Any) -> dict[str, Any]:
    assert answer.headers["content-type"] == PROBLEM, answer.text
    body = dict(answer.json())
    body.pop("instance", None)  # the request's own path
    return body


def test_the_platform_and_auditors_fetch_a_verifiable_report_and_nobody_else(
    client: TestClient,
    registry: Registry,
    creator: CreatorKeys,
    clock: Clock,
    make_key: KeyFactory,
) -> None:
    market = _market(registry, creator, clock)
    cardhub = make_key("cardhub", "verify")
    auditor = make_key("auditco", "audit")
    keyshop = make_key("keyshop", "transfer", "verify")
    url = "/v1/compliance/platforms/cardhub/report"
    period = {"from": market.start, "to": market.start + DAY}

    documents = []
    for key in (cardhub, auditor):
        answer = client.get(url, params=period, headers=bearer(key))
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "application/json"
        report = ComplianceReport.parse(answer.content)
        check = check_compliance_report(report, policy_of(registry), None)
        assert check.summary_document["facts"]["by_code"] == {SOLD_BY_NON_HOLDER: 1}
        documents.append(report.signals)
    assert documents[0] == documents[1]

    spreadsheet = client.get(url, params={**period, "format": "csv"}, headers=bearer(cardhub))
    assert spreadsheet.status_code == 200
    assert spreadsheet.headers["content-type"] == "text/csv; charset=utf-8"
    text = spreadsheet.content.decode("utf-8")
    assert text.startswith(BOM + ",".join(CSV_COLUMNS))
    [row] = list(csv.DictReader(io.StringIO(text.removeprefix(BOM))))
    assert row["code"] == SOLD_BY_NON_HOLDER and row["amounts"] == "1000 EUR"
    # The rule named for a person in both languages (the pages' catalogues).
    assert (row["title_en"], row["title_zh"]) == ("Sold by a non-holder", "非持有者出售")

    # Another platform: the very answer an unknown platform gets (no oracle).
    theirs = client.get(url, params=period, headers=bearer(keyshop))
    unknown = client.get(
        "/v1/compliance/platforms/nosuch/report", params=period, headers=bearer(keyshop)
    )
    assert theirs.status_code == unknown.status_code == 404
    assert _problem(theirs) == _problem(unknown)
    assert client.get(url, params=period).status_code == 401
    # Its own report for a period of no signals: empty, and still a report.
    empty = client.get(
        "/v1/compliance/platforms/keyshop/report",
        params={"from": market.start + 5 * DAY, "to": market.start + 6 * DAY},
        headers=bearer(keyshop),
    )
    assert empty.status_code == 200 and ComplianceReport.parse(empty.content).signals == ()
    backwards = client.get(
        url, params={"from": market.start, "to": market.start - 1}, headers=bearer(auditor)
    )
    assert backwards.status_code == 400
    assert "end must be after its start" in _problem(backwards)["detail"]


def test_the_command_line_fetches_a_report_over_http(
    registry: Registry, creator: CreatorKeys, clock: Clock, make_key: KeyFactory, tmp_path: Path
) -> None:
    """``tracemark compliance report --api URL``: a real server on a loopback port; the
    platform's own key writes the report and its CSV, another platform's is refused (4)."""
    market = _market(registry, creator, clock)
    cardhub, keyshop = make_key("cardhub", "verify"), make_key("keyshop", "verify")
    out, sheet = tmp_path / "report.json", tmp_path / "report.csv"
    period = ["--from", str(market.start), "--to", str(market.start + DAY)]
    args = ["compliance", "report", "--platform", "cardhub", *period]
    runner = CliRunner()
    with serving(create_app(registry), free_port()) as url:
        env = {"TRACEMARK_DATA_DIR": str(tmp_path / "data"), "TRACEMARK_API_URL": url}
        done = runner.invoke(
            app,
            [*args, "--out", str(out), "--csv", str(sheet)],
            env={**env, "TRACEMARK_API_KEY": cardhub},
        )
        assert done.exit_code == 0, (done.stdout, done.stderr)
        refused = runner.invoke(app, args, env={**env, "TRACEMARK_API_KEY": keyshop})
    assert done.stdout.startswith("1 signal about platform cardhub from ")
    report = ComplianceReport.parse(out.read_bytes())
    assert check_compliance_report(report, policy_of(registry), None).signals == 1
    assert sheet.read_bytes().startswith(BOM.encode("utf-8"))
    [row] = list(csv.DictReader(io.StringIO(sheet.read_text(encoding="utf-8-sig"))))
    assert (row["title_en"], row["title_zh"]) == ("Sold by a non-holder", "非持有者出售")
    assert refused.exit_code == 4 and refused.stdout == ""
    assert refused.stderr.startswith("error: no platform of that id whose report you may see")
