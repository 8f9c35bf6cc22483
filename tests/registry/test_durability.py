"""THREATS 49: a registry process SIGKILLed mid-write loses nothing it acknowledged (SQLite).

``durability_worker.py`` registers goods and sequences the log, printing each write only
after its commit returned. The test kills it at a random point, five times on one database,
and checks after each kill that the file is intact, every acknowledged write is there, no
transaction is half-applied, and the log still adds up to its signed heads.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import signal
import sqlite3
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from eth_account import Account

from registry.creator import CreatorKeys, sign_registration
from registry.fingerprints import GoodType, Use
from registry.merkle import hash_leaf, root_from_leaf_hashes
from registry.royalty import RoyaltyPolicy
from registry.service import Registry
from registry.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
WORKER = "tests.registry.durability_worker"
ROUNDS = 5


@dataclass
class Acknowledged:
    """Everything the workers acknowledged, across rounds."""

    creators: set[bytes] = field(default_factory=set)
    #: entry id -> (fingerprint, creator, nonce)
    singles: dict[int, tuple[bytes, bytes, int]] = field(default_factory=dict)
    #: batch record id -> (fingerprints in upload order, creator)
    batches: dict[int, tuple[list[bytes], bytes]] = field(default_factory=dict)
    #: tree size -> root
    heads: dict[int, bytes] = field(default_factory=dict)

    def read(self, line: str, creator: bytes | None) -> bytes | None:
        """Record one acknowledgement line; returns the worker's creator once it is known."""
        kind, *fields = line.split()
        if kind == "C":
            creator = bytes.fromhex(fields[0][2:])
            self.creators.add(creator)
            return creator
        assert creator is not None, f"{line!r} before the worker named its creator"
        if kind == "R":
            entry_id, fingerprint, nonce = fields
            self.singles[int(entry_id)] = (bytes.fromhex(fingerprint), creator, int(nonce))
        elif kind == "B":
            record_id, fingerprints = fields
            prints = [bytes.fromhex(fp) for fp in fingerprints.split(",")]
            self.batches[int(record_id)] = (prints, creator)
        elif kind == "S":
            size, root = fields
            self.heads[int(size)] = bytes.fromhex(root)
        else:  # pragma: no cover - the worker prints nothing else
            raise AssertionError(f"unknown acknowledgement {line!r}")
        return creator

    @property
    def writes(self) -> int:
        return len(self.singles) + len(self.batches) + len(self.heads)


