"""The ``tracemark`` CLI end to end: keys, fingerprints, registration, revocation, the log.

Most tests drive ``api.cli.app`` in-process with typer's ``CliRunner`` on a fresh data dir
(SQLite at ``<data_dir>/registry.db``); one runs the installed console script in a real
subprocess. Proofs printed by the CLI are checked here with ``registry.merkle``, never
taken on trust.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import random
import secrets
import shutil
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import typer
from eth_account import Account
from typer.testing import CliRunner, Result

import registry.opening
from api import cli as cli_module
from api.cli import app
from registry import errors
from registry.codekeyring import key_commitment, key_id
from registry.db import create_db_engine
from registry.errors import InvalidProof
from registry.fingerprints import code_fingerprint, item_fingerprint, normalise_code
from registry.leaf import EntryKind, LeafData
from registry.merkle import hash_leaf, verify_consistency, verify_inclusion

#: Settings the CLI reads from the environment; a test names its data dir and nothing else.
_AMBIENT = (
    "TRACEMARK_API_URL",
    "TRACEMARK_DATABASE_URL",
    "TRACEMARK_KEYS_DIR",
    "TRACEMARK_MASTER_KEY",
    "TRACEMARK_CHAIN_ID",
    "TRACEMARK_CONTRACT_ADDRESS",
    "TRACEMARK_SEQUENCER_BATCH_SIZE",
    "COLUMNS",
    "LINES",
)
#: Letters that are not hex digits, so a code can never be mistaken for part of a hex string.
_CODE_ALPHABET = "GHJKLMNPQRSTUVWXYZ"


def random_code() -> str:
    """A card-style code such as ``QRST-WXYZ-GHJK``, dashes included."""
    groups = ("".join(secrets.choice(_CODE_ALPHABET) for _ in range(4)) for _ in range(3))
    return "-".join(groups)


class Cli:
    """Invokes the CLI on one data dir and keeps every output, for the no-secrets checks."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.data_dir = tmp_path / "data"
        self.keys_dir = self.data_dir / "keys"
        self.db_path = self.data_dir / "registry.db"
        self.runner = CliRunner()
        self.env: dict[str, str | None] = dict.fromkeys(_AMBIENT)
        self.env["TRACEMARK_DATA_DIR"] = str(self.data_dir)
        self.outputs: list[str] = []

    def __call__(self, *args: str | Path, expect: int = 0, input: str | None = None) -> Result:
        result = self.runner.invoke(app, [str(a) for a in args], env=self.env, input=input)
        self.outputs.append(result.stdout + result.stderr)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        assert result.exit_code == expect, (
            f"tracemark {' '.join(map(str, args))} exited {result.exit_code}, not {expect}\n"
            f"stdout: {result.stdout}\nstderr: {result.stderr}"
        )
        return result

    def json(self, *args: str | Path) -> Any:
        return json.loads(self(*args, "--json").stdout)

    def error(self, *args: str | Path, expect: int) -> str:
        """Run a command that must fail; return its stderr (which names the error).

        Whitespace is collapsed: whether the line is wrapped is a separate test's business.
        """
        result = self(*args, expect=expect)
        assert result.stdout == ""
        assert result.stderr.startswith("error: ")
        return " ".join(result.stderr.split())

    def count(self, table: str, where: str = "1 = 1") -> int:
        with sqlite3.connect(self.db_path) as conn:
            return int(conn.execute(f"SELECT count(*) FROM {table} WHERE {where}").fetchone()[0])

    def goods_entries(self) -> int:
        """Entries other than the state commitment every signed head ends with (issue 14)."""
        return self.count("entries", f"kind <> {int(EntryKind.STATE_COMMITMENT)}")

    def code_key(self, keys_dir: Path | None = None) -> bytes:
        text = ((keys_dir or self.keys_dir) / "code.key").read_text().strip()
        return bytes.fromhex(text)

    def creator_key_hex(self, keys_dir: Path | None = None) -> str:
        return ((keys_dir or self.keys_dir) / "creator.key").read_text().strip().removeprefix("0x")

    def write(self, name: str, content: str | bytes) -> Path:
        path = self.tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


@pytest.fixture
def creator_cli(cli: Cli) -> Cli:
    """A CLI whose data dir is initialised and whose default keys dir holds a creator."""
    cli("init")
    cli("keys", "new")
    return cli


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def file_print(path: Path) -> str:
    return "0x" + hashlib.sha256(path.read_bytes()).hexdigest()


# -- setup and keys --------------------------------------------------------------------------------


def test_init_is_idempotent_and_creates_private_files(cli: Cli) -> None:
    first = cli.json("init")
    keys = {name: (cli.data_dir / name).read_bytes() for name in ("registry.key", "master.key")}
    second = cli.json("init")

    assert first == second
    assert first["database"] == f"sqlite:///{cli.db_path.as_posix()}"
    assert mode(cli.data_dir) == 0o700
    for name, content in keys.items():
        assert mode(cli.data_dir / name) == 0o600
        assert (cli.data_dir / name).read_bytes() == content  # never regenerated
    registry_key = keys["registry.key"].decode().strip()
    assert Account.from_key(registry_key).address == first["registry_address"]


