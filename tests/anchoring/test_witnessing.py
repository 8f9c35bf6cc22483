"""The registry's side of witnessing, against real witnesses (``tracemark witness``'s app over
HTTP on loopback, ``tests.witness_server``) and, for the faults a real one cannot produce, a
faulty one (``tests.anchoring.fault_witness``): a witness that is down, one that answers 409
and then cosigns from the size it names, one whose state is older than what the registry
recorded, one that returns a bad cosignature, one that never answers. Below the quorum nothing
is published (nor anchored: ``test_witnessed_anchoring``); at the quorum the checkpoint is
published and its cosignatures verify under the policy. A registry that signs two checkpoints
of the same size is refused by a witness that saw the first. SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest
from eth_account import Account
from sqlalchemy import Engine, delete

from anchoring.devchain import free_port
from anchoring.witnessing import Witnessing, WitnessingRound
from registry import checkpoints
from registry.checkpoint import open_checkpoint
from registry.checkpoints import witnesses_t
from registry.db import create_db_engine, read_transaction, write_transaction
from registry.eip712 import DEV_DOMAIN
from registry.logkeys import LogNoteKeys
from registry.migrate import upgrade
from registry.note import parse_vkey
from registry.service import Registry
from registry.witnessconfig import init_witness, load_witness_config
from registry.witnesspolicy import WitnessPolicy, parse_policy
from tests.anchoring.fault_witness import COSIGNER as FAULTY
from tests.anchoring.fault_witness import faulty_witness
from tests.conftest import Clock, CreatorFactory
from tests.registry.helpers import registration
from tests.witness_server import running_witness

LOG_KEYS = LogNoteKeys.from_seeds("127.0.0.1:8000/tlog", b"\x01" * 32, b"\x02" * 32)


@dataclass
class Witnesses:
    """Witnesses serving on loopback: name -> (vkey the policy names, submission URL)."""

    stack: ExitStack
    tmp: Path
    entries: dict[str, tuple[str, str]] = field(default_factory=dict)
    apps: dict[str, object] = field(default_factory=dict)

    def real(self, name: str, *, ed25519: bool = False) -> None:
        config = load_witness_config(
            init_witness(self.tmp / name, f"witness.test/{name}", [LOG_KEYS.vkeys()])
        )
        url, app = self.stack.enter_context(running_witness(config))
        mldsa, ed = config.vkeys()
        self.entries[name] = (ed if ed25519 else mldsa, url)
        self.apps[name] = app

    def down(self, name: str) -> None:
        # A port nothing listens on (the OS gave it out and took it back): connection refused.
        vkey = f"witness.test/{name}+" + _vkey_tail(name)
        self.entries[name] = (vkey, f"http://127.0.0.1:{free_port()}")

    def faulty(self, name: str, mode: str) -> None:
        from registry.note import vkey

        url = self.stack.enter_context(faulty_witness(mode))
        self.entries[name] = (vkey(FAULTY.verifier()), url)

    def policy(self, quorum: str) -> WitnessPolicy:
        lines = [f"witness {n} {vkey} {url}\n" for n, (vkey, url) in self.entries.items()]
        return parse_policy("".join(lines) + quorum)


def _vkey_tail(name: str) -> str:
    # A real witness key for a witness that is never up.
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from registry.cosignature import CosignerV1
    from registry.note import vkey

    key = ed25519.Ed25519PrivateKey.from_private_bytes(name.encode().ljust(32, b"\0")[:32])
    return vkey(CosignerV1(f"witness.test/{name}", key).verifier()).split("+", 1)[1]


@pytest.fixture
def witnesses(tmp_path: Path) -> Iterator[Witnesses]:
    with ExitStack() as stack:
        yield Witnesses(stack, tmp_path)


class Statuses:
    """The witnesses' HTTP statuses as the registry received them, in order."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, int]] = []

    def client(self, timeout: float = 10.0) -> httpx2.Client:
        def hook(response: httpx2.Response) -> None:
            self.seen.append((str(response.request.url), response.status_code))

        return httpx2.Client(timeout=timeout, event_hooks={"response": [hook]})

    def of(self, url: str) -> list[int]:
        return [status for seen, status in self.seen if seen.startswith(url)]


