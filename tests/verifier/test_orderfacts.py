"""The words of an order's evidence (``verifier.orderfacts``): known answers and properties.
Pure: no database (the evidence itself is tested in tests/registry/test_order_evidence.py)."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from registry.deliverypayload import DeliveryPayload
from registry.eip712 import DEV_DOMAIN
from registry.fingerprints import GoodType
from verifier.orderfacts import STATE_ZH, Fact, duration, summarize

PAYLOAD = DeliveryPayload(
    order_id=7,
    opened=bytes([0x44]) * 32,
    good_type=GoodType.CODE,
    fingerprint=bytes([0x11]) * 32,
    platform="cardhub",
    seller_platform=None,
    buyer_commitment=bytes([0x55]) * 32,
    price=1_000,
    currency="CNY",
    delivered_at=1_700_000_000,
    registry="0x" + "22" * 20,
    domain=DEV_DOMAIN,
)

facts = st.builds(
    Fact,
    leaf_index=st.integers(0, 10**9),
    kind=st.sampled_from(
        [
            "settlement",
            "refund_redeemed",
            "sale",
            "redemption",
            "revocation",
            "conflict",
            "delivery",
        ]
    ),
    when=st.sampled_from(["before", "after"]),
    seconds=st.integers(0, 10**8),
    platform=st.sampled_from([None, "cardhub", "keyshop"]),
    order_id=st.one_of(st.none(), st.integers(1, 10**6)),
    elsewhere=st.booleans(),
)


def _summary(found: list[Fact], state: str = "disputed") -> dict[str, object]:
    return summarize(
        order_id=7, state=state, payload=PAYLOAD, delivery_leaf=5, tree_size=9, facts=found
    )


def test_a_summary_has_known_words() -> None:
    redeemed = Fact(8, "redemption", "after", 3 * 3_600 + 59, "keyshop", None, True)
    summary = _summary([redeemed])
    assert summary == {
        "clean": False,
        "facts": [
            {
                "leaf_index": 8,
                "kind": "redemption",
                "when": "after",
                "seconds": 10_859,
                "platform": "keyshop",
                "order_id": None,
                "elsewhere": True,
            }
        ],
        "en": [
            "order 7: code 0x" + "11" * 32 + " was delivered on platform cardhub at "
            "2023-11-14 22:13:20 UTC (leaf 5) by the creator first-hand, for 1000 CNY (minor "
            "units); the order is disputed as of its last signed change",
            "the code was redeemed (a final sale consumed it) on platform keyshop 3 hours after "
            "delivery (leaf 8)",
            "1 of the facts above bears on the dispute (the log's history of the good is "
            "complete as of head 9): the delivery is not clean",
        ],
        "zh": [
            "订单 7：商品 code 0x" + "11" * 32 + " 于 2023-11-14 22:13:20 UTC 由平台 cardhub 交付"
            "（日志第 5 条），卖家为创作者首发，价格 1000 CNY（最小货币单位）；按最后一次签名的"
            "状态变更，订单争议中",
            "交付后3小时，该卡密已在平台 keyshop 被核销（最终售出，已消耗）（日志第 8 条）",
            "以上有 1 条与争议相关（截至日志树头 9 历史完整）：本次交付不干净",
        ],
    }


@given(st.lists(facts, max_size=12), st.sampled_from(sorted(STATE_ZH)))
def test_both_languages_say_each_fact_and_the_verdict_follows_the_facts(
    found: list[Fact], state: str
) -> None:
    summary = _summary(found, state)
    en, zh = summary["en"], summary["zh"]
    assert isinstance(en, list) and isinstance(zh, list)
    # A headline, one line a fact in order, a verdict: in both languages alike.
    assert len(en) == len(zh) == len(found) + 2
    for fact, line_en, line_zh in zip(found, en[1:], zh[1:], strict=False):
        assert f"(leaf {fact.leaf_index:,})" in line_en
        assert f"（日志第 {fact.leaf_index} 条）" in line_zh
        assert f" {fact.when} delivery" in line_en
        assert ("交付前" if fact.when == "before" else "交付后") in line_zh
    clean = not any(fact.notable for fact in found)
    assert summary["clean"] is clean
    assert en[-1].endswith("the delivery is clean" if clean else "the delivery is not clean")
    assert zh[-1].endswith("本次交付是干净的" if clean else "本次交付不干净")
    # Computed, not stored: the same facts give the same summary.
    assert _summary(list(found), state) == summary


@given(st.sampled_from(["revocation", "conflict", "delivery"]), st.booleans())
def test_a_revocation_conflict_or_other_delivery_is_never_clean(kind: str, elsewhere: bool) -> None:
    fact = Fact(3, kind, "before", 10, None, None, elsewhere)  # type: ignore[arg-type]
    assert fact.notable and not _summary([fact])["clean"]


def test_the_orders_own_sales_and_earlier_sales_on_its_platforms_are_clean() -> None:
    mine = [
        Fact(3, "sale", "before", 86_400, "cardhub", None, False),
        Fact(9, "settlement", "after", 600, "cardhub", None, False),
    ]
    assert _summary(mine)["clean"] is True
    assert not _summary([Fact(3, "redemption", "before", 5, "cardhub", None, False)])["clean"]
    assert not _summary([Fact(9, "sale", "after", 5, "keyshop", None, True)])["clean"]


@given(st.integers(0, 10**10))
def test_a_duration_is_its_largest_whole_unit(seconds: int) -> None:
    en, zh = duration(seconds)
    n = int(en.split()[0])
    size = {"day": 86_400, "hour": 3_600, "minute": 60, "second": 1}[en.split()[1].rstrip("s")]
    assert n * size <= seconds < (n + 1) * size
    # ... and the largest one that fits: below the next unit up (days have none).
    assert size == 86_400 or seconds < {1: 60, 60: 3_600, 3_600: 86_400}[size]
    assert re.fullmatch(rf"{n}(天|小时|分钟|秒)", zh)
    assert en.endswith("s") == (n != 1)
