"""The witness over real HTTP (uvicorn on a loopback port): the protocol's statuses, media
types and plain-text bodies, the body bound, the monitoring endpoint, one log line a request
with no secret, concurrency and restarts; and ``tracemark witness init|vkey|serve``."""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
from typer.testing import CliRunner

from api.cli import app as cli
from registry.checkpoint import Checkpoint
from registry.logkeys import LogNoteKeys, load_log_note_keys
from registry.merkle import hash_leaf
from registry.note import parse_note, parse_vkey, sign_note, verify_note
from registry.tiles import MemoryTree
from registry.witness import MAX_ADD_CHECKPOINT_BYTES, format_add_checkpoint
from registry.witnessconfig import CONFIG_FILE, WitnessConfig, init_witness, load_witness_config
from registry.witnessstate import origin_hash
from tests.witness_server import running_witness

ORIGIN = "registry.test/tlog"
WITNESS = "cards.test/witness"
NOW = 1_760_000_000


class Log:
    def __init__(self, keys: LogNoteKeys, leaves: int = 64) -> None:
        self.keys = keys
        self.tree = MemoryTree()
        self.tree.append([hash_leaf(b"entry %d" % i) for i in range(leaves)])

    def checkpoint(self, size: int, root: bytes | None = None) -> bytes:
        text = Checkpoint(ORIGIN, size, root if root is not None else self.tree.root(size)).text()
        return sign_note(text, self.keys.signers).to_bytes()

    def request(self, old: int, size: int) -> bytes:
        proof = self.tree.consistency_proof(old, size) if 0 < old < size else []
        return format_add_checkpoint(old, proof, self.checkpoint(size))


@pytest.fixture
def log(tmp_path: Path) -> Log:
    return Log(load_log_note_keys(tmp_path / "registry", ORIGIN))


@pytest.fixture
def config(tmp_path: Path, log: Log) -> WitnessConfig:
    return load_witness_config(init_witness(tmp_path / "witness", WITNESS, [log.keys.vkeys()]))


@pytest.fixture
def served(config: WitnessConfig) -> Iterator[tuple[str, httpx.Client]]:
    with running_witness(config, lambda: NOW) as (url, _app), httpx.Client(timeout=30) as client:
        yield url, client


def test_add_checkpoint_statuses_over_http(served: tuple[str, httpx.Client], log: Log) -> None:
    url, client = served
    add = url + "/add-checkpoint"
    # 409 before any cosignature when the client claims an old size.
    reply = client.post(add, content=log.request(5, 10))
    assert (reply.status_code, reply.headers["content-type"], reply.content) == (
        409,
        "text/x.tlog.size",
        b"0\n",
    )
    reply = client.post(add, content=log.request(0, 10))
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "text/plain; charset=utf-8"
    assert reply.text.count("\u2014 " + WITNESS + " ") == 2
    # 422: the same size with another root, signed by the log.
    reply = client.post(add, content=format_add_checkpoint(10, [], log.checkpoint(10, bytes(32))))
    assert reply.status_code == 422 and reply.headers["content-type"].startswith("text/plain")
    # 400, 403, 404: plain one-line reasons, not problem+json.
    reply = client.post(add, content=b"old zero\n\n" + log.checkpoint(12))
    assert reply.status_code == 400 and reply.text.endswith("\n")
    stranger = LogNoteKeys.from_seeds(ORIGIN, bytes(32), bytes(32))
    forged = sign_note(Checkpoint(ORIGIN, 12, log.tree.root(12)).text(), stranger.signers)
    assert (
        client.post(add, content=format_add_checkpoint(10, [], forged.to_bytes())).status_code
        == 403
    )
    other = LogNoteKeys.from_seeds("other.test/tlog", bytes(32), bytes(32))
    unknown = sign_note(Checkpoint("other.test/tlog", 1, bytes(32)).text(), other.signers)
    assert (
        client.post(add, content=format_add_checkpoint(0, [], unknown.to_bytes())).status_code
        == 404
    )
    # The retry with the right old size goes through.
    assert client.post(add, content=log.request(10, 12)).status_code == 200