def one_round(registry: Registry, policy: WitnessPolicy, **how: Any) -> WitnessingRound | None:
    """One witnessing round, its HTTP client closed afterwards."""
    with Witnessing(registry, policy, **how) as witnessing:
        return witnessing.step()


@pytest.fixture
def closing() -> Iterator[ExitStack]:
    """Closes what a test enters into it (a ``Witnessing``'s client) when the test ends."""
    with ExitStack() as stack:
        yield stack


def _registry(engine: Engine, clock: Clock, policy: WitnessPolicy) -> Registry:
    return Registry(
        engine,
        domain=DEV_DOMAIN,
        account=Account.create(),
        master_key=secrets.token_bytes(32),
        clock=clock,
        note_keys=LOG_KEYS,
        witness_policy=policy,
    )


def _grow(registry: Registry, make_creator: CreatorFactory, clock: Clock, n: int) -> int:
    creator = make_creator()
    for _ in range(n):
        registry.register(registration(creator, clock(), fingerprint=os.urandom(32)))
    head = registry.sequence_all()
    assert head is not None
    return head.tree_size


def _published(registry: Registry) -> checkpoints.SignedCheckpoint | None:
    with read_transaction(registry.engine) as conn:
        return checkpoints.latest_published_checkpoint(conn)


@pytest.mark.slow
def test_at_the_quorum_the_checkpoint_is_published_and_its_cosignatures_verify(
    engine: Engine,
    witnesses: Witnesses,
    make_creator: CreatorFactory,
    clock: Clock,
    closing: ExitStack,
) -> None:
    witnesses.real("w1")
    witnesses.real("w2", ed25519=True)
    witnesses.real("w3")
    policy = witnesses.policy("group two 2 w1 w2 w3\nquorum two\n")
    registry = _registry(engine, clock, policy)
    statuses = Statuses()
    witnessing = closing.enter_context(Witnessing(registry, policy, http=statuses.client()))
    assert witnessing.step() is None  # an empty log: nothing to ask about
    first = _grow(registry, make_creator, clock, 3)
    assert _published(registry) is None  # signed, not yet witnessed
    done = witnessing.step()
    assert done is not None and done.published and done.failures == {}
    assert done.size == first and done.cosigned == ("w1", "w2", "w3")
    served = _published(registry)
    assert served is not None and served.checkpoint.size == first
    # What is served opens under the log's keys and passes the policy on its own.
    _, note = open_checkpoint(served.to_bytes(), LOG_KEYS.verifiers(), origin=LOG_KEYS.origin)
    assert policy.check(note) == ("w1", "w2", "w3")
    # The next checkpoint is asked from the size each witness cosigned, with a proof.
    second = _grow(registry, make_creator, clock, 4)
    done = witnessing.step()
    assert done is not None and done.published and done.size == second
    with read_transaction(registry.engine) as conn:
        sizes = {r.key_name: r.tree_size for r in checkpoints.witness_records(conn)}
    assert sizes == {f"witness.test/w{i}": second for i in (1, 2, 3)}
    assert all(status == 200 for _, status in statuses.seen) and len(statuses.seen) == 6
    assert witnessing.step() is None
    assert (witnessing.counters.rounds, witnessing.counters.published) == (2, 2)