def test_keys_new_writes_owner_only_key_files(cli: Cli) -> None:
    shown = cli.json("keys", "new")

    assert mode(cli.keys_dir) == 0o700
    for name in ("creator.key", "code.key"):
        assert mode(cli.keys_dir / name) == 0o600
    assert shown == {"address": shown["address"], "keys_dir": str(cli.keys_dir)}
    assert Account.from_key(cli.creator_key_hex()).address == shown["address"]
    assert len(cli.code_key()) == 32


def test_keys_new_refuses_to_overwrite_existing_keys(cli: Cli) -> None:
    cli("keys", "new")
    before = {p.name: p.read_bytes() for p in cli.keys_dir.iterdir()}

    stderr = cli.error("keys", "new", expect=8)

    assert "already exists" in stderr
    assert {p.name: p.read_bytes() for p in cli.keys_dir.iterdir()} == before


def test_an_error_is_exactly_one_line_on_stderr(cli: Cli) -> None:
    cli("keys", "new")
    stderr = cli("keys", "new", expect=8).stderr
    assert stderr.startswith("error: ")
    assert len(stderr.splitlines()) == 1, stderr


def test_keys_show_prints_address_and_commitment_never_the_code_key(creator_cli: Cli) -> None:
    result = creator_cli("keys", "show", "--json")
    shown = json.loads(result.stdout)
    code_key = creator_cli.code_key()

    commitment = key_commitment(code_key)
    kid = key_id(commitment)
    assert shown == {
        "address": Account.from_key(creator_cli.creator_key_hex()).address,
        "code_key_commitment": "0x" + commitment.hex(),
        "current_kid": kid,
        "code_keys": [{"kid": kid, "key_commitment": "0x" + commitment.hex(), "current": True}],
    }
    for output in (result.stdout + result.stderr, creator_cli("keys", "show").stdout):
        assert code_key.hex() not in output.lower()
        assert creator_cli.creator_key_hex() not in output.lower()


def test_keys_show_without_keys_is_a_configuration_error(cli: Cli) -> None:
    assert "keys new" in cli.error("keys", "show", expect=8)


def test_keys_enroll_is_idempotent(creator_cli: Cli) -> None:
    first = creator_cli.json("keys", "enroll")
    records = creator_cli.count("signed_records")
    second = creator_cli.json("keys", "enroll")

    commitment = "0x" + key_commitment(creator_cli.code_key()).hex()
    assert first["status"] == "enrolled"
    assert second["status"] == "already-enrolled"
    assert first["key_commitment"] == second["key_commitment"] == commitment
    assert creator_cli.count("code_keys") == 1
    assert creator_cli.count("signed_records") == records  # a repeat consumes nothing


def test_rotate_enrol_and_retire_a_code_key(creator_cli: Cli) -> None:
    """Issue 11: a new code key next to the old one; codes under each; the old one retired."""
    first_kid = creator_cli.json("keys", "show")["current_kid"]
    assert creator_cli.json("keys", "enroll")["status"] == "enrolled"
    old_codes = [random_code() for _ in range(3)]
    creator_cli.json(
        "register-codes", codes_file(creator_cli, old_codes), "--product", "card", "--new-product"
    )

    rotated = creator_cli.json("keys", "rotate")
    kid = rotated["kid"]
    assert rotated["previous_kid"] == first_kid and kid != first_kid
    new_file = creator_cli.keys_dir / f"code-{kid}.key"
    assert mode(new_file) == 0o600 and (creator_cli.keys_dir / "code.key").exists()
    new_key = bytes.fromhex(new_file.read_text().strip())
    shown = creator_cli.json("keys", "show")
    assert shown["current_kid"] == kid
    assert {(k["kid"], k["current"]) for k in shown["code_keys"]} == {
        (first_kid, False),
        (kid, True),
    }
    # The current key is what fingerprints and registrations use from now on.
    code = random_code()
    printed = creator_cli.json("fingerprint", "--code", code)["fingerprint"]
    assert printed == "0x" + code_fingerprint(new_key, code).hex()
    assert creator_cli.json("keys", "enroll")["status"] == "enrolled"  # added, not a conflict
    assert creator_cli.json("keys", "enroll")["status"] == "already-enrolled"
    creator_cli.json("register-codes", codes_file(creator_cli, [code]), "--product", "card")
    assert creator_cli.count("code_keys") == 2

    retired = creator_cli.json("keys", "retire", first_kid)
    assert (retired["kid"], retired["status"]) == (first_kid, "retired")
    assert creator_cli.json("keys", "retire", first_kid)["status"] == "already-retired"
    with sqlite3.connect(creator_cli.db_path) as conn:
        rows = sorted(
            conn.execute("SELECT length(sealed_key), retired_at IS NULL FROM code_keys").fetchall()
        )
    assert rows[0] == (0, 0)  # the retired key: its sealed copy destroyed
    assert rows[1][0] > 32 and rows[1][1] == 1
    assert creator_cli.goods_entries() == 4  # the old codes keep their entries
    assert (creator_cli.keys_dir / "code.key").exists()  # the old key file is kept
    assert "no code key" in creator_cli.error("keys", "retire", "feedfeedfeedfeed", expect=3)
    assert creator_cli.error("keys", "retire", "0x" + "11" * 32, expect=4)


