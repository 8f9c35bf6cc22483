"""Upline rebates' routes (issue 17 item 6) through the real app on SQLite and PostgreSQL: the
tree, the policies (platform and creator), the agents' statements (only due lines owed), the
typed client; every refusal a problem+json."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from registry.agents import agents_t, changes_t
from registry.db import write_transaction
from registry.fingerprints import GoodType
from registry.rebates import upline_rebates
from registry.service import Registry
from registry.transfers import royalty_lines_t
from tests.api.conftest import CodeGood, KeyFactory, bearer, sign_in
from tests.conftest import Clock
from verifier.client import TracemarkClient
from verifier.problems import ApiProblem

PROBLEM = "application/problem+json"
PRODUCT = "30-day-card"


def place(client: TestClient, key: str, moves: list[tuple[str, str | None]]) -> Any:
    body = {"agents": [{"agent": a, "upline": u} for a, u in moves]}
    return client.put("/v1/rebates/agents", json=body, headers=bearer(key))


def tree(registry: Registry) -> tuple[Any, ...]:
    with registry.engine.connect() as conn:
        return (
            sorted(tuple(r) for r in conn.execute(select(agents_t)).all()),
            conn.execute(select(func.count()).select_from(changes_t)).scalar_one(),
        )


def test_a_platform_places_its_tree_and_cycles_are_409_problems_changing_nothing(
    client: TestClient, registry: Registry, make_key: KeyFactory
) -> None:
    key = make_key("cardhub", "transfer")
    answer = place(client, key, [("site", None), ("shop", "site")])
    assert answer.status_code == 200, answer.text
    site, shop = answer.json()["agents"]
    assert site["depth"] == 0 and shop["depth"] == 1 and shop["upline"] == site["payee"]
    assert shop["payee"] == "cardhub:" + registry.reference_hash("cardhub", "shop").hex()
    before = tree(registry)
    refused = place(client, key, [("site", "shop")])
    assert refused.status_code == 409
    assert refused.headers["content-type"] == PROBLEM
    assert refused.json()["type"].endswith("/agent-cycle")
    assert "shop" not in refused.json()["detail"]  # no reference echoed
    assert tree(registry) == before
    deep = [(f"n{i}", None if i == 0 else f"n{i - 1}") for i in range(18)]
    too_deep = place(client, key, deep)
    assert too_deep.status_code == 409 and too_deep.json()["type"].endswith("/tree-too-deep")
    assert tree(registry) == before  # all or nothing
    # Lookup by reference: uplines and history; a stranger is a 404 problem.
    found = client.post("/v1/rebates/agents/lookup", json={"agent": "shop"}, headers=bearer(key))
    assert found.status_code == 200
    assert found.json()["uplines"] == [site["payee"]]
    assert [h["upline"] for h in found.json()["history"]] == [site["payee"]]
    missing = client.post("/v1/rebates/agents/lookup", json={"agent": "x"}, headers=bearer(key))
    assert missing.status_code == 404 and missing.headers["content-type"] == PROBLEM
    # Another platform's tree is its own: the same reference is not there.
    other = make_key("otherhub", "transfer")
    assert (
        client.post("/v1/rebates/agents/lookup", json={"agent": "shop"}, headers=bearer(other))
    ).status_code == 404
    listed = client.get("/v1/rebates/agents", headers=bearer(key)).json()
    assert {a["payee"] for a in listed["items"]} == {site["payee"], shop["payee"]}
    assert client.get("/v1/rebates/agents", headers=bearer(other)).json()["items"] == []
    # A verify-only key cannot touch the tree.
    verify_only = make_key("cardhub", "verify")
    assert place(client, verify_only, [("a", None)]).status_code == 403


def test_policies_creator_wins_and_bad_ones_are_problems(
    client: TestClient,
    registry: Registry,
    clock: Clock,
    make_key: KeyFactory,
    code_good: CodeGood,
) -> None:
    key = make_key("cardhub", "transfer")
    creator = code_good.creator.account.address
    path = f"/v1/rebates/policies/{creator}/{PRODUCT}"
    assert client.get(path, headers=bearer(key)).json() == {
        "creator_policy": None,
        "platform_policy": None,
        "applies": None,
    }
    mine = client.put(path, json={"levels": [300, 100]}, headers=bearer(key))
    assert mine.status_code == 200, mine.text
    assert mine.json()["setter"] == "platform:cardhub"
    assert mine.json()["min_price"] == "100"
    assert client.get(path, headers=bearer(key)).json()["applies"] == "platform"
    # The creator sets its own through its session: it wins for every platform.
    session = bearer(sign_in(client, code_good.creator, clock()))
    own = f"/v1/creators/me/products/{PRODUCT}/rebates"
    assert client.put(own, json={"levels": [500]}, headers=session).status_code == 200
    both = client.get(path, headers=bearer(key)).json()
    assert both["applies"] == "creator" and both["platform_policy"]["levels"] == [300, 100]
    assert client.get(own, headers=session).json()["creator_policy"]["levels"] == [500]
    # A platform key cannot use the creator's route, nor a session the platform's.
    assert client.put(own, json={"levels": [1]}, headers=bearer(key)).status_code in (401, 403)
    assert client.put(path, json={"levels": [1]}, headers=session).status_code in (401, 403)
    # Refusals: levels over 100 %, a level of 0, an unknown product.
    for levels in ([6_000, 5_000], [0], [], [1] * 17):
        bad = client.put(path, json={"levels": levels}, headers=bearer(key))
        assert bad.status_code in (400, 422), (levels, bad.text)
        assert bad.headers["content-type"] == PROBLEM
    over = client.put(path, json={"levels": [6_000, 5_000]}, headers=bearer(key))
    assert over.status_code == 422 and over.json()["type"].endswith("/invalid-rebate-policy")
    unknown = client.put(
        f"/v1/rebates/policies/{creator}/no-such-card", json={"levels": [1]}, headers=bearer(key)
    )
    assert unknown.status_code == 404 and unknown.headers["content-type"] == PROBLEM
    # Removing the creator's lets the platform's apply again.
    assert client.delete(own, headers=session).status_code == 204
    assert client.delete(own, headers=session).status_code == 404
    assert client.get(path, headers=bearer(key)).json()["applies"] == "platform"
    # And the rebates of a sale follow it.
    place(client, key, [("top", None), ("shop", "top")])
    with registry.engine.connect() as conn:
        parts = upline_rebates(
            conn,
            creator=bytes.fromhex(creator[2:]),
            good_type=int(GoodType.CODE),
            fingerprint=code_good.fingerprint,
            platform="cardhub",
            seller_ref=registry.reference_hash("cardhub", "shop"),
            price=1999,
            currency="CNY",
        )
    assert [(p.level, p.bps, p.amount) for p in parts] == [(1, 300, 60)]


def _line(
    registry: Registry, good: CodeGood, payee: str, amount: int, status: str, at: int
) -> None:
    with write_transaction(registry.engine) as conn:
        conn.execute(
            royalty_lines_t.insert().values(
                transfer_id=None,
                creator=bytes.fromhex(good.creator.account.address[2:]),
                recipient=None,
                bps=300,
                amount=str(amount),
                currency="CNY",
                platform=payee.split(":")[0],
                good_type=int(GoodType.CODE),
                fingerprint=good.fingerprint,
                created_at=at,
                status=status,
                kind="rebate",
                payee=payee,
                level=1,
            )
        )


def test_statements_owe_only_due_lines_and_show_held_and_reversed_apart(
    client: TestClient,
    registry: Registry,
    clock: Clock,
    make_key: KeyFactory,
    code_good: CodeGood,
) -> None:
    key = make_key("cardhub", "transfer")
    top, shop = place(client, key, [("top", None), ("shop", "top")]).json()["agents"]
    other_payee = "otherhub:" + registry.reference_hash("otherhub", "top").hex()
    now = clock()
    _line(registry, code_good, top["payee"], 60, "due", now)
    _line(registry, code_good, top["payee"], 40, "due", now)
    _line(registry, code_good, top["payee"], 7, "held", now)
    _line(registry, code_good, top["payee"], 5, "reversed", now)
    _line(registry, code_good, shop["payee"], 3, "held", now)
    _line(registry, code_good, other_payee, 999, "due", now)  # another platform's agent
    answer = client.get("/v1/rebates/statement", params={"period": "all"}, headers=bearer(key))
    assert answer.status_code == 200, answer.text
    totals = {t["payee"]: t for t in answer.json()["totals"]}
    assert totals == {
        top["payee"]: {
            "payee": top["payee"],
            "currency": "CNY",
            "owed": "100",
            "held": "7",
            "reversed": "5",
        },
        shop["payee"]: {
            "payee": shop["payee"],
            "currency": "CNY",
            "owed": "0",
            "held": "3",
            "reversed": "0",
        },
    }
    (line,) = [x for x in answer.json()["lines"] if x["payee"] == top["payee"]]
    assert (line["due_lines"], line["held_lines"], line["reversed_lines"]) == (2, 1, 1)
    one = client.get(
        "/v1/rebates/statement", params={"payee": shop["payee"]}, headers=bearer(key)
    ).json()
    assert [t["payee"] for t in one["totals"]] == [shop["payee"]]
    # Another platform's agent: nothing, whoever asks by its payee.
    assert (
        client.get(
            "/v1/rebates/statement", params={"payee": other_payee}, headers=bearer(key)
        ).json()["lines"]
        == []
    )
    # A period before the lines: nothing; a bad payee: a problem.
    assert (
        client.get("/v1/rebates/statement", params={"until": now - 1}, headers=bearer(key)).json()[
            "lines"
        ]
        == []
    )
    bad = client.get("/v1/rebates/statement", params={"payee": "nope"}, headers=bearer(key))
    assert bad.status_code in (400, 422) and bad.headers["content-type"] == PROBLEM
    csv_text = client.get(
        "/v1/rebates/statement", params={"format": "csv", "period": "all"}, headers=bearer(key)
    ).text
    rows = csv_text.strip().splitlines()
    assert rows[0] == "period,payee,currency,owed,held,reversed,due_lines,held_lines,reversed_lines"
    assert f"all,{top['payee']},CNY,100,7,5,2,1,1" in rows


def test_the_typed_client(
    client: TestClient, clock: Clock, make_key: KeyFactory, code_good: CodeGood
) -> None:
    key = make_key("cardhub", "transfer")
    creator = code_good.creator.account.address
    with TracemarkClient("http://testserver", api_key=key, http_client=client) as platform:
        placed = platform.place_agents([("top", None), ("shop", "top")])
        assert placed.agents[1].upline == placed.agents[0].payee
        assert platform.agent("shop").uplines == [placed.agents[0].payee]
        assert [a.payee for a in platform.agents().items] == sorted(a.payee for a in placed.agents)
        policy = platform.set_rebate_policy(creator, PRODUCT, [250, 50])
        assert policy.levels == [250, 50] and policy.total_bps == 300
        assert platform.rebate_policies(creator, PRODUCT).applies == "platform"
        statement = platform.rebate_statement(period="all")
        assert statement.lines == [] and statement.platform == "cardhub"
        assert platform.rebate_statement(format="csv").startswith("period,payee")
        with pytest.raises(ApiProblem) as caught:
            platform.place_agents([("top", "shop")])
        assert caught.value.status == 409
        platform.remove_rebate_policy(creator, PRODUCT)
        assert platform.rebate_policies(creator, PRODUCT).applies is None
    token = sign_in(client, code_good.creator, clock())
    with TracemarkClient("http://testserver", token=token, http_client=client) as own:
        assert own.set_my_rebate_policy(PRODUCT, [400]).setter == "creator"
        assert own.my_rebate_policy(PRODUCT).creator_policy is not None
        own.remove_my_rebate_policy(PRODUCT)
        assert own.my_rebate_policy(PRODUCT).creator_policy is None


def test_a_settled_order_pays_the_chain_and_the_statement_follows_its_lines(
    client: TestClient, clock: Clock, make_key: KeyFactory, code_good: CodeGood
) -> None:
    """Through the routes only: the creator's policy, the platform's tree, an order sold by
    the chain's last agent, delivered (lines held) and confirmed (due): the agents' statement
    shows them held, then owed."""
    key = make_key("cardhub", "transfer")
    session = bearer(sign_in(client, code_good.creator, clock()))
    assert (
        client.put(
            f"/v1/creators/me/products/{PRODUCT}/rebates",
            json={"levels": [300, 100]},
            headers=session,
        ).status_code
        == 200
    )
    top, mid, _shop = place(client, key, [("top", None), ("mid", "top"), ("shop", "mid")]).json()[
        "agents"
    ]
    sold = client.post(
        "/v1/transfers",
        json={
            "good_type": "code",
            "fingerprint": code_good.hex,
            "seller": {"creator": True},
            "buyer": {"reference": "shop"},
        },
        headers={**bearer(key), "Idempotency-Key": "to-shop"},
    )
    assert sold.status_code in (200, 201), sold.text
    opened = client.post(
        "/v1/orders",
        json={
            "good_type": "code",
            "fingerprint": code_good.hex,
            "seller": {"reference": "shop"},
            "buyer_reference": "buyer-1",
            "price": "10000",
            "currency": "CNY",
        },
        headers=bearer(key),
    )
    assert opened.status_code == 201, opened.text
    order_id = opened.json()["order_id"]
    delivered = client.post(
        f"/v1/orders/{order_id}/deliver", json={"code": code_good.code}, headers=bearer(key)
    )
    assert delivered.status_code == 200, delivered.text

    def totals() -> dict[str, tuple[str, str]]:
        answer = client.get("/v1/rebates/statement", params={"period": "all"}, headers=bearer(key))
        return {t["payee"]: (t["owed"], t["held"]) for t in answer.json()["totals"]}

    assert totals() == {mid["payee"]: ("0", "300"), top["payee"]: ("0", "100")}
    confirmed = client.post(f"/v1/orders/{order_id}/confirm", headers=bearer(key))
    assert confirmed.status_code == 200, confirmed.text
    assert totals() == {mid["payee"]: ("300", "0"), top["payee"]: ("100", "0")}
