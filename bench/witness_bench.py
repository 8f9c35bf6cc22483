"""The witness's add-checkpoint throughput against the signature work it cannot avoid.

Run: ``.venv/bin/python -m bench.witness_bench [--requests N] [--rounds R]``. One log (the
registry's two note keys: Ed25519 and ML-DSA-44) grows by 7 leaves a checkpoint; each
request is ``old <last> + consistency proof + the signed checkpoint`` (all signed before any
timing). Per round, interleaved, ``--requests`` each:

- **http**: through ``tracemark witness serve`` (a process of its own, uvicorn on loopback),
  one keep-alive ``http.client`` connection sending the requests one after the other, as a
  log does (the stdlib client: a few tens of microseconds a request on the client's side);
- **pure**: ``Witness.add_checkpoint`` called in this process (no HTTP), its state on the same
  disk (each 200 is saved with two fsyncs first);
- **floor**: the same signature work with ``cryptography`` directly in a loop: verify the
  log's Ed25519 and ML-DSA-44 lines, sign an Ed25519 cosignature/v1 and an ML-DSA-44
  subtree/v1 message (the issue names "the same Ed25519 verify-and-sign work"; the witness
  also verifies and signs ML-DSA-44, so the floor does too, and the Ed25519-only part is
  reported beside it);
- **floor_disk**: the durable save alone with bare os calls (write a temporary file, fsync,
  rename, fsync the directory), the spec's "persist before responding" on this disk.

Reports requests/s, the median over rounds of http/floor (target <= 3x) and pure/floor, the
same with the disk floor added to the floor, and where a request's time goes (parse, verify,
proof, sign, save) measured step by step. Writes ``bench/results/witness.json``.
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import save
from bench.loopback import NotServing, free_port, wait_until_serving
from registry.checkpoint import Checkpoint
from registry.cosignature import cosignature_v1_message, subtree_v1_message
from registry.logkeys import LogNoteKeys
from registry.merkle import hash_leaf, verify_consistency
from registry.note import parse_note, sign_note, verify_note
from registry.tiles import MemoryTree
from registry.witness import format_add_checkpoint, parse_add_checkpoint
from registry.witnessconfig import (
    init_witness,
    load_witness_config,
    open_witness,
)
from registry.witnessstate import CosignedCheckpoint

ORIGIN = "bench.test/tlog"
STEP = 7
START_SIZE = 1000
#: The target: http within this many times the floor.
TARGET_RATIO = 3.0


def _requests(keys: LogNoteKeys, count: int) -> list[bytes]:
    """``count`` add-checkpoint bodies: 0 -> START_SIZE, then STEP leaves each."""
    sizes = [START_SIZE + STEP * i for i in range(count)]
    tree = MemoryTree()
    tree.append([hash_leaf(b"bench entry %d" % i) for i in range(sizes[-1])])
    bodies = []
    old = 0
    for size in sizes:
        note = sign_note(Checkpoint(ORIGIN, size, tree.root(size)).text(), keys.signers)
        proof = tree.consistency_proof(old, size) if old else []
        bodies.append(format_add_checkpoint(old, proof, note.to_bytes()))
        old = size
    return bodies


def _floor(keys: LogNoteKeys, bodies: list[bytes]) -> tuple[Callable[[], None], ...]:
    """The crypto a witness does per request, on cryptography's keys directly: all of it, and
    the Ed25519 half alone."""
    from cryptography.hazmat.primitives.asymmetric import ed25519, mldsa

    ed_public = ed25519.Ed25519PublicKey.from_public_bytes(keys.ed25519.public_key)
    ml_public = mldsa.MLDSA44PublicKey.from_public_bytes(keys.mldsa44.public_key)
    ed_private = ed25519.Ed25519PrivateKey.generate()
    ml_private = mldsa.MLDSA44PrivateKey.generate()
    prepared = []
    for body in bodies:
        note = parse_note(parse_add_checkpoint(body).note)
        checkpoint = Checkpoint.parse(note.text)
        ed_line, ml_line = note.signatures
        ml_message = subtree_v1_message(ORIGIN, int.from_bytes(ml_line.signature[:8]), checkpoint)
        prepared.append(
            (
                note.text.encode(),
                ed_line.signature,
                ml_message,
                ml_line.signature[8:],
                cosignature_v1_message(note.text, 1_760_000_000),
                subtree_v1_message("w.test/w", 1_760_000_000, checkpoint),
            )
        )

    def both() -> None:
        for text, ed_sig, ml_message, ml_sig, cosig_message, subtree_message in prepared:
            ed_public.verify(ed_sig, text)
            ml_public.verify(ml_sig, ml_message)
            ed_private.sign(cosig_message)
            ml_private.sign(subtree_message)

    def ed_only() -> None:
        for text, ed_sig, _, _, cosig_message, _ in prepared:
            ed_public.verify(ed_sig, text)
            ed_private.sign(cosig_message)

    return both, ed_only


def _disk_floor(directory: Path, count: int, size: int) -> Callable[[], None]:
    """The durable save alone, with bare os calls: write a temporary file, fsync, rename,
    fsync the directory (what the spec's "persist before responding" costs on this disk)."""
    directory.mkdir()
    data = os.urandom(size)

    def run() -> None:
        for _ in range(count):
            fd = os.open(directory / "r.tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.write(fd, data)
            os.fsync(fd)
            os.close(fd)
            os.replace(directory / "r.tmp", directory / "r")
            dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
            os.fsync(dir_fd)
            os.close(dir_fd)

    return run


def _timed(run: Callable[[], None]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def _breakdown(
    keys: LogNoteKeys, config_path: Path, bodies: list[bytes], state_parent: str | None
) -> dict[str, float]:
    """Microseconds per request of each step of add_checkpoint, each timed in its own loop
    (the save in ``state_parent``, where the run kept its state)."""
    config = load_witness_config(config_path)
    signers = config.cosigners()
    verifiers = keys.verifiers()
    parsed = []
    for body in bodies:
        request = parse_add_checkpoint(body)
        note = parse_note(request.note)
        parsed.append((request, note, Checkpoint.parse(note.text)))
    steps: dict[str, Callable[[], None]] = {
        "parse": lambda: (
            [Checkpoint.parse(parse_note(parse_add_checkpoint(b).note).text) for b in bodies]
            and None
        ),
        "verify_log_signatures": lambda: [verify_note(n, verifiers) for _, n, _ in parsed] and None,
        "consistency_proof": lambda: _proofs(parsed),
        "cosign": lambda: [s.sign(n.text) for _, n, _ in parsed for s in signers] and None,
    }
    result = {name: _timed(step) / len(bodies) * 1e6 for name, step in steps.items()}
    with tempfile.TemporaryDirectory(dir=state_parent) as name:
        from registry.witnessstate import WitnessState

        state = WitnessState(Path(name))
        try:
            records = [CosignedCheckpoint(c, n) for _, n, c in parsed]
            result["save_fsync"] = (
                _timed(lambda: [state.save(r) for r in records] and None) / len(bodies) * 1e6
            )
        finally:
            state.close()
    return result


def _proofs(parsed: list[Any]) -> None:
    previous = None
    for request, _, checkpoint in parsed:
        if previous is not None:
            verify_consistency(
                previous.size,
                checkpoint.size,
                request.consistency_proof,
                previous.root,
                checkpoint.root,
            )
        previous = checkpoint


def _serve(config_path: Path, port: int, log_path: Path) -> subprocess.Popen[bytes]:
    tracemark = str(Path(sys.executable).with_name("tracemark"))
    argv = [tracemark, "witness", "serve", "--config", str(config_path), "--port", str(port)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=log)
    try:
        wait_until_serving(process, port, seconds=60, interval=0.1, log=log_path)
    except NotServing as exc:
        raise SystemExit(f"the witness did not start: {exc}") from None
    return process


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300, help="requests per round and mode")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-seconds", type=float, default=300.0)
    parser.add_argument(
        "--state-parent",
        default=None,
        help="where the witnesses' state dirs go (default: the system temp dir, on disk); "
        "/dev/shm (tmpfs, fsync nearly free) separates the CPU's share from the disk's",
    )
    parser.add_argument(
        "--name", default="witness", help="the result's name: bench/results/<name>.json"
    )
    args = parser.parse_args()
    keys = LogNoteKeys.from_seeds(ORIGIN, bytes(range(32)), bytes(range(1, 33)))
    total = args.requests * args.rounds
    print(f"signing {total} checkpoints ...", file=sys.stderr)
    bodies = _requests(keys, total)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(dir=args.state_parent) as name:
        tmp = Path(name)
        http_config = init_witness(tmp / "http", "w.test/http", [keys.vkeys()])
        pure_config = init_witness(tmp / "pure", "w.test/pure", [keys.vkeys()])
        pure = open_witness(load_witness_config(pure_config))
        both, ed_only = _floor(keys, bodies[: args.requests])
        disk = _disk_floor(tmp / "disk", args.requests, 7 * 1024)
        port = free_port()
        server = _serve(http_config, port, tmp / "serve.log")
        rounds: list[dict[str, float]] = []
        try:
            client = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            try:
                for r in range(args.rounds):
                    chunk = bodies[r * args.requests : (r + 1) * args.requests]

                    def over_http(chunk: list[bytes] = chunk) -> None:
                        for body in chunk:
                            client.request("POST", "/add-checkpoint", body=body)
                            reply = client.getresponse()
                            text = reply.read()
                            if reply.status != 200:
                                raise SystemExit(f"http {reply.status}: {text!r}")

                    def in_process(chunk: list[bytes] = chunk) -> None:
                        for body in chunk:
                            answer = pure.add_checkpoint(body)
                            if answer.status != 200:
                                raise SystemExit(f"pure {answer.status}: {answer.body!r}")

                    n = len(chunk)
                    times = {
                        "http": _timed(over_http) / n,
                        "pure": _timed(in_process) / n,
                        "floor": _timed(both) / args.requests,
                        "floor_ed25519": _timed(ed_only) / args.requests,
                        "floor_disk": _timed(disk) / args.requests,
                    }
                    rounds.append(times)
                    print(
                        f"round {r}: "
                        + ", ".join(f"{k} {v * 1e6:.0f} us" for k, v in times.items()),
                        file=sys.stderr,
                    )
                    if time.monotonic() - started > args.max_seconds:
                        break
            finally:
                client.close()
        finally:
            server.terminate()
            server.wait(timeout=60)
            pure.state.close()
        breakdown = _breakdown(keys, pure_config, bodies[: args.requests], args.state_parent)

    def median(key: str) -> float:
        return statistics.median(r[key] for r in rounds)

    ratio_http = statistics.median(r["http"] / r["floor"] for r in rounds)
    ratio_pure = statistics.median(r["pure"] / r["floor"] for r in rounds)
    data = {
        "state_parent": args.state_parent or tempfile.gettempdir(),
        "requests_per_round": args.requests,
        "rounds": len(rounds),
        "load_average": os.getloadavg(),
        "us_per_request": {key: median(key) * 1e6 for key in rounds[0]},
        "requests_per_second": {key: 1 / median(key) for key in rounds[0]},
        "ratio_http_to_floor": ratio_http,
        "ratio_pure_to_floor": ratio_pure,
        "ratio_http_to_ed25519_floor": statistics.median(
            r["http"] / r["floor_ed25519"] for r in rounds
        ),
        # With the disk's own floor added: what is left is the witness's code and HTTP.
        "ratio_http_to_floor_plus_disk": statistics.median(
            r["http"] / (r["floor"] + r["floor_disk"]) for r in rounds
        ),
        "ratio_pure_to_floor_plus_disk": statistics.median(
            r["pure"] / (r["floor"] + r["floor_disk"]) for r in rounds
        ),
        "target_ratio": TARGET_RATIO,
        "breakdown_us": breakdown,
        "per_round_us": [{k: v * 1e6 for k, v in r.items()} for r in rounds],
    }
    path = save(args.name, data)
    print(
        f"http {data['requests_per_second']['http']:.0f} req/s, pure "
        f"{data['requests_per_second']['pure']:.0f} req/s, floor "
        f"{data['requests_per_second']['floor']:.0f}/s: http {ratio_http:.2f}x, pure "
        f"{ratio_pure:.2f}x the floor (target <= {TARGET_RATIO}x); with the disk floor added "
        f"{data['ratio_http_to_floor_plus_disk']:.2f}x / "
        f"{data['ratio_pure_to_floor_plus_disk']:.2f}x"
        "; breakdown (us) " + ", ".join(f"{k} {v:.0f}" for k, v in breakdown.items()) + f"; {path}"
    )


if __name__ == "__main__":
    main()
