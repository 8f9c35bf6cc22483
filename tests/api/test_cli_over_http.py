"""The creator commands over HTTP (``--api URL``): a real uvicorn server on a loopback port,
the CLI in-process with typer's ``CliRunner``, on SQLite and PostgreSQL.

The server's app is wrapped in an ASGI recorder that keeps every byte a request carried
(request line, headers, body), so "codes never leave the creator's machine" is checked on
what the server actually received, not on what the client meant to send.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer
from eth_account import Account
from sqlalchemy import Engine

from anchoring.devchain import free_port
from api import cli as cli_module
from api.apikeys import create_api_key
from api.app import create_app
from registry.eip712 import DEV_DOMAIN
from registry.fingerprints import code_fingerprint, normalise_code
from registry.service import Registry
from tests.api.test_cli import Cli, random_code
from tests.serving import serving
from verifier.client import NotAuthorized, RegistryUnreachable, TracemarkClient

Scope = dict[str, Any]


class Recorder:
    """ASGI middleware: every byte of every HTTP request the app receives, kept in order."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen = bytearray()
        self.requests: list[str] = []

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        line = f"{scope['method']} {scope['path']}?{scope['query_string'].decode()}"
        self.requests.append(line)
        self.seen += line.encode() + b"\n"
        for name, value in scope["headers"]:
            self.seen += name + b": " + value + b"\n"

        async def recording_receive() -> Any:
            message = await receive()
            if message["type"] == "http.request":
                self.seen += message.get("body", b"")
            return message

        await self.app(scope, recording_receive, send)


@dataclass
class Server:
    url: str
    registry: Registry
    recorder: Recorder


@pytest.fixture
def server(engine: Engine) -> Iterator[Server]:
    """The API on a free loopback port, in a thread, with the system clock (the CLI signs
    with real time) and the default rate limits (the CLI must get through them)."""
    registry = Registry(
        engine, domain=DEV_DOMAIN, account=Account.create(), master_key=secrets.token_bytes(32)
    )
    port = free_port()
    recorder = Recorder(create_app(registry, siwe_domain=f"127.0.0.1:{port}"))
    with serving(recorder, port) as url:
        yield Server(url, registry, recorder)


def _cli(tmp_path: Path, name: str) -> Cli:
    cli = Cli(tmp_path / name)
    cli.tmp_path.mkdir()
    cli.env["TRACEMARK_API_URL"] = None
    cli("keys", "new")
    return cli


@pytest.fixture
def remote(tmp_path: Path) -> Cli:
    """A creator's CLI with keys and no registry of its own."""
    return _cli(tmp_path, "remote")


def _database_bytes(engine: Engine) -> bytes:
    """The SQLite database as it lies on disk (the main file and its WAL)."""
    path = Path(str(engine.url.database))
    return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())


