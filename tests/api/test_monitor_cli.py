"""``tracemark monitor`` on the registry's own log: ``tracemark tiles publish`` output served by a
plain static file server on loopback, caught up from an empty state, followed, a second
creator's claim on a watched creator's good reported, and a split view signed by the log key
raising the alarm (exit 18) for a monitor that saw the first checkpoint."""

from __future__ import annotations

import json
import os
import queue
import random
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from api.cli import app
from api.cli.monitor import EXIT_ALARM, EXIT_CHECKPOINT_INVALID
from bench.staticserver import serving_directory
from registry.checkpoint import Checkpoint
from registry.logkeys import load_log_note_keys
from registry.note import sign_note

FOLLOW_TIMEOUT = 60.0
"""Seconds a following monitor may take to print its next line before the test fails."""
ORIGIN = "127.0.0.1:8000/tlog"  # the dev default: the registry's public URL + /tlog
ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
_AMBIENT = (
    "TRACEMARK_API_URL",
    "TRACEMARK_DATABASE_URL",
    "TRACEMARK_KEYS_DIR",
    "TRACEMARK_MASTER_KEY",
    "TRACEMARK_LOG_ORIGIN",
    "TRACEMARK_PUBLIC_URL",
    "TRACEMARK_SEQUENCER_BATCH_SIZE",
    "COLUMNS",
    "LINES",
)