def test_monitoring_endpoint_serves_the_cosigned_checkpoint(
    served: tuple[str, httpx.Client], log: Log, config: WitnessConfig
) -> None:
    url, client = served
    path = f"{url}/{origin_hash(ORIGIN)}/checkpoint"
    assert client.get(path).status_code == 404
    cosignatures = client.post(url + "/add-checkpoint", content=log.request(0, 21)).content
    reply = client.get(path)
    assert reply.status_code == 200
    note = parse_note(reply.content)
    assert Checkpoint.parse(note.text).size == 21
    verify_note(note, log.keys.verifiers())
    witness_keys = [parse_vkey(v) for v in config.vkeys()]
    assert len(verify_note(note, witness_keys)) == 2
    assert (
        reply.content
        == log.checkpoint(21).split(b"\n\n")[0] + b"\n\n" + _log_lines(reply.content) + cosignatures
    )
    assert client.post(path, content=b"").status_code == 405
    assert client.get(url + "/add-checkpoint").status_code == 405
    assert client.get(url + "/nothing/here").status_code == 404


def _log_lines(note: bytes) -> bytes:
    lines = note.split(b"\n\n", 1)[1].splitlines(keepends=True)
    return b"".join(line for line in lines if f" {ORIGIN} ".encode() in line)


