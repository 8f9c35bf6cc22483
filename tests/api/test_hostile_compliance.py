"""Hostile probes of the compliance report route (issue 18 item 3, red team), through the real
app on SQLite and PostgreSQL: another platform's report by any spelling of its id, and how
many reports one caller can have built at once."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

import api.routes.compliance as compliance_route
from anchoring.devchain import free_port
from api.app import create_app
from api.cli import app
from registry.creator import CreatorKeys
from registry.service import Registry
from tests.api.conftest import KeyFactory, bearer
from tests.api.test_order_routes import PROBLEM
from tests.conftest import Clock
from tests.readmodels.test_compliance import DAY, _market
from tests.serving import serving


@pytest.mark.parametrize(
    "spelling", ["CardHub", "CARDHUB", "cardhub%20", "%63ardhub", " cardhub", "cardhub."]
)
def test_another_platform_reads_no_report_by_any_spelling(
    client: TestClient,
    registry: Registry,
    creator: CreatorKeys,
    clock: Clock,
    make_key: KeyFactory,
    spelling: str,
) -> None:
    market = _market(registry, creator, clock)
    keyshop = make_key("keyshop", "transfer", "verify")
    answer = client.get(
        f"/v1/compliance/platforms/{spelling}/report",
        params={"from": market.start, "to": market.start + DAY},
        headers=bearer(keyshop),
    )
    assert answer.status_code in (404, 422), answer.status_code
    assert "signals" not in answer.text


def test_one_key_cannot_have_many_reports_built_at_once(
    client: TestClient,
    registry: Registry,
    creator: CreatorKeys,
    clock: Clock,
    make_key: KeyFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A report over a busy platform's period costs seconds of CPU and megabytes (5,000 goods
    # proved at most: ~1 s and 820 KB for 58 goods measured), and a platform key's budget is
    # 200 requests at once: every one was built side by side in the thread pool, starving
    # every other sync route. Injected: a build slowed to 0.4 s so that calls overlap.
    market = _market(registry, creator, clock)
    key = make_key("cardhub", "verify")
    real_build = compliance_route.build_report
    lock = threading.Lock()
    building = [0, 0]  # now, most at once

    def slow_build(*args: Any, **kwargs: Any) -> Any:
        with lock:
            building[0] += 1
            building[1] = max(building[1], building[0])
        try:
            time.sleep(0.4)
            return real_build(*args, **kwargs)
        finally:
            with lock:
                building[0] -= 1

    monkeypatch.setattr(compliance_route, "build_report", slow_build)
    answers: list[Any] = []

    def fetch() -> None:
        answers.append(
            client.get(
                "/v1/compliance/platforms/cardhub/report",
                params={"from": market.start, "to": market.start + DAY},
                headers=bearer(key),
            )
        )

    threads = [threading.Thread(target=fetch) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(answers) == 6
    assert building[1] <= compliance_route.MAX_BUILDING, building
    codes = sorted(answer.status_code for answer in answers)
    assert 200 in codes and 429 in codes, codes
    for answer in answers:
        if answer.status_code == 429:
            assert int(answer.headers["retry-after"]) >= 1
            assert answer.json()["type"].endswith("/rate-limited")
    # Once the builds are done, the next call is served.
    fetch()
    assert answers[-1].status_code == 200


@pytest.mark.parametrize(
    "period",
    [
        (2**63 - 11, 2**63 - 1),
        (0, 366 * 86_400 + 1),
        (0, 0),
        (2**63 - 1, 2**63 - 1),
        (compliance_route.LAST_MOMENT - 86_400, compliance_route.LAST_MOMENT),
    ],
    ids=["int64-edge", "over-366-days", "epoch", "int64-max", "year-9999"],
)
def test_a_period_at_the_edges_is_a_report_or_a_4xx_never_a_5xx(
    client: TestClient,
    registry: Registry,
    creator: CreatorKeys,
    clock: Clock,
    make_key: KeyFactory,
    period: tuple[int, int],
) -> None:
    key = make_key("cardhub", "verify")
    for fmt in ("json", "csv"):
        answer = client.get(
            "/v1/compliance/platforms/cardhub/report",
            params={"from": period[0], "to": period[1], "format": fmt},
            headers=bearer(key),
        )
        # A period past year 9999 answered 500 (its summary's dates): now a 422.
        assert answer.status_code in (200, 400, 422), (fmt, answer.status_code, answer.text[:200])
    last = client.get(
        "/v1/compliance/platforms/cardhub/report",
        params={"from": compliance_route.LAST_MOMENT - 10, "to": compliance_route.LAST_MOMENT},
        headers=bearer(key),
    )
    assert last.status_code == 200, last.text[:200]


def test_a_period_past_9999_is_a_422_problem_in_chinese_and_exit_3_on_the_command_line(
    client: TestClient, registry: Registry, make_key: KeyFactory, tmp_path: Path
) -> None:
    """The route answers a period it cannot write as dates (past 9999-12-31 23:59:59 UTC)
    with a 422 problem, in Chinese when asked; ``tracemark compliance report --api`` says so
    in one line and exits 3 (invalid input), as with any refused period."""
    key = make_key("cardhub", "verify")
    url = "/v1/compliance/platforms/cardhub/report"
    past = {"from": compliance_route.LAST_MOMENT - 10, "to": compliance_route.LAST_MOMENT + 1}
    english = client.get(url, params=past, headers=bearer(key))
    chinese = client.get(url, params=past, headers={**bearer(key), "Accept-Language": "zh-CN"})
    for answer in (english, chinese):
        assert answer.status_code == 422, answer.text[:200]
        assert answer.headers["content-type"] == PROBLEM
        assert answer.json()["type"].endswith("/validation-error")
    assert english.json()["title"] == "Invalid request"
    assert (chinese.json()["title"], chinese.json()["detail"]) == (
        "请求无效",
        "请求中以下字段无效：query.to",
    )
    assert "less than or equal to 253402300799" in chinese.json()["errors"][0]["msg"]

    args = ["compliance", "report", "--platform", "cardhub"]
    runner = CliRunner()
    with serving(create_app(registry), free_port()) as served:
        env = {"TRACEMARK_DATA_DIR": str(tmp_path / "data"), "TRACEMARK_API_URL": served}
        refused = runner.invoke(
            app,
            [*args, "--from", str(past["from"]), "--to", str(past["to"])],
            env={**env, "TRACEMARK_API_KEY": key},
        )
    assert refused.exit_code == 3, (refused.stdout, refused.stderr)
    assert refused.stdout == "" and refused.stderr.startswith("error: ")
    assert len(refused.stderr.strip().splitlines()) == 1


def test_the_command_line_builds_no_report_past_9999_from_the_database(
    db_url: str, tmp_path: Path
) -> None:
    """``tracemark compliance report`` in the operator's mode (the registry's database, on
    SQLite and PostgreSQL): a period past 9999 is one line and exit 3 (it was a traceback,
    exit 1: the summary's dates); the period ending at the last second is a report."""
    env = {
        "TRACEMARK_DATA_DIR": str(tmp_path / "data"),
        "TRACEMARK_DATABASE_URL": db_url,
        "TRACEMARK_API_URL": None,
    }
    runner = CliRunner()
    args = ["compliance", "report", "--platform", "cardhub"]
    last = compliance_route.LAST_MOMENT
    for start, end in [(str(last - 10), str(last + 1)), (str(2**40), str(2**40 + 86_400))]:
        refused = runner.invoke(app, [*args, "--from", start, "--to", end], env=env)
        assert refused.exit_code == 3, (refused.exit_code, refused.stdout, refused.stderr)
        assert refused.stderr.startswith("error: a report's period is calendar dates")
        assert refused.stdout == "" and len(refused.stderr.strip().splitlines()) == 1
    done = runner.invoke(app, [*args, "--from", "9999-12-31", "--to", "9999-12-31"], env=env)
    assert done.exit_code == 0, (done.stdout, done.stderr)
    assert done.stdout.startswith(
        "0 signals about platform cardhub from 9999-12-31 00:00:00 UTC to 9999-12-31 23:59:59 UTC"
    )