# -- fingerprints ----------------------------------------------------------------------------------


def test_fingerprint_of_a_file_equals_sha256sum(cli: Cli) -> None:
    # Larger than one 1 MiB read, and not a multiple of it.
    path = cli.write("big.bin", random.randbytes(2 * 1024 * 1024 + 123))
    if shutil.which("sha256sum"):
        expected = (
            "0x"
            + subprocess.run(
                ["sha256sum", str(path)], capture_output=True, text=True, check=True
            ).stdout.split()[0]
        )
    else:  # pragma: no cover - coreutils is on every CI image we use
        expected = file_print(path)

    assert cli("fingerprint", path).stdout.strip() == expected
    assert cli.json("fingerprint", path) == {"good_type": "file", "fingerprint": expected}


def test_fingerprint_of_a_code_read_from_stdin(creator_cli: Cli) -> None:
    key = creator_cli.code_key()
    code = random_code()
    expected = "0x" + code_fingerprint(key, code).hex()

    printed = creator_cli("fingerprint", "--code", "-", input=code + "\n").stdout.strip()
    # Normalisation: lower case and without dashes is the same code.
    variant = creator_cli("fingerprint", "--code", "-", input=normalise_code(code).lower() + "\n")

    assert printed == expected
    assert variant.stdout.strip() == expected
    assert code not in printed and normalise_code(code) not in printed


def test_fingerprint_of_an_item(cli: Cli) -> None:
    expected = "0x" + item_fingerprint({"game": "x", "id": 1}).hex()

    assert cli("fingerprint", "--item", '{"game":"x","id":1}').stdout.strip() == expected
    # RFC 8785: key order and spacing do not matter.
    assert cli("fingerprint", "--item", '{ "id": 1, "game": "x" }').stdout.strip() == expected


@pytest.mark.parametrize(
    "args",
    [
        pytest.param([], id="none"),
        pytest.param(["FILE", "--item", '{"game":"x","id":1}'], id="file-and-item"),
        pytest.param(["--code", "ABCD", "--item", '{"game":"x"}'], id="code-and-item"),
    ],
)
def test_fingerprint_needs_exactly_one_input(creator_cli: Cli, args: list[str]) -> None:
    path = creator_cli.write("a.txt", "a\n")
    args = [str(path) if a == "FILE" else a for a in args]
    assert "exactly one" in creator_cli.error("fingerprint", *args, expect=3)


def test_fingerprint_of_a_missing_file_is_invalid_input(cli: Cli) -> None:
    cli.error("fingerprint", cli.tmp_path / "nope.bin", expect=3)


# -- registering files and proving them ------------------------------------------------------------


def test_register_sequence_and_prove_a_file(creator_cli: Cli) -> None:
    path = creator_cli.write("song.flac", secrets.token_bytes(5000))
    fingerprint = file_print(path)
    address = Account.from_key(creator_cli.creator_key_hex()).address

    [entry] = creator_cli.json("register", path)["entries"]
    assert entry["status"] == "queued" and entry["leaf_index"] is None
    assert (entry["fingerprint"], entry["actor"], entry["kind"]) == (
        fingerprint,
        address,
        "REGISTER",
    )
    sequenced = creator_cli.json("log", "sequence")
    head = creator_cli.json("log", "head")
    assert sequenced == head and head["tree_size"] == 2
    # The head ends with the state map's commitment (issue 14), after the one registration.
    last = creator_cli.json("log", "proof", "--index", str(head["tree_size"] - 1))["entry"]
    assert last["kind"] == "STATE_COMMITMENT"
    proof = creator_cli.json("log", "proof", "--fingerprint", fingerprint, "--type", "file")

    leaf_data = bytes.fromhex(proof["leaf_data"].removeprefix("0x"))
    leaf = LeafData.decode(leaf_data)
    assert (leaf.kind, leaf.fingerprint.hex()) == (EntryKind.REGISTER, fingerprint[2:])
    assert leaf.actor_address == address
    assert proof["root"] == head["root"] and proof["tree_size"] == head["tree_size"]
    root = bytes.fromhex(head["root"][2:])
    hashes = [bytes.fromhex(p[2:]) for p in proof["proof"]]
    verify_inclusion(hash_leaf(leaf_data), proof["leaf_index"], head["tree_size"], hashes, root)
    # The check is not vacuous: another leaf does not verify against the same proof.
    with pytest.raises(InvalidProof):
        verify_inclusion(
            hash_leaf(leaf_data[:-1] + bytes([leaf_data[-1] ^ 1])),
            proof["leaf_index"],
            head["tree_size"],
            hashes,
            root,
        )