@pytest.mark.slow
def test_below_the_quorum_nothing_is_published_and_the_alarm_names_who_failed(
    engine: Engine,
    witnesses: Witnesses,
    make_creator: CreatorFactory,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
    closing: ExitStack,
) -> None:
    witnesses.real("w1")
    witnesses.down("w2")
    witnesses.faulty("w3", "bad-cosignature")
    policy = witnesses.policy("group two 2 w1 w2 w3\nquorum two\n")
    registry = _registry(engine, clock, policy)
    witnessing = closing.enter_context(Witnessing(registry, policy))
    size = _grow(registry, make_creator, clock, 2)
    with caplog.at_level(logging.WARNING, logger="tracemark.witnessing"):
        done = witnessing.step()
    assert done is not None and not done.published and done.cosigned == ()
    assert set(done.failures) == {"w2", "w3"}
    assert done.failures["w2"].startswith("unreachable (ConnectError")
    assert done.failures["w3"] == "a bad cosignature: it does not verify under the policy's key"
    assert done.alarm is not None and "cosigned by w1; missing w2, w3" in done.alarm
    assert _published(registry) is None
    alarm = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(alarm) == 1 and f"checkpoint {size} NOT published" in alarm[0]
    assert "w2: unreachable" in alarm[0] and "w3: a bad cosignature" in alarm[0]
    with read_transaction(registry.engine) as conn:
        alerts = checkpoints.witness_alerts(conn)
        w1 = checkpoints.witness_record(conn, policy.witness("w1").verifier)
    assert (
        alerts[0] == f"checkpoint {size} is not published: below the witness quorum "
        "(published size 0)"
    )
    assert any(a.startswith("witness witness.test/w2 failed 1 time(s)") for a in alerts)
    assert any(a.startswith("witness witness.test/faulty failed 1 time(s)") for a in alerts)
    # The witness that cosigned moved on: its size is recorded for the next request.
    assert w1.tree_size == size and w1.failures == 0
    # The same alarm again is not logged again at WARNING; the counters keep counting.
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="tracemark.witnessing"):
        again = witnessing.step()
    assert again is not None and not again.published and caplog.records == []
    assert witnessing.counters.below_quorum == 2
    assert witnessing.counters.failures == {"w2": 2, "w3": 2}