def test_bodies_over_the_bound_are_413(served: tuple[str, httpx.Client], log: Log) -> None:
    url, client = served
    add = url + "/add-checkpoint"
    huge = b"old 0\n\n" + b"x" * MAX_ADD_CHECKPOINT_BYTES
    assert client.post(add, content=huge).status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: the bound applies as it streams
        yield b"old 0\n\n"
        for _ in range(MAX_ADD_CHECKPOINT_BYTES // 4096 + 2):
            yield b"y" * 4096

    assert client.post(add, content=chunks()).status_code == 413
    assert client.post(add, content=log.request(0, 3)).status_code == 200


def test_a_body_cut_by_a_disconnect_is_not_processed(
    served: tuple[str, httpx.Client], log: Log
) -> None:
    url, client = served
    assert client.post(url + "/add-checkpoint", content=log.request(0, 6)).status_code == 200
    body = log.request(6, 9)
    # Cut after the log's Ed25519 line: on its own, still a valid log-signed checkpoint...
    cut = body[: body.index(b"\n", body.index("\u2014".encode())) + 1]
    host, port = url.removeprefix("http://").split(":")
    head = f"POST /add-checkpoint HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(body)}\r\n\r\n"
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        raw.sendall(head.encode() + cut)
    # ...but the client left before the rest: nothing is cosigned or saved.
    time.sleep(0.5)
    served_note = parse_note(client.get(f"{url}/{origin_hash(ORIGIN)}/checkpoint").content)
    assert Checkpoint.parse(served_note.text).size == 6
    assert client.post(url + "/add-checkpoint", content=cut).status_code == 200


def test_one_log_line_per_request_without_secrets(
    served: tuple[str, httpx.Client],
    log: Log,
    config: WitnessConfig,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url, client = served
    with caplog.at_level("INFO", logger="tracemark.witness"):
        client.post(url + "/add-checkpoint", content=log.request(0, 5))
        client.post(url + "/add-checkpoint", content=log.request(3, 5))
        client.get(f"{url}/{origin_hash(ORIGIN)}/checkpoint")
    lines = [r.getMessage() for r in caplog.records if r.name == "tracemark.witness.http"]
    assert [line.split()[:3] for line in lines] == [
        ["POST", "/add-checkpoint", "200"],
        ["POST", "/add-checkpoint", "409"],
        ["GET", f"/{origin_hash(ORIGIN)}/checkpoint", "200"],
    ]
    for key_file in (config.ed25519_key, config.mldsa44_key):
        secret = key_file.read_text().strip()
        assert secret not in caplog.text


def test_concurrent_http_requests_cosign_one_and_the_state_never_rolls_back(
    served: tuple[str, httpx.Client], log: Log
) -> None:
    url, client = served
    assert client.post(url + "/add-checkpoint", content=log.request(0, 8)).status_code == 200
    sizes = list(range(9, 25))
    statuses: dict[int, int] = {}
    start = threading.Barrier(len(sizes))

    def submit(size: int) -> None:
        with httpx.Client(timeout=60) as own:
            body = log.request(8, size)
            start.wait()
            statuses[size] = own.post(url + "/add-checkpoint", content=body).status_code

    threads = [threading.Thread(target=submit, args=(size,)) for size in sizes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    winners = [size for size, status in statuses.items() if status == 200]
    assert len(winners) == 1 and sorted(statuses.values()).count(409) == len(sizes) - 1
    served_note = parse_note(client.get(f"{url}/{origin_hash(ORIGIN)}/checkpoint").content)
    assert Checkpoint.parse(served_note.text).size == winners[0]


def test_prefixes_and_a_restart(config: WitnessConfig, log: Log, tmp_path: Path) -> None:
    config = WitnessConfig(
        name=config.name,
        ed25519_key=config.ed25519_key,
        mldsa44_key=config.mldsa44_key,
        state_dir=config.state_dir,
        logs=config.logs,
        submission_prefix="/witness/submit",
        monitoring_prefix="/witness/read",
    )
    with running_witness(config) as (url, _), httpx.Client(timeout=30) as client:
        assert client.post(url + "/add-checkpoint", content=log.request(0, 4)).status_code == 404
        reply = client.post(url + "/witness/submit/add-checkpoint", content=log.request(0, 30))
        assert reply.status_code == 200
    with running_witness(config) as (url, _), httpx.Client(timeout=30) as client:
        reply = client.post(url + "/witness/submit/add-checkpoint", content=log.request(0, 31))
        assert (reply.status_code, reply.content) == (409, b"30\n")
        path = f"{url}/witness/read/{origin_hash(ORIGIN)}/checkpoint"
        assert Checkpoint.parse(parse_note(client.get(path).content).text).size == 30


# -- the command line ------------------------------------------------------------------------


def test_cli_init_and_vkey(tmp_path: Path, log: Log) -> None:
    runner = CliRunner()
    vkeys = log.keys.vkeys()
    result = runner.invoke(
        cli,
        ["witness", "init", str(tmp_path / "w"), "--name", WITNESS, "--json"]
        + [arg for v in vkeys for arg in ("--log-vkey", v)],
    )
    assert result.exit_code == 0, result.output
    config = load_witness_config(tmp_path / "w" / CONFIG_FILE)
    assert [log.origin for log in config.logs] == [ORIGIN]
    result = runner.invoke(cli, ["witness", "vkey", "--config", str(tmp_path / "w" / CONFIG_FILE)])
    assert result.exit_code == 0
    printed = result.output.split()
    assert printed == list(config.vkeys())
    assert [parse_vkey(v).sig_type for v in printed] == [0x06, 0x04]
    # A second init refuses to overwrite (exit 8, one line); a bad vkey is exit 3.
    again = runner.invoke(cli, ["witness", "init", str(tmp_path / "w"), "--name", WITNESS])
    assert again.exit_code == 8 and again.output.count("\n") == 1
    bad = runner.invoke(
        cli, ["witness", "init", str(tmp_path / "x"), "--name", WITNESS, "--log-vkey", "nope"]
    )
    assert bad.exit_code == 3
    missing = runner.invoke(cli, ["witness", "vkey", "--config", str(tmp_path / "none.toml")])
    assert missing.exit_code == 8


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.slow
def test_cli_serve_answers_and_stops_on_sigint(config: WitnessConfig, log: Log) -> None:
    port = _free_port()
    tracemark = str(Path(sys.executable).with_name("tracemark"))
    process = subprocess.Popen(
        [
            tracemark,
            "witness",
            "serve",
            "--config",
            str(config.state_dir.parent / CONFIG_FILE),
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ},
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/livez", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, "serve did not start"
            time.sleep(0.1)
        assert (
            httpx.post(url + "/add-checkpoint", content=log.request(0, 9), timeout=30).status_code
            == 200
        )
    finally:
        process.send_signal(signal.SIGINT)
        try:
            _, stderr = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert process.returncode == 0, stderr
    text = stderr.decode()
    assert "POST /add-checkpoint 200" in text and "stopped" in text
    for key_file in (config.ed25519_key, config.mldsa44_key):
        assert key_file.read_text().strip() not in text


class _FullDisk:
    """Injects the fault a real disk gives on demand only when full: ``save`` fails."""

    def __init__(self) -> None:
        self.full = True

    def __call__(self, original: Callable[..., None]) -> Callable[..., None]:
        def save(record: object) -> None:
            if self.full:
                raise OSError(errno.ENOSPC, "No space left on device")
            original(record)

        return save


def test_a_failed_save_is_500_and_cosigns_nothing(config: WitnessConfig, log: Log) -> None:
    with running_witness(config) as (url, app), httpx.Client(timeout=30) as client:
        assert client.post(url + "/add-checkpoint", content=log.request(0, 4)).status_code == 200
        disk = _FullDisk()
        app.witness.state.save = disk(app.witness.state.save)  # type: ignore[method-assign]
        reply = client.post(url + "/add-checkpoint", content=log.request(4, 9))
        assert (reply.status_code, reply.text) == (500, "the witness could not save its state\n")
        assert "\u2014" not in reply.text
        # The witness still stands at 4: the log retries from there once the disk has room.
        disk.full = False
        assert client.post(url + "/add-checkpoint", content=log.request(0, 9)).content == b"4\n"
        assert client.post(url + "/add-checkpoint", content=log.request(4, 9)).status_code == 200