def test_proof_in_a_larger_tree_verifies(creator_cli: Cli) -> None:
    paths = [creator_cli.write(f"f{i}.bin", secrets.token_bytes(64)) for i in range(5)]
    creator_cli("register", *paths)
    head = creator_cli.json("log", "sequence")
    assert head["tree_size"] == len(paths) + 1  # and the head's state commitment
    root = bytes.fromhex(head["root"][2:])

    for path in paths:
        proof = creator_cli.json("log", "proof", "--fingerprint", file_print(path))
        leaf_data = bytes.fromhex(proof["leaf_data"][2:])
        hashes = [bytes.fromhex(p[2:]) for p in proof["proof"]]
        verify_inclusion(hash_leaf(leaf_data), proof["leaf_index"], head["tree_size"], hashes, root)


def test_registering_the_same_file_again_is_idempotent(creator_cli: Cli) -> None:
    path = creator_cli.write("a.bin", secrets.token_bytes(100))
    [first] = creator_cli.json("register", path)["entries"]
    head = creator_cli.json("log", "sequence")
    entries, records = creator_cli.count("entries"), creator_cli.count("signed_records")

    [again] = creator_cli.json("register", path)["entries"]

    assert again["status"] == "already-registered"
    assert again["entry_id"] == first["entry_id"]
    assert again["leaf_index"] == 0
    assert creator_cli.json("log", "sequence") == head  # nothing was queued
    assert (creator_cli.count("entries"), creator_cli.count("signed_records")) == (
        entries,
        records,
    )


def test_another_creator_registering_the_same_file_is_a_conflict(creator_cli: Cli) -> None:
    other_keys = creator_cli.tmp_path / "other-keys"
    other = creator_cli.json("--keys-dir", other_keys, "keys", "new")["address"]
    original = Account.from_key(creator_cli.creator_key_hex()).address
    path = creator_cli.write("a.bin", secrets.token_bytes(100))
    creator_cli("register", path)
    registered = creator_cli.json("log", "sequence")

    [claim] = creator_cli.json("--keys-dir", other_keys, "register", path)["entries"]
    head = creator_cli.json("log", "sequence")

    assert (claim["status"], claim["kind"], claim["actor"]) == ("conflict", "CONFLICT", other)
    # The claim is logged (then the head's state commitment), so log order proves who was first.
    assert head["tree_size"] == registered["tree_size"] + 2
    proof = creator_cli.json("log", "proof", "--fingerprint", file_print(path))
    assert proof["entry"]["kind"] == "REGISTER"
    assert proof["entry"]["actor"] == original
    assert proof["leaf_index"] == 0
    conflict = creator_cli.json("log", "proof", "--index", str(registered["tree_size"]))["entry"]
    assert (conflict["kind"], conflict["actor"]) == ("CONFLICT", other)
    # The original creator still owns it: only they can revoke it.
    creator_cli.error(
        "--keys-dir", other_keys, "revoke", "--file", path, "--reason", "mine", expect=4
    )
    creator_cli("revoke", "--file", path, "--reason", "withdrawn")


def test_register_human_output_shows_the_whole_fingerprint(creator_cli: Cli) -> None:
    path = creator_cli.write("a.bin", b"x")
    assert file_print(path) in creator_cli("register", path).stdout


# -- registering codes in bulk ---------------------------------------------------------------------


def codes_file(cli: Cli, codes: list[str], name: str = "codes.csv") -> Path:
    return cli.write(name, "".join(code + "\n" for code in codes))


def test_register_codes(creator_cli: Cli) -> None:
    codes = [random_code() for _ in range(25)]
    result = creator_cli.json(
        "register-codes",
        codes_file(creator_cli, codes),
        "--product",
        "30-day-card",
        "--new-product",
    )

    assert result["count"] == result["registered"] == 25
    assert (result["already_registered"], result["conflicts"], result["skipped"]) == (0, 0, [])
    # The batch is sequenced and signed at once, its head ending with the state commitment.
    assert result["first_leaf_index"] == 0 and result["tree_size"] == len(codes) + 1
    head = creator_cli.json("log", "head")
    assert head["tree_size"] == result["tree_size"]
    # Every code is in the log under its keyed fingerprint, with a proof.
    key = creator_cli.code_key()
    root = bytes.fromhex(head["root"][2:])
    for code in (codes[0], codes[13], codes[-1]):
        fingerprint = "0x" + code_fingerprint(key, code).hex()
        proof = creator_cli.json("log", "proof", "--fingerprint", fingerprint, "--type", "code")
        leaf_data = bytes.fromhex(proof["leaf_data"][2:])
        hashes = [bytes.fromhex(p[2:]) for p in proof["proof"]]
        verify_inclusion(hash_leaf(leaf_data), proof["leaf_index"], head["tree_size"], hashes, root)


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        pytest.param("---", "empty", id="empty-after-normalisation"),
        pytest.param("WXYZ\x07WXYZ", "control", id="control-character"),
        pytest.param("W" * 300, "at most", id="too-long"),
    ],
)
def test_a_malformed_line_rejects_the_whole_file(creator_cli: Cli, bad: str, why: str) -> None:
    creator_cli(
        "register-codes",
        codes_file(creator_cli, [random_code()], "first.csv"),
        "--product",
        "30-day-card",
        "--new-product",
    )
    head = creator_cli.json("log", "head")
    counts = (creator_cli.count("entries"), creator_cli.count("signed_records"))
    codes = [random_code(), random_code(), bad, random_code()]

    stderr = creator_cli.error(
        "register-codes",
        codes_file(creator_cli, codes),
        "--product",
        "30-day-card",
        "--new-product",
        expect=3,
    )

    assert "line 3" in stderr and why in stderr
    assert bad not in stderr
    assert creator_cli.json("log", "head") == head
    assert (creator_cli.count("entries"), creator_cli.count("signed_records")) == counts


