"""What an order's evidence shows, in facts and in plain words (issue 17 item 5).

Computed, never stored: the registry computes the summary from the evidence it ships
(``readmodels.orderevidence``) and the offline verifier computes it again from the evidence it
has verified (``verifier.orderevidence``) and refuses a bundle whose summary differs. So the
words can only say what the proved entries say; a summary that trusts itself is a hole.

A fact is one of the good's log entries other than its registration and this order's
DELIVERY, placed relative to the delivery (by leaf: an entry before the DELIVERY's leaf is
"before", with its time difference from the leaf timestamps): the order's own sale (its
settlement, ``registry.settlement``), a sale (TRANSFER), a redemption (a final TRANSFER: the
sale that consumes a single-use code), a revocation, another creator's conflicting claim, or
a delivery for another order. "Elsewhere" is any platform other than
the order's and the seller's. The delivery is *clean* when no fact is a revocation, a
conflict, another delivery, a redemption before it, or a sale or redemption elsewhere.

Verifications are not log entries (they are the registry's telemetry, not evidence), so no
fact speaks of them. English and Chinese (the buyers of this market read Chinese); the
sentences are fixed templates over the facts, so both languages say the same.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from registry.deliverypayload import DeliveryPayload
from registry.errors import InvalidInput
from registry.fingerprints import fingerprint_hex
from registry.leaf import EntryKind
from registry.orders import State
from registry.transferpayload import TransferPayload
from verifier.bundle import BundleEntry
from verifier.timetext import utc_text

FactKind = Literal[
    "settlement", "refund_redeemed", "sale", "redemption", "revocation", "conflict", "delivery"
]

#: The order's states in Chinese, for the headline (``registry.orders.State``).
STATE_ZH: Final = {
    "reserved": "已预留",
    "delivered": "已交付",
    "disputed": "争议中",
    "confirmed": "已确认收货",
    "auto_confirmed": "已自动确认收货",
    "released": "已放款",
    "refunded": "已退款",
    "expired": "已过期",
    "cancelled": "已取消",
}

_UNITS: Final = (
    (86_400, "day", "天"),
    (3_600, "hour", "小时"),
    (60, "minute", "分钟"),
    (1, "second", "秒"),
)

#: The states in which an order's sale stands: the registry then records it as a TRANSFER
#: on the order's platform, seller to buyer, at the order's price (``registry.settlement``).
SALE_STANDS: Final = frozenset({State.CONFIRMED, State.AUTO_CONFIRMED, State.RELEASED})


@dataclass(frozen=True)
class Fact:
    """One entry of the good that bears on the order, placed relative to its delivery."""

    leaf_index: int
    kind: FactKind
    when: Literal["before", "after"]
    #: |entry time - delivery time|, whole seconds, from the leaves' timestamps.
    seconds: int
    #: The platform that reported the sale or made the delivery (None: revocation, conflict).
    platform: str | None
    #: Another order's id, for a delivery.
    order_id: int | None
    #: On a platform other than the order's and the seller's (always true of a revocation
    #: and a conflict: they are the creator's, or another creator's, not the parties').
    elsewhere: bool

    @property
    def notable(self) -> bool:
        """Whether the fact makes the delivery other than clean."""
        if self.kind in ("revocation", "conflict", "delivery"):
            return True
        return self.elsewhere or (self.kind == "redemption" and self.when == "before")

    def document(self) -> dict[str, Any]:
        return {
            "leaf_index": self.leaf_index,
            "kind": self.kind,
            "when": self.when,
            "seconds": self.seconds,
            "platform": self.platform,
            "order_id": self.order_id,
            "elsewhere": self.elsewhere,
        }


def duration(seconds: int) -> tuple[str, str]:
    """A time difference in its largest whole unit, in English and Chinese ("2 days", "2天";
    rounded down: "2 days" is 2 to 3 days; the fact carries the exact seconds)."""
    for size, en, zh in _UNITS:
        if seconds >= size or size == 1:
            n = seconds // size
            return f"{n} {en}{'' if n == 1 else 's'}", f"{n}{zh}"
    raise AssertionError("unreachable")  # pragma: no cover


def facts_of(
    entries: Iterable[BundleEntry],
    delivery: BundleEntry,
    payload: DeliveryPayload,
    state: str,
    resolved_at: int,
) -> list[Fact]:
    """The facts the good's entries show about the order ``payload`` delivered, in log order.

    ``entries`` are the good's entries as the evidence carries them (verified, when the
    verifier calls this); ``delivery`` is the order's own DELIVERY among them; ``state`` the
    order's state as of its last change, made at ``resolved_at``. The order's own sale (a
    ``settlement``) is the first TRANSFER after the delivery when the order's sale stands and
    the TRANSFER has the order's terms and the settling change's time: the reservation kept
    every other sale off the good from the delivery until that sale was recorded, in the
    settling change's transaction. Likewise a refund of a code the buyer redeemed anyway
    records its consumption (``refund_redeemed``: a final TRANSFER, no price, seller to buyer).
    A log whose clock had to move past the change's (``registry.log.sequencer_time``) stamps
    it later: it is then told as a plain sale or redemption on the order's platform. Raises
    ``InvalidInput`` for a TRANSFER or DELIVERY payload that does not parse (a verified bundle
    has none)."""
    parties = {payload.platform} | (
        set() if payload.seller_platform is None else {payload.seller_platform}
    )
    facts = []
    first_after = True
    for entry in entries:
        if entry.leaf_index == delivery.leaf_index or entry.kind is EntryKind.REGISTER:
            continue
        when: Literal["before", "after"] = (
            "before" if entry.leaf_index < delivery.leaf_index else "after"
        )
        seconds = abs(entry.timestamp - delivery.timestamp)
        kind: FactKind
        platform: str | None = None
        order_id: int | None = None
        if entry.kind is EntryKind.TRANSFER:
            transfer = TransferPayload.from_document(entry.payload, canonical=False)
            kind = "redemption" if transfer.final else "sale"
            platform = transfer.platform
            if when == "after" and first_after:
                first_after = False
                if entry.timestamp == resolved_at and _parties_match(transfer, payload):
                    if state in SALE_STANDS and _priced_as(transfer, payload):
                        kind = "settlement"
                    elif state == State.REFUNDED and transfer.final and transfer.price is None:
                        kind = "refund_redeemed"
        elif entry.kind is EntryKind.DELIVERY:
            other = DeliveryPayload.from_document(entry.payload, canonical=False)
            kind, platform, order_id = "delivery", other.platform, other.order_id
        elif entry.kind is EntryKind.REVOKE:
            kind = "revocation"
        elif entry.kind is EntryKind.CONFLICT:
            kind = "conflict"
        else:  # a subject's entry is never a good's  # pragma: no cover
            raise InvalidInput(f"leaf {entry.leaf_index:,} is a {entry.kind.name}")
        elsewhere = platform is None or platform not in parties
        facts.append(Fact(entry.leaf_index, kind, when, seconds, platform, order_id, elsewhere))
    return facts


def _parties_match(transfer: TransferPayload, payload: DeliveryPayload) -> bool:
    seller = transfer.seller.get("platform")  # None: the creator, first-hand
    return (
        transfer.platform == payload.platform
        and seller == payload.seller_platform
        and transfer.buyer.get("platform") == payload.platform
    )


def _priced_as(transfer: TransferPayload, payload: DeliveryPayload) -> bool:
    return (transfer.price, transfer.currency) == (payload.price, payload.currency)


def _sentence(fact: Fact) -> tuple[str, str]:
    en_d, zh_d = duration(fact.seconds)
    en_when = f"{en_d} {fact.when} delivery"
    zh_when = f"交付{'前' if fact.when == 'before' else '后'}{zh_d}"
    leaf, zh_leaf = f"(leaf {fact.leaf_index:,})", f"（日志第 {fact.leaf_index} 条）"
    p = fact.platform
    if fact.kind == "settlement":
        return (
            f"the order's own sale to its buyer was recorded on platform {p} {en_when} {leaf}",
            f"{zh_when}，本订单向买家的成交已在平台 {p} 记录{zh_leaf}",
        )
    if fact.kind == "refund_redeemed":
        return (
            f"the order's refund recorded the code as redeemed by its buyer on platform {p} "
            f"{en_when} {leaf}",
            f"{zh_when}，本订单退款时记录该卡密已被买家在平台 {p} 核销{zh_leaf}",
        )
    if fact.kind == "sale":
        if fact.when == "before":
            return (
                f"the code delivered was sold on platform {p} {en_when} {leaf}",
                f"{zh_when}，所交付的卡密曾在平台 {p} 售出{zh_leaf}",
            )
        return (
            f"the code was sold on platform {p} {en_when} {leaf}",
            f"{zh_when}，该卡密在平台 {p} 被售出{zh_leaf}",
        )
    if fact.kind == "redemption":
        return (
            f"the code was redeemed (a final sale consumed it) on platform {p} {en_when} {leaf}",
            f"{zh_when}，该卡密已在平台 {p} 被核销（最终售出，已消耗）{zh_leaf}",
        )
    if fact.kind == "delivery":
        return (
            f"the code was also delivered for order {fact.order_id} on platform {p} "
            f"{en_when} {leaf}",
            f"{zh_when}，该卡密还曾在平台 {p} 为订单 {fact.order_id} 交付{zh_leaf}",
        )
    if fact.kind == "revocation":
        return (
            f"the good was revoked by its creator {en_when} {leaf}",
            f"{zh_when}，该商品已被创作者吊销{zh_leaf}",
        )
    return (
        f"another creator claimed the same good {en_when} {leaf}",
        f"{zh_when}，另一位创作者声明了同一商品{zh_leaf}",
    )


def summarize(
    *,
    order_id: int,
    state: str,
    payload: DeliveryPayload,
    delivery_leaf: int,
    tree_size: int,
    facts: Sequence[Fact],
) -> dict[str, Any]:
    """The summary document an order's evidence carries: the facts, whether the delivery is
    clean, and the same lines in English (``en``) and Chinese (``zh``)."""
    at = utc_text(payload.delivered_at)  # a uint64: any number the DELIVERY carries
    good = f"{payload.good_type.name.lower()} {fingerprint_hex(payload.fingerprint)}"
    seller_en = (
        "the creator first-hand"
        if payload.seller_platform is None
        else f"a seller on platform {payload.seller_platform}"
    )
    seller_zh = "创作者首发"
    if payload.seller_platform is not None:
        seller_zh = f"平台 {payload.seller_platform} 的卖家"
    price = f"{payload.price} {payload.currency} (minor units)"
    en = [
        f"order {order_id}: {good} was delivered on platform {payload.platform} at {at} "
        f"(leaf {delivery_leaf:,}) by {seller_en}, for {price}; the order is {state} "
        f"as of its last signed change",
    ]
    zh = [
        f"订单 {order_id}：商品 {good} 于 {at} 由平台 {payload.platform} 交付"
        f"（日志第 {delivery_leaf} 条），卖家为{seller_zh}，价格 {payload.price} "
        f"{payload.currency}（最小货币单位）；按最后一次签名的状态变更，订单{STATE_ZH[state]}",
    ]
    for fact in facts:
        line_en, line_zh = _sentence(fact)
        en.append(line_en)
        zh.append(line_zh)
    clean = not any(fact.notable for fact in facts)
    if clean:
        en.append(
            f"no sale, redemption, delivery or revocation of this good elsewhere in the log, "
            f"complete as of head {tree_size:,}: the delivery is clean"
        )
        zh.append(
            f"截至日志树头 {tree_size}（历史完整），该商品在其他平台没有任何售出、核销、"
            f"交付或吊销记录：本次交付是干净的"
        )
    else:
        n = sum(fact.notable for fact in facts)
        en.append(
            f"{n} of the facts above {'bears' if n == 1 else 'bear'} on the dispute (the "
            f"log's history of the good is complete as of head {tree_size:,}): the delivery "
            f"is not clean"
        )
        zh.append(f"以上有 {n} 条与争议相关（截至日志树头 {tree_size} 历史完整）：本次交付不干净")
    return {
        "clean": clean,
        "facts": [fact.document() for fact in facts],
        "en": en,
        "zh": zh,
    }


__all__ = ["SALE_STANDS", "STATE_ZH", "Fact", "FactKind", "duration", "facts_of", "summarize"]