@pytest.mark.slow
def test_one_witness_down_at_a_two_of_three_quorum_still_publishes_and_warns(
    engine: Engine,
    witnesses: Witnesses,
    make_creator: CreatorFactory,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    witnesses.real("w1")
    witnesses.real("w2")
    witnesses.down("w3")
    policy = witnesses.policy("group two 2 w1 w2 w3\nquorum two\n")
    registry = _registry(engine, clock, policy)
    size = _grow(registry, make_creator, clock, 2)
    with caplog.at_level(logging.WARNING, logger="tracemark.witnessing"):
        done = one_round(registry, policy)
    assert done is not None and done.published and done.cosigned == ("w1", "w2")
    served = _published(registry)
    assert served is not None and served.checkpoint.size == size
    assert policy.check(served.note) == ("w1", "w2")
    assert any("failed: w3: unreachable" in r.getMessage() for r in caplog.records)
    with read_transaction(registry.engine) as conn:
        alerts = checkpoints.witness_alerts(conn)
    # Degraded, not held back: only the witness is named.
    assert len(alerts) == 1 and alerts[0].startswith("witness witness.test/w3 failed")


@pytest.mark.slow
def test_a_409_is_retried_once_from_the_size_the_witness_names(
    engine: Engine,
    witnesses: Witnesses,
    make_creator: CreatorFactory,
    clock: Clock,
    closing: ExitStack,
) -> None:
    witnesses.real("w1")
    policy = witnesses.policy("quorum w1\n")
    registry = _registry(engine, clock, policy)
    statuses = Statuses()
    witnessing = closing.enter_context(Witnessing(registry, policy, http=statuses.client()))
    first = _grow(registry, make_creator, clock, 2)
    assert witnessing.step() is not None
    # The registry lost what it knew of the witness (a restored database): it asks from 0.
    with write_transaction(registry.engine) as conn:
        conn.execute(delete(witnesses_t))
    second = _grow(registry, make_creator, clock, 3)
    done = witnessing.step()
    assert done is not None and done.published and done.size == second
    url = witnesses.entries["w1"][1]
    assert statuses.of(url) == [200, 409, 200]  # then the proof from ``first`` to ``second``
    assert first < second
    with read_transaction(registry.engine) as conn:
        assert checkpoints.witness_record(conn, policy.witness("w1").verifier).tree_size == second


@pytest.mark.slow
def test_a_witness_whose_state_is_older_than_the_registry_recorded(
    engine: Engine,
    witnesses: Witnesses,
    make_creator: CreatorFactory,
    clock: Clock,
    closing: ExitStack,
) -> None:
    witnesses.real("w1", ed25519=True)
    policy = witnesses.policy("quorum w1\n")
    registry = _registry(engine, clock, policy)
    statuses = Statuses()
    witnessing = closing.enter_context(Witnessing(registry, policy, http=statuses.client()))
    _grow(registry, make_creator, clock, 2)
    assert witnessing.step() is not None
    # The witness was restored from a backup taken then; the registry recorded a later
    # size it cosigned (and the log grew past both): old = recorded, 409 first, retry.
    second = _grow(registry, make_creator, clock, 2)
    with write_transaction(registry.engine) as conn:
        checkpoints.record_cosigned(conn, policy.witness("w1").verifier, second, now=clock())
    third = _grow(registry, make_creator, clock, 2)
    done = witnessing.step()
    assert done is not None and done.published and done.size == third
    assert statuses.of(witnesses.entries["w1"][1]) == [200, 409, 200]


@pytest.mark.slow
def test_a_split_view_is_refused_by_a_witness_that_saw_the_first(
    engine: Engine,
    tmp_path: Path,
    witnesses: Witnesses,
    make_creator: CreatorFactory,
    clock: Clock,
) -> None:
    witnesses.real("w1")
    policy = witnesses.policy("quorum w1\n")
    honest = _registry(engine, clock, policy)
    size = _grow(honest, make_creator, clock, 3)
    assert (done := one_round(honest, policy)) is not None and done.published
    # The fault: the same log keys sign a second history of the same size (another database).
    fork_engine = create_db_engine(f"sqlite:///{tmp_path / 'fork.db'}")
    upgrade(fork_engine)
    fork = _registry(fork_engine, clock, policy)
    assert _grow(fork, make_creator, clock, 3) == size
    with read_transaction(fork_engine) as conn:
        forked = checkpoints.checkpoint_at(conn, size)
    with read_transaction(engine) as conn:
        first = checkpoints.checkpoint_at(conn, size)
    assert forked is not None and first is not None
    assert forked.checkpoint.root != first.checkpoint.root  # two checkpoints, one size
    statuses = Statuses()
    refused = one_round(fork, policy, http=statuses.client())
    assert refused is not None and not refused.published
    # old 0 -> 409 with the size it cosigned -> old = size, same size, other root: 422.
    assert statuses.of(witnesses.entries["w1"][1]) == [409, 422]
    assert refused.failures["w1"].startswith("HTTP 422")
    assert _published(fork) is None
    # A shorter fork: the witness has cosigned beyond it; the registry says so.
    short_engine = create_db_engine(f"sqlite:///{tmp_path / 'short.db'}")
    upgrade(short_engine)
    short = _registry(short_engine, clock, policy)
    _grow(short, make_creator, clock, 1)
    behind = one_round(short, policy)
    assert behind is not None and not behind.published
    assert "beyond this checkpoint's" in behind.failures["w1"]
    # The honest log goes on, witnessed from the first view.
    _grow(honest, make_creator, clock, 2)
    assert (done := one_round(honest, policy)) is not None and done.published


@pytest.mark.parametrize(
    ("mode", "error"),
    [
        ("no-timestamp", "a cosignature without a timestamp (tlog-witness forbids it)"),
        ("garbage", "a malformed answer: "),
        ("bad-409", "HTTP 409 without a text/x.tlog.size size"),
        ("hang", "no answer within the timeout"),
    ],
)
def test_each_bad_answer_is_a_failure_of_that_witness_only(
    engine: Engine,
    witnesses: Witnesses,
    make_creator: CreatorFactory,
    clock: Clock,
    mode: str,
    error: str,
) -> None:
    witnesses.real("w1", ed25519=True)
    witnesses.faulty("bad", mode)
    policy = witnesses.policy("group any any w1 bad\nquorum any\n")
    registry = _registry(engine, clock, policy)
    _grow(registry, make_creator, clock, 1)
    # NOTE: a short timeout for the witness that never answers; the others answer at once.
    done = one_round(registry, policy, http=Statuses().client(timeout=1.0))
    assert done is not None and done.published and done.cosigned == ("w1",)
    assert done.failures["bad"].startswith(error)
    served = _published(registry)
    assert served is not None
    assert [s.name for s in served.note.signatures][-1] == "witness.test/w1"
    assert len(served.note.signatures) == 3  # the log's two lines, w1's one


def test_lines_from_other_keys_in_an_answer_are_ignored(
    engine: Engine,
    witnesses: Witnesses,
    make_creator: CreatorFactory,
    clock: Clock,
) -> None:
    # The real witness answers with two lines (ML-DSA-44 and Ed25519); the policy names one
    # key: only that key's line is kept and served.
    witnesses.real("w1")
    policy = witnesses.policy("quorum w1\n")
    registry = _registry(engine, clock, policy)
    _grow(registry, make_creator, clock, 1)
    assert (done := one_round(registry, policy)) is not None and done.published
    served = _published(registry)
    assert served is not None
    key = parse_vkey(witnesses.entries["w1"][0])
    assert [(s.name, s.key_id) for s in served.note.signatures[2:]] == [(key.name, key.key_id)]


def test_readyz_says_degraded_and_names_the_failing_witness(
    engine: Engine,
    witnesses: Witnesses,
    make_creator: CreatorFactory,
    clock: Clock,
) -> None:
    from fastapi.testclient import TestClient

    from api.app import create_app

    witnesses.down("w1")
    policy = witnesses.policy("quorum w1\n")
    registry = _registry(engine, clock, policy)
    client = TestClient(create_app(registry))
    assert client.get("/readyz").json()["status"] == "ok"
    size = _grow(registry, make_creator, clock, 1)
    assert (done := one_round(registry, policy)) is not None and not done.published
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "degraded"
    alerts = ready.json()["alerts"]
    assert alerts[0] == (
        f"checkpoint {size} is not published: below the witness quorum (published size 0)"
    )
    assert alerts[1].startswith("witness witness.test/w1 failed 1 time(s) in a row: unreachable")


@pytest.mark.slow
def test_the_loop_publishes_each_new_checkpoint_and_stops_when_asked(
    engine: Engine,
    witnesses: Witnesses,
    make_creator: CreatorFactory,
    clock: Clock,
    closing: ExitStack,
) -> None:
    import threading

    from anchoring.witnessing import run_witnessing
    from tests.polling import wait_until

    witnesses.real("w1")
    policy = witnesses.policy("quorum w1\n")
    registry = _registry(engine, clock, policy)
    witnessing = closing.enter_context(Witnessing(registry, policy))
    stop = threading.Event()
    loop = threading.Thread(
        target=run_witnessing, args=(witnessing,), kwargs={"interval": 0.05, "stop": stop}
    )
    loop.start()
    try:
        for n in (2, 3):
            size = _grow(registry, make_creator, clock, n)

            def published(size: int = size) -> bool:
                served = _published(registry)
                return served is not None and served.checkpoint.size == size

            wait_until(f"checkpoint {size} published", published, timeout=30)
    finally:
        stop.set()
        loop.join(timeout=30)
    assert not loop.is_alive()
    assert witnessing.counters.published == 2 and witnessing.counters.below_quorum == 0
