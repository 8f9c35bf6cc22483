"""``tracemark api-keys create | list | revoke``: the key printed exactly once, listings that
never show a key or its hash, revocation by id or prefix that the API honours at once."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from api.auth import Authenticator
from api.cli import app
from registry.service import Registry
from registry.settings import load_settings

_AMBIENT = (
    "TRACEMARK_DATABASE_URL",
    "TRACEMARK_KEYS_DIR",
    "TRACEMARK_MASTER_KEY",
    "TRACEMARK_CHAIN_ID",
    "TRACEMARK_CONTRACT_ADDRESS",
    "COLUMNS",
    "LINES",
)
KEY_RE = re.compile(r"tm_live_[1-9A-HJ-NP-Za-km-z]{44}")


class Cli:
    def __init__(self, tmp_path: Path) -> None:
        self.data_dir = tmp_path / "data"
        self.env: dict[str, str | None] = dict.fromkeys(_AMBIENT)
        self.env["TRACEMARK_DATA_DIR"] = str(self.data_dir)
        self.runner = CliRunner()
        self.outputs: list[str] = []

    def __call__(self, *args: str, expect: int = 0) -> Result:
        result = self.runner.invoke(app, list(args), env=self.env)
        self.outputs.append(result.stdout + result.stderr)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        assert result.exit_code == expect, (args, result.stdout, result.stderr)
        return result

    def registry(self) -> Registry:
        return Registry.open(load_settings(data_dir=self.data_dir))


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


def test_create_prints_the_key_once_with_a_warning(cli: Cli) -> None:
    result = cli(
        "api-keys", "create", "--platform", "cardhub", "--scope", "verify", "--scope", "transfer",
        "--label", "production",
    )  # fmt: skip
    key = result.stdout.strip()
    assert KEY_RE.fullmatch(key)
    assert "cannot be shown again" in result.stderr
    assert (result.stdout + result.stderr).count(key) == 1
    assert "tm_live_" in result.stderr and key not in result.stderr  # the prefix, not the key
    principal = Authenticator(cli.registry()).lookup_api_key(key)
    assert principal is not None and principal.platform == "cardhub"
    assert principal.scopes == {"verify", "transfer"}


def test_json_list_revoke(cli: Cli) -> None:
    created = json.loads(
        cli("api-keys", "create", "--platform", "cardhub", "--scope", "verify", "--json").stdout
    )
    key = created["key"]
    assert created["platform"] == "cardhub" and created["scopes"] == ["verify"]
    assert created["prefix"] == key[:16] and "cannot be shown again" in created["warning"]
    other = json.loads(
        cli("api-keys", "create", "--platform", "watchdog", "--scope", "audit", "--json").stdout
    )

    listed = json.loads(cli("api-keys", "list", "--json").stdout)["api_keys"]
    assert [k["id"] for k in listed] == [created["id"], other["id"]]
    assert set(listed[0]) == {
        "id", "platform", "prefix", "scopes", "label", "created_at", "revoked_at",
    }  # fmt: skip
    only = json.loads(cli("api-keys", "list", "--platform", "watchdog", "--json").stdout)
    assert [k["id"] for k in only["api_keys"]] == [other["id"]]
    human = cli("api-keys", "list").stdout
    assert created["prefix"] in human and "active" in human

    revoked = json.loads(cli("api-keys", "revoke", created["prefix"], "--json").stdout)
    assert revoked["revoked_now"] is True and revoked["revoked_at"] is not None
    assert Authenticator(cli.registry()).lookup_api_key(key) is None
    again = cli("api-keys", "revoke", str(created["id"]))
    assert "already revoked" in again.stdout
    assert "revoked" in cli("api-keys", "list", "--platform", "cardhub").stdout

    # Never the key, never its hash, in anything any command printed after creation.
    digest = hashlib.sha256(key.encode()).hexdigest()
    for output in cli.outputs[2:]:
        assert key not in output and digest not in output


def test_refusals_and_exit_codes(cli: Cli) -> None:
    err = cli("api-keys", "create", "--platform", "Card Hub", "--scope", "verify", expect=3)
    assert err.stderr.startswith("error: ") and "platform id" in err.stderr
    err = cli("api-keys", "create", "--platform", "cardhub", "--scope", "admin", expect=3)
    assert "admin" in err.stderr
    cli("api-keys", "create", "--platform", "cardhub", expect=2)  # --scope is required
    assert "no API key" in cli("api-keys", "revoke", "12345", expect=4).stderr
    mistyped = "tm_live_" + "1" * 43
    err = cli("api-keys", "revoke", mistyped, expect=3)
    assert mistyped not in err.stderr
    assert "no API keys" in cli("api-keys", "list").stderr