def test_skip_invalid_registers_the_good_lines_and_reports_the_bad(creator_cli: Cli) -> None:
    codes = [random_code(), "---", random_code(), "WXYZ\x07", random_code()]
    result = creator_cli.json(
        "register-codes",
        codes_file(creator_cli, codes),
        "--product",
        "30-day-card",
        "--new-product",
        "--skip-invalid",
    )

    assert result["registered"] == result["count"] == 3
    assert [s["line"] for s in result["skipped"]] == [2, 4]
    assert creator_cli.goods_entries() == 3
    assert creator_cli.json("log", "head")["tree_size"] == 3 + 1  # and the state commitment


def test_a_repeated_code_rejects_the_file_with_both_line_numbers(creator_cli: Cli) -> None:
    code = random_code()
    # The same code as printed differently: normalisation makes them one good.
    codes = [random_code(), code, random_code(), normalise_code(code).lower()]

    stderr = creator_cli.error(
        "register-codes",
        codes_file(creator_cli, codes),
        "--product",
        "30-day-card",
        "--new-product",
        expect=3,
    )

    assert "line 4" in stderr and "line 2" in stderr
    assert creator_cli.count("entries") == creator_cli.count("signed_records") == 0


def test_a_csv_with_a_header_takes_the_code_column(creator_cli: Cli) -> None:
    codes = [random_code() for _ in range(3)]
    rows = "".join(f"{1000 + i},{code}\n" for i, code in enumerate(codes))
    path = creator_cli.write("codes.csv", "serial,code\n" + rows)

    result = creator_cli.json("register-codes", path, "--product", "30-day-card", "--new-product")

    assert result["registered"] == 3
    key = creator_cli.code_key()
    for code in codes:
        creator_cli(
            "log",
            "proof",
            "--fingerprint",
            "0x" + code_fingerprint(key, code).hex(),
            "--type",
            "code",
        )
    creator_cli.error(
        "log",
        "proof",
        "--fingerprint",
        "0x" + code_fingerprint(key, "1000").hex(),
        "--type",
        "code",
        expect=4,
    )


def test_a_csv_whose_header_names_no_code_column_registers_nothing(creator_cli: Cli) -> None:
    path = creator_cli.write("codes.csv", "id,serial\n1,PA-X-1\n")

    stderr = creator_cli.error(
        "register-codes", path, "--product", "30-day-card", "--new-product", expect=3
    )

    assert stderr.startswith("error: line 1: ") and "names no code column" in stderr
    assert len(stderr.strip().splitlines()) == 1
    assert creator_cli.count("entries") == creator_cli.count("signed_records") == 0


def test_registering_the_same_codes_again_is_idempotent(creator_cli: Cli) -> None:
    path = codes_file(creator_cli, [random_code() for _ in range(10)])
    creator_cli("register-codes", path, "--product", "30-day-card", "--new-product")
    head = creator_cli.json("log", "head")
    entries = creator_cli.count("entries")

    again = creator_cli.json("register-codes", path, "--product", "30-day-card", "--new-product")

    assert (again["registered"], again["already_registered"], again["conflicts"]) == (0, 10, 0)
    assert again["tree_size"] == head["tree_size"]
    assert creator_cli.count("entries") == entries
    assert creator_cli.json("log", "head") == head


# -- no secret anywhere ----------------------------------------------------------------------------


def test_no_secret_in_any_output_or_in_the_database(creator_cli: Cli) -> None:
    cli = creator_cli
    codes = [random_code() for _ in range(12)]
    bad = "QQQQ\x07QQQQ"
    path = codes_file(cli, codes)
    bad_path = codes_file(cli, [*codes[:2], bad, codes[0]], "bad.csv")
    cli("keys", "show")
    cli("keys", "show", "--json")
    cli("keys", "enroll")
    cli("keys", "enroll", "--json")
    for code in codes[:3]:
        cli("fingerprint", "--code", "-", input=code + "\n")
        cli("fingerprint", "--code", "-", "--json", input=code + "\n")
    cli("fingerprint", "--code", "-", input=bad + "\n", expect=3)
    for args in ([], ["--json"]):
        cli(
            "register-codes", bad_path, "--product", "30-day-card", "--new-product", *args, expect=3
        )
        cli("register-codes", path, "--product", "30-day-card", "--new-product", *args)
        cli(
            "register-codes",
            bad_path,
            "--product",
            "30-day-card",
            "--new-product",
            "--skip-invalid",
            *args,
        )
        cli("revoke", "--codes", path, "--reason", "leaked", *args)
        cli("revoke", "--codes", bad_path, "--reason", "leaked", *args, expect=3)
    cli("log", "sequence")
    cli("log", "head")
    cli("log", "proof", "--index", "3", "--json")
    cli(
        "log",
        "proof",
        "--fingerprint",
        "0x" + code_fingerprint(cli.code_key(), codes[4]).hex(),
        "--type",
        "code",
    )

    code_key = cli.code_key()
    creator_key = cli.creator_key_hex()
    forms = {form for code in codes for form in (code, normalise_code(code))}
    forms |= {bad, "QQQQQQQQ"}
    assert len(cli.outputs) > 25
    for output in cli.outputs:
        lowered = output.lower()
        assert code_key.hex() not in lowered
        assert creator_key not in lowered
        for form in forms:
            assert form not in output
            assert form.lower() not in lowered
    stored = b"".join(
        p.read_bytes()
        for p in (cli.db_path, cli.db_path.with_name("registry.db-wal"))
        if p.exists()
    )
    assert cli.count("code_keys") == 1 and cli.count("entries") > 0  # the checks see real data
    assert code_key not in stored
    assert code_key.hex().encode() not in stored
    assert bytes.fromhex(creator_key) not in stored
    for form in forms:
        assert form.encode() not in stored


