"""``GET /v1/signals``: the risk index's signals for auditors, filtered and paginated."""

from __future__ import annotations

import os

from fastapi.testclient import TestClient

from readmodels.riskindex import Risk, RiskIndex
from readmodels.riskworker import RiskWorker
from readmodels.signals import (
    BATCH_VELOCITY,
    CODE_VELOCITY,
    PROBE_BURST,
    Evidence,
    Signal,
    Subject,
    Thresholds,
    batch_subject,
    good_name,
    good_subject,
)
from registry.fingerprints import GoodType
from registry.service import Registry
from tests.api.conftest import KeyFactory, bearer

CODE = int(GoodType.CODE)


def standing_signals() -> tuple[list[Signal], list[tuple[int, bytes]]]:
    goods = [(CODE, os.urandom(32)) for _ in range(30)]
    seen = Evidence("verification", "verification 1", 1_700_000_000, "cardhub by code: authentic")
    signals = [
        Signal(CODE_VELOCITY, f"velocity {n}", (seen,), good_subject(g), (g,), ("cardhub",))
        for n, g in enumerate(goods[:5])
    ]
    signals.append(
        Signal(
            BATCH_VELOCITY,
            "25 codes of batch 7 appeared on shadowkeys within an hour",
            (seen,),
            batch_subject(7),
            tuple(goods[5:]),
            ("shadowkeys",),
        )
    )
    signals.append(
        Signal(PROBE_BURST, "31 failed code lookups", (), Subject("key", "ip:203.0.113.7"), (), ())
    )
    return signals, goods


def install(registry: Registry, signals: list[Signal]) -> None:
    """Standing signals, as the risk worker writes them."""
    goods = {}
    for signal in signals:
        for good in signal.goods:
            goods.setdefault(good, Risk(signal.weight, (signal,)))
    index = RiskIndex(goods, {}, signals, built_at=1_700_000_123, thresholds=Thresholds())
    RiskWorker(registry.engine, clock=registry.clock).write(index, registry.clock())


def test_pages_follow_the_signal_ids_and_filters_combine(
    registry: Registry, client: TestClient, make_key: KeyFactory
) -> None:
    signals, goods = standing_signals()
    install(registry, signals)
    auditor = bearer(make_key("auditco", "audit"))

    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 3}
        if cursor is not None:
            params["cursor"] = cursor
        page = client.get("/v1/signals", params=params, headers=auditor).json()
        assert page["built_at"] == 1_700_000_123
        seen += [item["signal_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(s.signal_id for s in signals)  # each once, in a stable order

    def codes(**params: str) -> list[str]:
        answer = client.get("/v1/signals", params=params, headers=auditor)
        assert answer.status_code == 200, answer.text
        return [item["code"] for item in answer.json()["items"]]

    assert codes(code=CODE_VELOCITY) == [CODE_VELOCITY] * 5
    assert codes(subject="batch") == [BATCH_VELOCITY]
    assert codes(subject="key") == [PROBE_BURST]
    assert codes(platform="shadowkeys") == [BATCH_VELOCITY]
    assert codes(good=good_name(goods[0])) == [CODE_VELOCITY]
    assert codes(good=good_name(goods[29])) == [BATCH_VELOCITY]
    assert codes(code=CODE_VELOCITY, platform="shadowkeys") == []

    (batch,) = client.get("/v1/signals", params={"subject": "batch"}, headers=auditor).json()[
        "items"
    ]
    assert batch["goods_total"] == 25 and len(batch["goods"]) == 20
    assert batch["subject"] == {"kind": "batch", "id": "batch:7"}
    assert batch["weight"] == signals[5].weight
    assert batch["evidence"] == [
        {
            "kind": "verification",
            "ref": "verification 1",
            "at": 1_700_000_000,
            "detail": "cardhub by code: authentic",
        }
    ]


def test_bad_cursors_and_filters_are_problems(
    registry: Registry, client: TestClient, make_key: KeyFactory
) -> None:
    install(registry, standing_signals()[0])
    auditor = bearer(make_key("auditco", "audit"))
    for params in (
        {"cursor": "not-a-cursor"},
        {"cursor": "djE6MTI"},  # a transfer list's cursor ("v1:12")
        {"good": "code:0x1234"},
        {"subject": "planet"},
        {"limit": 0},
        {"platform": "Card Hub%"},
    ):
        answer = client.get("/v1/signals", params=params, headers=auditor)
        assert answer.status_code in (400, 422), (params, answer.status_code)
        assert answer.headers["content-type"] == "application/problem+json"


def test_before_the_first_build_the_list_is_empty(client: TestClient, make_key: KeyFactory) -> None:
    answer = client.get("/v1/signals", headers=bearer(make_key("auditco", "audit")))
    assert answer.status_code == 200
    assert answer.json() == {"built_at": 0, "items": [], "next_cursor": None}