def run_worker_and_kill(data_dir: Path, log: Path, acks: Acknowledged, kill_after: int) -> None:
    """Start a worker, wait for ``kill_after`` new acknowledgements, SIGKILL it, read the rest."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACEMARK_")}
    with log.open("w") as stderr:
        worker = subprocess.Popen(
            [sys.executable, "-m", WORKER, str(data_dir)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    assert worker.stdout is not None
    creator = None
    seen = 0
    try:
        while seen < kill_after:
            line = worker.stdout.readline()
            if not line:
                break
            creator = acks.read(line, creator)
            seen += 1
        assert seen == kill_after, f"the worker stopped early:\n{log.read_text()}"
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
        # Whatever it printed before dying was acknowledged too; a torn last line was not.
        for line in worker.stdout:
            if line.endswith("\n"):
                creator = acks.read(line, creator)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(timeout=30)
        worker.stdout.close()
    assert worker.returncode == -signal.SIGKILL, log.read_text()


def check_database(db_path: Path, acks: Acknowledged) -> None:
    """(a) the file is intact; (b) every acknowledged write is there, none half-applied."""
    conn = sqlite3.connect(db_path)
    try:
        # (a)
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        # (b) single registrations: the entry, as acknowledged, and its consumed nonce.
        for entry_id, (fingerprint, creator, nonce) in acks.singles.items():
            row = conn.execute(
                "SELECT e.kind, e.good_type, e.fingerprint, e.actor, r.signer, r.nonce "
                "FROM entries e JOIN signed_records r ON r.id = e.record_id WHERE e.id = ?",
                (entry_id,),
            ).fetchone()
            assert row == (1, int(GoodType.FILE), fingerprint, creator, creator, nonce)
        # (b) batches: every good of an acknowledged batch, in upload order.
        for record_id, (fingerprints, creator) in acks.batches.items():
            rows = conn.execute(
                "SELECT fingerprint, actor FROM entries WHERE record_id = ? ORDER BY position",
                (record_id,),
            ).fetchall()
            assert rows == [(fp, creator) for fp in fingerprints]
        # (b) signed tree heads.
        for size, root in acks.heads.items():
            stored = conn.execute("SELECT root FROM tree_heads WHERE tree_size = ?", (size,))
            assert stored.fetchall() == [(root,)]
        # No half-applied transaction: every signed record has all the entries it signed for.
        records = conn.execute("SELECT id, primary_type, payload FROM signed_records").fetchall()
        for record_id, primary_type, payload in records:
            entries = conn.execute(
                "SELECT count(*) FROM entries WHERE record_id = ?", (record_id,)
            ).fetchone()[0]
            if primary_type == "BatchRegistration":
                expected = int(json.loads(payload)["signed"]["message"]["count"])
            else:  # a single registration, or a head's state commitment (issue 14)
                expected = 1
            assert entries == expected, (record_id, primary_type)
    finally:
        conn.close()


def check_log(registry: Registry, db_path: Path) -> int:
    """(c) the log is self-consistent; returns its size."""
    conn = sqlite3.connect(db_path)
    try:
        size = conn.execute("SELECT tree_size FROM log_state WHERE id = 1").fetchone()[0]
        indices = [
            i
            for (i,) in conn.execute(
                "SELECT leaf_index FROM entries WHERE leaf_index IS NOT NULL ORDER BY leaf_index"
            )
        ]
        heads = conn.execute("SELECT tree_size, root FROM tree_heads ORDER BY tree_size").fetchall()
    finally:
        conn.close()
    assert indices == list(range(size))
    leaf_hashes = [hash_leaf(registry.entry_at(i).leaf_data()) for i in range(size)]
    latest = registry.latest_tree_head()
    assert latest is not None and latest.tree_size == size
    assert latest.root == root_from_leaf_hashes(leaf_hashes)
    # Every head ever signed is a prefix of today's log (append-only).
    for head_size, root in heads:
        assert root_from_leaf_hashes(leaf_hashes[:head_size]) == root, head_size
    return int(size)


def continue_writing(registry: Registry) -> None:
    """A new registry on the crashed database registers and sequences as usual."""
    keys = CreatorKeys(Account.create(), secrets.token_bytes(32))
    before = registry.latest_tree_head()
    queued = registry.register(
        sign_registration(
            keys,
            registry.domain,
            good_type=GoodType.FILE,
            fingerprint=secrets.token_bytes(32),
            product="",
            use=Use.TRANSFERABLE,
            royalty_policy=RoyaltyPolicy(),
            metadata={},
            now=registry.clock(),
        )
    )
    head = registry.sequence_all()
    assert queued.status == "queued"
    assert head is not None
    assert head.tree_size > (before.tree_size if before is not None else 0)
    [entry] = registry.history(GoodType.FILE, queued.fingerprint)
    assert entry.leaf_index is not None and entry.leaf_index < head.tree_size


@pytest.mark.slow
def test_acknowledged_writes_survive_sigkill(tmp_path: Path) -> None:
    seed = secrets.randbits(32)
    rng = random.Random(seed)
    data_dir = tmp_path / "data"
    db_path = data_dir / "registry.db"
    acks = Acknowledged()
    sizes = []
    for round_ in range(ROUNDS):
        kill_after = rng.randint(10, 60)
        log = tmp_path / f"worker-{round_}.log"
        run_worker_and_kill(data_dir, log, acks, kill_after)

        check_database(db_path, acks)
        registry = Registry.open(load_settings(data_dir=data_dir, database_url=""))
        try:
            sizes.append(check_log(registry, db_path))
            continue_writing(registry)
            check_log(registry, db_path)
        finally:
            registry.engine.dispose()
    assert len(acks.creators) == ROUNDS
    assert sizes == sorted(sizes) and sizes[-1] > sizes[0], (seed, sizes)
    assert len(acks.batches) >= 1 and len(acks.heads) >= ROUNDS, seed