# -- revocation ------------------------------------------------------------------------------------


def test_revoke_a_file_by_fingerprint(creator_cli: Cli) -> None:
    path = creator_cli.write("a.bin", secrets.token_bytes(100))
    fingerprint = file_print(path)
    creator_cli("register", path)

    revoked = creator_cli.json(
        "revoke", "--fingerprint", fingerprint, "--type", "file", "--reason", "leaked"
    )
    again = creator_cli.json(
        "revoke", "--fingerprint", fingerprint, "--type", "file", "--reason", "leaked"
    )
    head = creator_cli.json("log", "sequence")

    assert (revoked["status"], revoked["kind"], revoked["fingerprint"]) == (
        "queued",
        "REVOKE",
        fingerprint,
    )
    assert again["status"] == "already-revoked" and again["entry_id"] == revoked["entry_id"]
    assert head["tree_size"] == 3  # the registration, the revocation, the state commitment
    entry = creator_cli.json("log", "proof", "--index", "1")["entry"]
    assert (entry["kind"], entry["fingerprint"]) == ("REVOKE", fingerprint)


def test_revoking_anothers_good_looks_like_revoking_an_unknown_one(creator_cli: Cli) -> None:
    other_keys = creator_cli.tmp_path / "other-keys"
    creator_cli("--keys-dir", other_keys, "keys", "new")
    path = creator_cli.write("a.bin", secrets.token_bytes(100))
    creator_cli("--keys-dir", other_keys, "register", path)
    theirs, unknown = file_print(path), "0x" + secrets.token_hex(32)
    entries = creator_cli.count("entries")

    stderr_theirs = creator_cli.error(
        "revoke", "--fingerprint", theirs, "--type", "file", "--reason", "x", expect=4
    )
    stderr_unknown = creator_cli.error(
        "revoke", "--fingerprint", unknown, "--type", "file", "--reason", "x", expect=4
    )

    # THREATS 35: no oracle for what others registered; only the fingerprint differs.
    assert stderr_theirs.replace(theirs, "FP") == stderr_unknown.replace(unknown, "FP")
    assert creator_cli.count("entries") == entries


def test_a_mistyped_product_is_refused_with_exit_4(creator_cli: Cli) -> None:
    codes = [random_code() for _ in range(3)]
    creator_cli(
        "register-codes",
        codes_file(creator_cli, codes),
        "--product",
        "30-day-card",
        "--new-product",
    )
    head = creator_cli.json("log", "head")
    stderr = creator_cli.error(
        "register-codes",
        codes_file(creator_cli, [random_code()], "more.csv"),
        "--product",
        "30-day-crad",
        expect=4,
    )
    assert "no product '30-day-crad'" in stderr and "--new-product" in stderr
    assert creator_cli.json("log", "head") == head


def test_revoke_a_batch_of_codes(creator_cli: Cli) -> None:
    codes = [random_code() for _ in range(8)]
    registered = creator_cli.json(
        "register-codes",
        codes_file(creator_cli, codes),
        "--product",
        "30-day-card",
        "--new-product",
    )
    leaked = codes_file(creator_cli, codes[2:6], "leaked.csv")

    result = creator_cli.json("revoke", "--codes", leaked, "--reason", "leaked")
    again = creator_cli.json("revoke", "--codes", leaked, "--reason", "leaked")

    assert (result["count"], result["registered"], result["already_registered"]) == (4, 4, 0)
    assert (again["registered"], again["already_registered"]) == (0, 4)
    # The revocations follow the registrations' head, and their own head ends with its state
    # commitment.
    first = registered["tree_size"]
    assert result["first_leaf_index"] == first
    assert creator_cli.json("log", "head")["tree_size"] == result["tree_size"] == first + 4 + 1
    key = creator_cli.code_key()
    revoked = {"0x" + code_fingerprint(key, code).hex() for code in codes[2:6]}
    logged = [
        creator_cli.json("log", "proof", "--index", str(i))["entry"]
        for i in range(first, first + 4)
    ]
    assert {e["fingerprint"] for e in logged} == revoked
    assert {e["kind"] for e in logged} == {"REVOKE"}


