"""The telemetry writer: verification events appended (never counted: the telemetry role
folds them, ``registry.telemetryfold``) through an engine of its own, whose commits do not
wait for the disk, on SQLite and PostgreSQL; the registry's engine keeps its durable
settings. And the lag bound through the app: verify answers' counts follow."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from api.ratelimit import RateLimiter
from api.telemetry import TelemetryBuffer, TelemetryWriter
from registry.db import TELEMETRY_CACHE_KIB, read_transaction
from registry.service import Registry
from registry.telemetry import VerificationRecord, events_t, verification_stats
from registry.telemetryfold import TelemetryFolder
from tests.api.conftest import CodeGood, KeyFactory, bearer


def _setting(engine: Engine) -> tuple[Any, ...]:
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            return (
                conn.exec_driver_sql("PRAGMA synchronous").scalar(),
                conn.exec_driver_sql("PRAGMA cache_size").scalar(),
            )
        return (conn.exec_driver_sql("SHOW synchronous_commit").scalar(),)


def record(fingerprint: bytes, platform: str, at: int) -> VerificationRecord:
    return VerificationRecord(
        at=at,
        platform=platform,
        good_type=2,
        fingerprint=fingerprint,
        via="fingerprint",
        verdict="unknown",
    )


def test_events_and_counts_go_through_a_lossy_engine_of_their_own(registry: Registry) -> None:
    writer = TelemetryWriter(registry, RateLimiter())
    buffer = TelemetryBuffer(writer, interval=60)
    good = b"\x07" * 32
    for at, platform in ((100, "a"), (101, "b"), (102, "a")):
        buffer.add(record(good, platform, at))
    buffer.flush()
    with read_transaction(registry.engine) as conn:
        stats = verification_stats(conn, 2, good)
        appended = conn.execute(select(func.count()).select_from(events_t)).scalar()
    assert appended == 3 and stats.times == 0  # appended only: the API counts nothing
    folder = TelemetryFolder(registry.engine)
    assert folder.fold() == 3
    with read_transaction(registry.engine) as conn:
        stats = verification_stats(conn, 2, good)
    assert (stats.times, stats.platforms, stats.first_at, stats.last_at) == (3, 2, 100, 102)

    assert writer._engine is not None and writer._engine is not registry.engine
    if registry.engine.dialect.name == "sqlite":
        # 1 = NORMAL for the telemetry, 2 = FULL for everything else.
        assert _setting(writer._engine) == (1, -TELEMETRY_CACHE_KIB)
        assert _setting(registry.engine)[0] == 2
    else:
        assert _setting(writer._engine) == ("off",)
        assert _setting(registry.engine) == ("on",)

    # Closing the buffer flushes; closing the writer lets its connections go; it reopens on use.
    buffer.add(record(good, "c", 103))
    buffer.close()
    writer.close()
    assert writer._engine is None
    buffer.add(record(good, "c", 104))
    buffer.flush()
    folder.fold()
    folder.close()
    with read_transaction(registry.engine) as conn:
        stats = verification_stats(conn, 2, good)
    assert (stats.times, stats.platforms, stats.last_at) == (5, 3, 104)
    buffer.close()


def test_a_flush_waits_for_the_one_under_way() -> None:
    """What was added before ``flush()`` is written when it returns, even while the
    background thread is in the middle of writing it (tests and shutdown rely on that)."""
    written: list[int] = []
    entered, release = threading.Event(), threading.Event()

    def slow_write(records: Sequence[VerificationRecord]) -> None:
        if records and not entered.is_set():
            entered.set()
            release.wait(5)
        written.extend(r.at for r in records)

    buffer = TelemetryBuffer(slow_write, interval=3600)
    buffer.add(record(b"\x01" * 32, "a", 1))
    background = threading.Thread(target=buffer.flush)
    background.start()
    assert entered.wait(5)  # the "background" flush holds record 1, not written yet
    buffer.add(record(b"\x01" * 32, "a", 2))
    waiting = threading.Thread(target=buffer.flush)
    waiting.start()
    waiting.join(0.2)
    assert waiting.is_alive() and written == []  # it waits for the flush under way
    release.set()
    waiting.join(5)
    background.join(5)
    assert written == [1, 2]
    buffer.close()


def test_verify_answers_count_within_the_lag_bound(
    registry: Registry, code_good: CodeGood, make_key: KeyFactory
) -> None:
    """The lag bound through the app with the default intervals (flush 0.5 s, fold 0.5 s):
    verifications, then the counts a verify answer reports, polled (not timed: a loaded
    machine stretches every interval; the bound itself is structural, shown in
    tests/registry/test_telemetryfold.py). No flush or fold is called by hand here."""
    from api.app import create_app

    app = create_app(registry, siwe_domain="testserver")
    key = make_key("cardhub", "verify")
    body = {"good_type": "code", "fingerprint": code_good.hex}
    with TestClient(app) as client:
        for _ in range(5):
            assert client.post("/v1/verify", json=body, headers=bearer(key)).status_code == 200
        folder = app.state.telemetry_folder
        seen: Any = None
        started = time.monotonic()
        while time.monotonic() - started < 60:  # a generous deadline, not the bound
            answer = client.post("/v1/verify", json=body, headers=bearer(key)).json()
            seen = answer["verifications"]
            if seen["times"] >= 5:
                break
            time.sleep(0.1)
        lag = time.monotonic() - started
        # Every verification counted once (the polls add their own, folded later).
        assert seen["times"] >= 5 and seen["platforms"] == 1
        assert folder.cycles >= 1
        print(f"counts followed the verifications after {lag:.2f} s (bound ~1-2 s)")