def test_creator_commands_over_http_never_send_a_code(
    server: Server, remote: Cli, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    api = ["--api", server.url]
    codes = [random_code() for _ in range(300)]
    codes_file = remote.write(
        "codes.csv", "serial,code\n" + "".join(f"{n},{c}\n" for n, c in enumerate(codes))
    )
    leaked_file = remote.write("leaked.txt", "".join(c.lower() + "\n" for c in codes[:5]))
    work = remote.write("work.bin", secrets.token_bytes(4096))

    enrolled = remote.json("keys", "enroll", *api)
    assert enrolled["status"] == "enrolled"
    assert remote.json("keys", "enroll", *api)["status"] == "already-enrolled"
    [entry] = remote.json("register", work, "--product", "art", "--new-product", *api)["entries"]
    assert (entry["status"], entry["file"]) == ("queued", str(work))
    registered = remote.json(
        "register-codes", codes_file, "--product", "card", "--new-product", *api
    )
    assert (registered["registered"], registered["count"], registered["skipped"]) == (300, 300, [])
    remote.env["TRACEMARK_API_URL"] = server.url  # the environment works as well as --api
    revoked = remote.json("revoke", "--codes", leaked_file, "--reason", "leaked lot 7")
    assert revoked["registered"] == 5
    single = remote.json("revoke", "--file", work, "--reason", "withdrawn")
    assert single["kind"] == "REVOKE" and single["status"] == "queued"

    # The registry has them: the batch is logged, the codes are revoked, looked up by the
    # fingerprint the creator computed locally.
    server.registry.sequence_all()
    key = remote.code_key()
    address = Account.from_key(remote.creator_key_hex()).address
    verdicts = {
        code: TracemarkClient(server.url)
        .verify("code", fingerprint=code_fingerprint(key, code))
        .verdict
        for code in (codes[0], codes[4], codes[5])
    }
    assert verdicts == {codes[0]: "revoked", codes[4]: "revoked", codes[5]: "pending_anchor"}
    assert enrolled["creator"] == address
    # Nothing was written on the creator's side but keys: no database, no registry key.
    assert not (remote.data_dir / "registry.db").exists()
    assert sorted(p.name for p in remote.data_dir.iterdir()) == ["keys"]

    # Not one code, in any form, reached the server, its log or its database.
    seen = bytes(server.recorder.seen)
    logged = caplog.text
    stored = (
        _database_bytes(server.registry.engine)
        if server.registry.engine.url.get_backend_name() == "sqlite"
        else b""
    )
    outputs = "\n".join(remote.outputs)
    for code in codes:
        for form in {code, code.lower(), normalise_code(code), code.replace("-", "")}:
            assert form.encode() not in seen
            assert form not in logged and form not in outputs
            assert form.encode() not in stored
    # The code key went once, in the enrolment (by design), and is in no log or row.
    assert seen.count(key.hex().encode()) == 2  # two enrolments, the second a no-op
    assert key.hex() not in logged and key.hex().encode() not in stored
    assert any(r.startswith("POST /v1/registrations/batches") for r in server.recorder.requests)


def _shape(value: Any) -> Any:
    """A JSON value's shape: the keys and the types of its leaves."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value[:1]]
    return type(value).__name__


def test_json_output_has_the_same_shape_in_both_modes(
    server: Server, remote: Cli, tmp_path: Path
) -> None:
    direct = _cli(tmp_path, "direct")
    direct("init")
    outputs: dict[str, list[Any]] = {"direct": [], "remote": []}
    for mode, cli, api in [("direct", direct, []), ("remote", remote, ["--api", server.url])]:
        codes = [random_code() for _ in range(50)]
        codes_file = cli.write("codes.txt", "\n".join(codes) + "\n")
        leaked = cli.write("leaked.txt", "\n".join(codes[:3]) + "\n")
        work = cli.write("work.bin", secrets.token_bytes(100))
        fingerprint = "0x" + code_fingerprint(cli.code_key(), codes[10]).hex()
        outputs[mode] = [
            cli.json("keys", "enroll", *api),
            cli.json("register", work, "--product", "art", "--new-product", *api),
            cli.json("register", work, "--product", "art", *api),  # again: already registered
            cli.json("register-codes", codes_file, "--product", "card", "--new-product", *api),
            cli.json("revoke", "--codes", leaked, "--reason", "leaked", *api),
            cli.json("revoke", "--fingerprint", fingerprint, "--reason", "sold out", *api),
        ]

    assert [_shape(o) for o in outputs["remote"]] == [_shape(o) for o in outputs["direct"]]
    statuses = [
        [o.get("status") or [e["status"] for e in o.get("entries", [])] for o in outputs[m]]
        for m in ("direct", "remote")
    ]
    assert statuses[0] == statuses[1]
    counted = [[(o.get("count"), o.get("registered")) for o in outputs[m]] for m in outputs]
    assert counted[0] == counted[1]


def test_errors_over_http_keep_the_direct_modes_exit_codes(server: Server, remote: Cli) -> None:
    api = ["--api", server.url]
    work = remote.write("work.bin", secrets.token_bytes(100))
    # The log is empty, so the configured domain is used: a wrong one is a refused signature.
    remote.env["TRACEMARK_CHAIN_ID"] = "1"
    stderr = remote.error("register", work, "--product", "art", "--new-product", *api, expect=6)
    assert "not made by the claimed signer" in stderr
    remote.env["TRACEMARK_CHAIN_ID"] = None

    assert "art" in remote.error("register", work, "--product", "art", *api, expect=4)
    remote("register", work, "--product", "art", "--new-product", *api)
    server.registry.sequence_all()  # from now on the API's head names its domain
    remote.env["TRACEMARK_CHAIN_ID"] = "1"  # ... and the configured one no longer matters
    remote("register", remote.write("w2.bin", b"w2"), "--product", "art", *api)

    other = _cli(remote.tmp_path, "other")
    stderr = other.error("revoke", "--file", work, "--reason", "mine now", *api, expect=4)
    assert "registered by the signer" in stderr
    remote("keys", "enroll", *api)
    first = remote.json("keys", "show")["current_kid"]
    kid = remote.json("keys", "rotate")["kid"]
    assert remote.json("keys", "enroll", *api)["status"] == "enrolled"  # a second key
    assert remote.json("keys", "retire", first, *api)["status"] == "retired"
    assert "no code key" in remote.error("keys", "retire", "0x" + "11" * 32, *api, expect=4)
    # A retired key is never enrolled again.
    (remote.keys_dir / "code.current").write_text(first + "\n")
    assert "retired" in remote.error("keys", "enroll", *api, expect=5)
    (remote.keys_dir / "code.current").write_text(kid + "\n")
    bad = remote.write("bad.txt", "\n\n")
    remote.error("register-codes", bad, "--product", "card", *api, expect=3)
    remote.error("register", work, "--api", "ftp://nowhere", expect=8)
    # A bulk upload fails in its job, after the 202: still the error's own exit code.
    codes = remote.write("codes.csv", "serial,code\n1,AAAA-BBBB-CCCC\n")
    stderr = remote.error("register-codes", codes, "--product", "no-such-card", *api, expect=4)
    assert "no-such-card" in stderr


def test_an_unreachable_registry_is_one_clear_line_and_exit_14(remote: Cli) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    work = remote.write("work.bin", b"work")
    for args in (["keys", "enroll"], ["register", work, "--product", "art"]):
        result = remote(*args, "--api", url, expect=14)
        assert result.stdout == ""
        assert result.stderr.startswith(f"error: cannot reach the registry at {url}")
        assert len(result.stderr.splitlines()) == 1


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (NotAuthorized(401, "t", "Unauthorized", "who are you", code="unauthorized"), 13),
        (RegistryUnreachable("cannot reach the registry at http://x"), 14),
    ],
)
def test_the_remote_errors_have_their_exit_codes(
    error: Exception, code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(typer.Exit) as exited:
        cli_module.fail(error)  # type: ignore[arg-type]
    assert exited.value.exit_code == code
    assert capsys.readouterr().err.startswith("error: ")


def test_royalty_statement_after_signing_in_with_ethereum(server: Server, remote: Cli) -> None:
    api = ["--api", server.url]
    policy = remote.write(
        "policy.json", json.dumps({"recipients": [{"address": "0x" + "11" * 20, "bps": 500}]})
    )
    work = remote.write("work.bin", secrets.token_bytes(100))
    [entry] = remote.json(
        "register", work, "--product", "art", "--new-product", "--royalty", policy, *api
    )["entries"]
    server.registry.sequence_all()
    key, _ = create_api_key(server.registry.engine, "cardhub", ["transfer"], "", int(time.time()))
    with TracemarkClient(server.url, api_key=key) as platform:
        for seller, buyer in [(None, "alice"), ("alice", "bob")]:
            platform.transfer(
                good_type="file",
                fingerprint=entry["fingerprint"],
                seller={"creator": True} if seller is None else {"reference": seller},
                buyer={"reference": buyer},
                price=10_000,
                currency="EUR",
            )

    statement = remote.json("creator", "statement", "--period", "all", *api)
    assert [(t["recipient"], t["amount"], t["currency"]) for t in statement["totals"]] == [
        ("0x" + "11" * 20, "500", "EUR")
    ]
    assert statement["lines"][0]["fingerprint"] == entry["fingerprint"]
    text = remote("creator", "statement", "--csv", "--since", "2020-01-01", *api).stdout
    assert text.splitlines()[0].startswith("period,") and entry["fingerprint"] in text
    human = " ".join(remote("creator", "statement", *api).stdout.split())
    assert "500 EUR" in human
    assert remote.error("creator", "statement", "--since", "yesterday", *api, expect=3)


def test_a_creator_restricts_and_reopens_first_hand_sales(server: Server, remote: Cli) -> None:
    api = ["--api", server.url]  # (the remote fixture has a creator key already)
    assert remote.json("creator", "distribution", *api) == {
        "restricted": False,
        "platforms": [],
        "updated_at": None,
    }
    restricted = remote.json(
        "creator", "distribution", "--restrict", "cardhub", "--restrict", "keyshop", *api
    )
    assert (restricted["restricted"], restricted["platforms"]) == (True, ["cardhub", "keyshop"])
    shown = " ".join(remote("creator", "distribution", *api).stdout.split())
    assert shown == "restricted: only cardhub, keyshop may sell your goods first-hand"
    reopened = remote.json("creator", "distribution", "--open", *api)
    assert (reopened["restricted"], reopened["platforms"]) == (False, ["cardhub", "keyshop"])
    assert remote.error("creator", "distribution", "--open", "--restrict", "x", *api, expect=3)
    assert remote.error("creator", "distribution", "--restrict", "Card Hub", *api, expect=3)