def test_revoking_codes_that_are_not_yours_rejects_the_batch(creator_cli: Cli) -> None:
    codes = [random_code() for _ in range(3)]
    creator_cli(
        "register-codes",
        codes_file(creator_cli, codes),
        "--product",
        "30-day-card",
        "--new-product",
    )
    head = creator_cli.json("log", "head")

    stderr = creator_cli.error(
        "revoke",
        "--codes",
        codes_file(creator_cli, [codes[0], random_code()], "x.csv"),
        "--reason",
        "leaked",
        expect=4,
    )

    # Exit 4 like a single revocation of a good that is not yours; the item number says which.
    assert "item 2: no code 0x" in stderr and "is registered by the signer" in stderr
    assert creator_cli.json("log", "head") == head


# -- consistency -----------------------------------------------------------------------------------


def test_consistency_proof_between_two_heads(creator_cli: Cli) -> None:
    creator_cli("register", *(creator_cli.write(f"a{i}", secrets.token_bytes(9)) for i in range(3)))
    old = creator_cli.json("log", "sequence")
    creator_cli("register", *(creator_cli.write(f"b{i}", secrets.token_bytes(9)) for i in range(4)))
    new = creator_cli.json("log", "sequence")
    # Each head ends with its state commitment: one leaf more than the files in it.
    old_size, new_size = old["tree_size"], new["tree_size"]
    assert (old_size, new_size) == (3 + 1, 3 + 1 + 4 + 1)

    proof = creator_cli.json("log", "proof", "--from", str(old_size))

    assert (proof["from"], proof["to"], proof["root"]) == (old_size, new_size, new["root"])
    hashes = [bytes.fromhex(p[2:]) for p in proof["proof"]]
    old_root, new_root = bytes.fromhex(old["root"][2:]), bytes.fromhex(new["root"][2:])
    verify_consistency(old_size, new_size, hashes, old_root, new_root)
    with pytest.raises(InvalidProof):
        verify_consistency(old_size, new_size, hashes, new_root, new_root)


def test_consistency_from_a_size_without_a_head_is_not_found(creator_cli: Cli) -> None:
    creator_cli("register", *(creator_cli.write(f"a{i}", secrets.token_bytes(9)) for i in range(3)))
    creator_cli("log", "sequence")
    creator_cli.error("log", "proof", "--from", "2", expect=4)


