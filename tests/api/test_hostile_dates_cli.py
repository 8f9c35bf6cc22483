"""Times no calendar date can show never crash the command line (``verifier.timetext``), on
SQLite and PostgreSQL: a royalty statement whose answer a hostile or broken server rewrote
(a real uvicorn server on a loopback port, a middleware rewriting its JSON: the one thing the
real app cannot produce on demand), and the operator's listings of API keys and platform keys
whose rows hold such a time (a broken clock, an edited database)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from eth_account import Account
from fastapi import Request, Response
from sqlalchemy import Engine, update
from typer.testing import CliRunner

from anchoring.devchain import free_port
from api.apikeys import create_api_key
from api.app import create_app
from api.cli import app as cli_app
from api.models import ApiKey
from registry.eip712 import DEV_DOMAIN
from registry.platformkeys import platform_keys_t
from registry.service import Registry
from tests.api.test_cli import Cli
from tests.api.test_cli_over_http import remote  # noqa: F401
from tests.platformkeys import platform_address
from tests.serving import serving
from verifier.timetext import LAST_MOMENT

#: Past year 9999 (the first second ``datetime`` cannot hold), the most a BIGINT column holds,
#: and (from a server's JSON, which has no bound) far past a uint64, both ways.
HUGE = [LAST_MOMENT + 1, 2**63 - 1]
ROYALTIES = "/v1/creators/me/royalties"


@pytest.fixture
def hostile(engine: Engine) -> Iterator[tuple[str, dict[str, int]]]:
    """The API on a loopback port; the statement answers' ``since``/``until`` replaced by the
    values put in the yielded dict."""
    registry = Registry(
        engine, domain=DEV_DOMAIN, account=Account.create(), master_key=secrets.token_bytes(32)
    )
    port = free_port()
    app = create_app(registry, siwe_domain=f"127.0.0.1:{port}")
    rewrite: dict[str, int] = {}

    @app.middleware("http")
    async def huge_times(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        answer = await call_next(request)
        if request.url.path != ROYALTIES or answer.status_code != 200:
            return answer
        body = b"".join([chunk async for chunk in answer.body_iterator])  # type: ignore[attr-defined]
        document = json.loads(body)
        if isinstance(document, dict):
            document.update(rewrite)
            body = json.dumps(document).encode()
        headers = {k: v for k, v in answer.headers.items() if k.lower() != "content-length"}
        return Response(body, answer.status_code, headers)

    with serving(app, port) as url:
        yield url, rewrite


def test_a_statement_with_times_no_date_can_show_is_printed(
    hostile: tuple[str, dict[str, int]],
    remote: Cli,  # noqa: F811
) -> None:
    url, rewrite = hostile
    api = ["--api", url]
    remote("keys", "enroll", *api)
    honest = " ".join(remote("creator", "statement", "--since", "2020-01-01", *api).stdout.split())
    assert ", 2020-01-01 00:00:00 to " in honest  # dates as before
    for since, until in [(0, LAST_MOMENT + 1), (-(10**30), 10**30), (0, 2**64 - 1)]:
        rewrite.update(since=since, until=until)
        # It was an OverflowError or ValueError traceback (exit 1).
        shown = " ".join(remote("creator", "statement", *api).stdout.split())
        assert f"to {until} (Unix seconds) UTC" in shown, shown
        first = "1970-01-01 00:00:00" if since == 0 else f"{since} (Unix seconds)"
        assert f", {first} to " in shown, shown
        as_json = remote.json("creator", "statement", *api)
        assert (as_json["since"], as_json["until"]) == (since, until)


def _operator(tmp_path: Path, db_url: str) -> Callable[..., str]:
    env: dict[str, str | None] = dict.fromkeys(
        ("TRACEMARK_KEYS_DIR", "TRACEMARK_MASTER_KEY", "TRACEMARK_API_URL")
    )
    env["TRACEMARK_DATA_DIR"] = str(tmp_path / "data")
    env["TRACEMARK_DATABASE_URL"] = db_url

    def run(*args: str) -> str:
        ran = CliRunner().invoke(cli_app, list(args), env=env)
        assert ran.exception is None or isinstance(ran.exception, SystemExit), ran.exception
        assert ran.exit_code == 0, (ran.stdout, ran.stderr)
        return ran.stdout

    return run


def test_api_keys_with_times_no_date_can_show_are_listed(
    engine: Engine, db_url: str, tmp_path: Path
) -> None:
    run = _operator(tmp_path, db_url)
    _, normal = create_api_key(engine, "cardhub", ["verify"], "", 1_700_000_000)
    _, created = create_api_key(engine, "cardhub", ["verify"], "", HUGE[0])
    _, revoked = create_api_key(engine, "keyshop", ["verify"], "", HUGE[1])
    run("api-keys", "revoke", str(revoked.id))  # revoked now: a real date
    keys_t = ApiKey.__table__  # type: ignore[attr-defined]
    with engine.begin() as conn:
        conn.execute(update(keys_t).where(keys_t.c.id == revoked.id).values(revoked_at=HUGE[0]))
    lines = run("api-keys", "list").splitlines()
    assert len(lines) == 3, lines
    assert "created 2023-11-14T22:13:20Z  active" in lines[0]
    assert f"created {HUGE[0]} (Unix seconds)  active" in lines[1]
    assert f"created {HUGE[1]} (Unix seconds)  revoked {HUGE[0]} (Unix seconds)" in lines[2]
    again = run("api-keys", "revoke", str(revoked.id))
    assert again.strip().endswith(f"was already revoked at {HUGE[0]} (Unix seconds)")
    listed = json.loads(run("api-keys", "list", "--json"))["api_keys"]
    assert [k["created_at"] for k in listed] == [1_700_000_000, *HUGE]
    assert created.id == listed[1]["id"] and normal.id == listed[0]["id"]


def test_platform_keys_with_times_no_date_can_show_are_listed(
    engine: Engine, db_url: str, tmp_path: Path
) -> None:
    run = _operator(tmp_path, db_url)
    run(
        "platform-keys", "enroll", "--platform", "cardhub", "--address", platform_address("cardhub")
    )
    run(
        "platform-keys", "enroll", "--platform", "keyshop", "--address", platform_address("keyshop")
    )
    c = platform_keys_t.c
    with engine.begin() as conn:
        for platform, at in zip(("cardhub", "keyshop"), HUGE, strict=True):
            conn.execute(
                update(platform_keys_t).where(c.platform == platform).values(enrolled_at=at)
            )
    lines = run("platform-keys", "list").splitlines()
    assert [line.split("  enrolled ")[1].split(" by ")[0] for line in lines] == [
        f"{at} (Unix seconds)" for at in HUGE
    ]