class Registry:
    """A registry in a data dir, two creators, and its log published to ``published``."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.data_dir = tmp_path / "data"
        self.published = tmp_path / "published"
        self.runner = CliRunner()
        self.env: dict[str, str | None] = dict.fromkeys(_AMBIENT)
        self.env["TRACEMARK_DATA_DIR"] = str(self.data_dir)

    def __call__(self, *args: str | Path, expect: int = 0, keys: str | None = None) -> Result:
        env = dict(self.env)
        if keys is not None:
            env["TRACEMARK_KEYS_DIR"] = str(self.tmp_path / keys)
        result = self.runner.invoke(app, [str(a) for a in args], env=env)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        assert result.exit_code == expect, (
            f"tracemark {' '.join(map(str, args))} exited {result.exit_code}, not {expect}\n"
            f"stdout: {result.stdout}\nstderr: {result.stderr}"
        )
        return result

    def creator(self, name: str) -> str:
        created = self("keys", "new", "--json", keys=name)
        address: str = json.loads(created.stdout)["address"]
        return address

    def publish(self) -> int:
        size: int = json.loads(self("tiles", "publish", self.published, "--json").stdout)[
            "tree_size"
        ]
        return size

    def vkeys(self) -> tuple[str, ...]:
        return load_log_note_keys(self.data_dir, ORIGIN).vkeys()


def _codes(path: Path, count: int) -> Path:
    rng = random.Random(15)
    with path.open("w") as out:
        for _ in range(count):
            code = "".join(rng.choices(ALPHABET, k=16))
            out.write(f"{code[:4]}-{code[4:8]}-{code[8:12]}-{code[12:]}\n")
    return path


def _monitor(registry: Registry, url: str, *args: str, expect: int = 0) -> list[dict[str, Any]]:
    result = registry(
        "monitor", url, "--state", registry.tmp_path / "state", "--origin", ORIGIN,
        "--once", "--json", *args, expect=expect,
    )  # fmt: skip
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    made = Registry(tmp_path)
    made("init")
    return made


@pytest.fixture
def url(registry: Registry) -> Iterator[str]:
    registry.published.mkdir()
    with serving_directory(registry.published) as served:
        yield served


@pytest.mark.parametrize("codes", [300, pytest.param(100_000, marks=pytest.mark.slow, id="1e5")])
def test_catch_up_follow_and_find_a_conflicting_claim(
    registry: Registry, url: str, codes: int
) -> None:
    alice, _bob = registry.creator("alice"), registry.creator("bob")
    work = registry.tmp_path / "work.png"
    work.write_bytes(b"alice's work")
    registry("register", work, "--product", "art", "--new-product", keys="alice")
    registry(
        "register-codes", _codes(registry.tmp_path / "codes.txt", codes),
        "--product", "card", "--new-product", keys="alice",
    )  # fmt: skip
    registry("log", "sequence")
    size = registry.publish()
    assert size >= codes + 1
    vkey_args = [arg for vkey in registry.vkeys() for arg in ("--vkey", vkey)]
    # 1. From an empty state: every entry read and verified; Alice's goods recorded.
    lines = _monitor(registry, url, *vkey_args, "--creator", alice)
    assert lines == [
        {
            "type": "checkpoint",
            "origin": ORIGIN,
            "old_size": 0,
            "size": size,
            "root": lines[-1]["root"],
            "events": 0,
            "goods_added": codes + 1,
        }
    ]
    # 2. Bob claims Alice's work: a CONFLICT entry, followed from the saved state.
    registry("register", work, "--product", "art", "--new-product", keys="bob")
    registry("log", "sequence")
    new_size = registry.publish()
    lines = _monitor(registry, url)
    events = [line for line in lines if line["type"] == "event"]
    assert [(e["event"], e["owner"], e["reason"]) for e in events] == [
        ("CONFLICT", alice, "claimed by another creator")
    ]
    assert lines[-1]["old_size"] == size and lines[-1]["size"] == new_size
    # 3. A split view signed by the log key: the alarm, exit 18, the state unchanged.
    keys = load_log_note_keys(registry.data_dir, ORIGIN)
    forged = Checkpoint(ORIGIN, new_size, bytes(32))
    (registry.published / "checkpoint").write_bytes(
        sign_note(forged.text(), keys.signers).to_bytes()
    )
    (alarm,) = _monitor(registry, url, expect=EXIT_ALARM)
    assert alarm["type"] == "alarm" and alarm["kind"] == "split-view"
    assert len(alarm["checkpoints"]) == 2
    human = registry(
        "monitor", url, "--state", registry.tmp_path / "state", "--once",  # origin as saved
        expect=EXIT_ALARM,
    )  # fmt: skip
    assert human.stdout.startswith("ALARM: split-view: two checkpoints of size")


def test_a_checkpoint_under_other_keys_fails(registry: Registry, url: str) -> None:
    registry.creator("alice")
    work = registry.tmp_path / "work.png"
    work.write_bytes(b"alice's work")
    registry("register", work, "--product", "art", "--new-product", keys="alice")
    registry("log", "sequence")
    registry.publish()
    other = load_log_note_keys(registry.tmp_path / "other", ORIGIN).vkeys()[0]
    _monitor(registry, url, "--vkey", other, expect=EXIT_CHECKPOINT_INVALID)
    # Nothing was accepted, nothing saved: the first run still needs its vkey.
    result = registry("monitor", url, "--state", registry.tmp_path / "state", "--once", expect=8)
    assert "--vkey" in result.stderr


def test_following_reports_new_entries_as_they_are_published(registry: Registry, url: str) -> None:
    alice, _bob = registry.creator("alice"), registry.creator("bob")
    work = registry.tmp_path / "work.png"
    work.write_bytes(b"alice's work")
    registry("register", work, "--product", "art", "--new-product", keys="alice")
    registry("log", "sequence")
    registry.publish()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACEMARK_")}
    argv = [
        str(Path(sys.executable).parent / "tracemark"), "monitor", url,
        "--state", str(registry.tmp_path / "state"), "--origin", ORIGIN, "--creator", alice,
        "--json", "--interval", "1",
        *[arg for vkey in registry.vkeys() for arg in ("--vkey", vkey)],
    ]  # fmt: skip
    follower = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    assert follower.stdout is not None
    reader = threading.Thread(target=lambda: [lines.put(x) for x in follower.stdout], daemon=True)  # type: ignore[union-attr]
    reader.start()

    def next_line() -> dict[str, Any]:
        line: dict[str, Any] = json.loads(lines.get(timeout=FOLLOW_TIMEOUT))
        return line

    try:
        first = next_line()
        assert (first["type"], first["old_size"], first["goods_added"]) == ("checkpoint", 0, 1)
        # The same checkpoint again at each interval, until the log grows.
        registry("register", work, "--product", "art", "--new-product", keys="bob")
        registry("log", "sequence")
        registry.publish()
        line = next_line()
        while line["type"] == "checkpoint" and line["size"] == first["size"]:
            line = next_line()
        assert (line["type"], line["event"], line["owner"]) == ("event", "CONFLICT", alice)
        assert next_line()["type"] == "checkpoint"
        assert follower.poll() is None  # still following
    finally:
        follower.terminate()
        follower.wait(timeout=30)


def test_a_witness_shown_another_tree_raises_the_alarm(
    registry: Registry, url: str, tmp_path: Path
) -> None:
    from verifier.witnesswatch import monitoring_path

    alice = registry.creator("alice")
    work = tmp_path / "work.png"
    work.write_bytes(b"alice's work")
    registry("register", work, "--product", "art", "--new-product", keys="alice")
    registry("log", "sequence")
    size = registry.publish()
    witness_dir = tmp_path / "witness"
    cosigned = witness_dir / monitoring_path(ORIGIN)
    cosigned.parent.mkdir(parents=True)
    cosigned.write_bytes((registry.published / "checkpoint").read_bytes())
    vkey_args = [arg for vkey in registry.vkeys() for arg in ("--vkey", vkey)]
    with serving_directory(witness_dir) as witness_url:
        lines = _monitor(registry, url, *vkey_args, "--creator", alice, "--witness", witness_url)
        assert lines[-1] == {
            "type": "witness", "url": witness_url, "status": "same", "size": size, "detail": "",
        }  # fmt: skip
        # The log signs another root of the same size for the witness.
        keys = load_log_note_keys(registry.data_dir, ORIGIN)
        forged = Checkpoint(ORIGIN, size, bytes(32))
        cosigned.write_bytes(sign_note(forged.text(), keys.signers).to_bytes())
        *_, alarm = _monitor(registry, url, "--witness", witness_url, expect=EXIT_ALARM)
    assert (alarm["type"], alarm["kind"]) == ("alarm", "split-view")
    assert witness_url in alarm["detail"]


def test_a_platform_watches_goods_by_fingerprint(
    registry: Registry, url: str, tmp_path: Path
) -> None:
    registry.creator("alice")
    work = tmp_path / "work.png"
    work.write_bytes(b"a good a platform sells")
    fingerprint = json.loads(registry("fingerprint", work, "--json").stdout)["fingerprint"]
    registry("register", work, "--product", "art", "--new-product", keys="alice")
    registry("log", "sequence")
    registry.publish()
    listed = tmp_path / "goods.txt"
    listed.write_text(f"# the goods we sell\n{fingerprint}\n\n")
    vkey_args = [arg for vkey in registry.vkeys() for arg in ("--vkey", vkey)]
    event, _checkpoint = _monitor(registry, url, *vkey_args, "--goods", str(listed))
    assert (event["event"], event["fingerprint"], event["owner"]) == (
        "REGISTER", fingerprint, None,
    )  # fmt: skip
    # A malformed fingerprint is one line and exit 3, before anything is fetched.
    result = registry("monitor", url, "--state", tmp_path / "other", "--good", "0x12", expect=3)
    assert result.stderr.startswith("error: ") and result.stdout == ""
    assert not (tmp_path / "other").exists()