# -- exit codes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (errors.TracemarkError, 1),
        (errors.InvalidInput, 3),
        (errors.MalformedCode, 3),
        (errors.InvalidFingerprint, 3),
        (errors.ProofOutOfRange, 3),
        (errors.NotFound, 4),
        (errors.UnknownProduct, 4),
        (errors.Conflict, 5),
        (errors.SignatureError, 6),
        (errors.MalformedSignature, 6),
        (errors.WrongSigner, 6),
        (errors.ExpiredDeadline, 6),
        (errors.NonceReused, 6),
        (errors.StorageBusy, 7),
        (errors.ConfigurationError, 8),
    ],
)
def test_every_error_maps_to_its_documented_exit_code(
    error: type[errors.TracemarkError], code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(typer.Exit) as exited:
        cli_module.fail(error("what to fix"))
    assert exited.value.exit_code == code
    assert capsys.readouterr() == ("", "error: what to fix\n")


def test_exit_2_for_usage_errors(creator_cli: Cli) -> None:
    assert creator_cli("revoke", "--fingerprint", "0x00", expect=2).stdout == ""  # no --reason
    creator_cli("no-such-command", expect=2)


def test_exit_3_for_invalid_input(creator_cli: Cli) -> None:
    creator_cli("register", creator_cli.write("a.bin", b"a"))
    creator_cli("log", "sequence")
    creator_cli.error("revoke", "--fingerprint", "0x1234", "--reason", "x", expect=3)
    creator_cli.error("log", "proof", "--fingerprint", "nothex", expect=3)
    creator_cli.error("register", creator_cli.tmp_path / "missing.bin", expect=3)
    creator_cli.error(
        "register-codes",
        creator_cli.write("e.csv", "\n\n"),
        "--product",
        "p",
        "--new-product",
        expect=3,
    )


def test_exit_4_for_not_found(cli: Cli) -> None:
    assert "empty" in cli.error("log", "head", expect=4)
    cli.error("log", "proof", "--index", "0", expect=4)


@contextmanager
def _write_lock(db_path: Path) -> Iterator[None]:
    """Hold SQLite's write lock from another connection, as a second writer process would."""
    conn = sqlite3.connect(db_path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        yield
        conn.execute("ROLLBACK")
    finally:
        conn.close()


def test_exit_7_when_the_database_is_busy(
    creator_cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    # NOTE: the lock is real; only the wait is shortened from 5 s so the test stays fast.
    monkeypatch.setattr(
        registry.opening,
        "create_db_engine",
        functools.partial(create_db_engine, busy_timeout_ms=50),
    )
    path = creator_cli.write("a.bin", b"busy")
    with _write_lock(creator_cli.db_path):
        assert "busy" in creator_cli.error("register", path, expect=7)
        creator_cli.error("log", "sequence", expect=7)
    assert creator_cli.json("register", path)["entries"][0]["status"] == "queued"


def test_exit_8_for_configuration_errors(cli: Cli) -> None:
    cli("init")
    path = cli.write("a.bin", b"a")
    assert "keys new" in cli.error("register", path, expect=8)  # no creator keys yet
    cli("keys", "new")
    (cli.keys_dir / "creator.key").chmod(0o644)
    assert "chmod 600" in cli.error("register", path, expect=8)
    not_a_dir = cli.write("file-not-dir", "x")
    cli.env["TRACEMARK_DATA_DIR"] = str(not_a_dir)
    cli.error("init", expect=8)


def test_exit_8_for_an_invalid_setting(cli: Cli) -> None:
    cli.env["TRACEMARK_SEQUENCER_BATCH_SIZE"] = "0"
    result = cli.runner.invoke(app, ["init"], env=cli.env)
    assert result.exit_code == 8
    assert result.stderr.startswith("error: ")


# -- the installed entry point ---------------------------------------------------------------------


def test_console_script_works_and_is_quiet_when_piped(tmp_path: Path) -> None:
    script = shutil.which("tracemark", path=str(Path(sys.executable).parent))
    assert script is not None, "the tracemark console script is not installed in this venv"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("TRACEMARK_")
        and k not in {"FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "CLICOLOR_FORCE"}
    }
    env["TRACEMARK_DATA_DIR"] = str(tmp_path / "data")
    codes = tmp_path / "codes.csv"
    codes.write_text("".join(random_code() + "\n" for _ in range(2000)))

    def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [script, *map(str, args)], env=env, capture_output=True, text=True, timeout=60
        )

    outputs = [
        run("init"),
        run("keys", "new"),
        run("register-codes", codes, "--product", "card", "--new-product"),
    ]
    outputs.append(run("log", "head"))
    failed = run("log", "proof", "--index", "99999")

    assert [p.returncode for p in outputs] == [0, 0, 0, 0]
    assert failed.returncode == 4 and failed.stderr.startswith("error: ")
    # (Whitespace collapsed: line wrapping is test_an_error_is_exactly_one_line_on_stderr's.)
    assert " ".join(outputs[2].stdout.split()).startswith("2,000 registered")
    # The 2,000 codes and the state commitment their head ends with (issue 14).
    assert " ".join(outputs[3].stdout.split()).startswith("size 2,001 root 0x")
    for process in [*outputs, failed]:
        for stream in (process.stdout, process.stderr):
            assert "\x1b" not in stream  # no colours, no cursor movement
            assert "fingerprinting" not in stream and "registering" not in stream
            assert "━" not in stream  # no progress bar
    assert all(p.stderr == "" for p in outputs)


def test_log_check_passes_on_a_good_log_and_exits_9_on_a_tampered_one(creator_cli: Cli) -> None:
    for n in range(3):
        creator_cli("register", creator_cli.write(f"w{n}.bin", f"work {n}"))
        creator_cli("log", "sequence")
    report = creator_cli.json("log", "check")
    # Each head ends with its state commitment (issue 14): three goods, three commitments.
    assert report == {
        "tree_size": 6,
        "heads_checked": 3,
        "problems": [],
        "ok": True,
        "state_commitments_checked": 3,
    }
    assert creator_cli("log", "check").stdout == (
        "ok: 6 leaves, 3 heads agree; 3 state commitments replayed, all agree\n"
    )
    with sqlite3.connect(creator_cli.db_path) as conn:
        # Leaf 2 is the second good (leaf 1 is the first head's commitment).
        conn.execute("UPDATE entries SET payload_hash = zeroblob(32) WHERE leaf_index = 2")
    stderr = creator_cli("log", "check", expect=9).stderr
    *problems, last = stderr.splitlines()
    assert last.startswith("error: ") and "problem(s) in the log" in last
    # Every later head and every later commitment disagree with the entries, in log order.
    assert [p.split(":")[1] for p in problems] == [
        " state commitment at leaf 3",
        " head 4",
        " head 4",
        " state commitment at leaf 5",
        " head 6",
        " head 6",
    ]
    assert all(p.startswith("problem: ") for p in problems)


def test_log_proof_of_a_batch_code_carries_its_batch_proof(creator_cli: Cli) -> None:
    codes = [random_code() for _ in range(5)]
    creator_cli(
        "register-codes",
        codes_file(creator_cli, codes),
        "--product",
        "30-day-card",
        "--new-product",
    )
    fingerprint = code_fingerprint(creator_cli.code_key(), codes[3])
    shown = creator_cli.json(
        "log", "proof", "--fingerprint", "0x" + fingerprint.hex(), "--type", "code"
    )
    batch = shown["batch_proof"]
    assert (batch["position"], batch["count"]) == (3, 5)
    verify_inclusion(
        hash_leaf(fingerprint),
        3,
        5,
        [bytes.fromhex(p[2:]) for p in batch["inclusion_proof"]],
        bytes.fromhex(batch["items_root"][2:]),
    )
