"""The events a webhook carries and their bodies: the Standard Webhooks envelope around our data.

Every body is ``{"type": ..., "timestamp": <RFC 3339 UTC of the event>, "data": {...}}``,
serialised once when the event is queued and sent byte for byte on every retry (the
signature covers those bytes). ``data`` by type:

- ``anchor.final``: the anchored head (``tree_size``, ``root``, ``previous_size``) and where
  to check it on chain (``chain_id``, ``contract``, ``tx_hash``, ``block_number``,
  ``block_hash``); public facts, sent to every platform that subscribes.
- ``transfer.recorded``: the transfer's receipt exactly as ``GET /v1/transfers/{id}``
  answers it; only to the platform that reported the transfer (THREATS 36).
- ``signal.raised``: ``signal_id``, ``code``, ``detail``, the good (``good_type``,
  ``fingerprint``) when there is one, and ``evidence``; only to the platform it concerns.
- ``order.changed`` (issue 17): one per recorded state change of an order (its opening
  too): ``order_id``, ``sequence``, ``event``, ``from_state``, ``to_state``, ``actor``,
  ``at``, ``change_hash`` (what the registry signed) and the good; queued in the change's own
  transaction, only to the order's platform. No buyer reference, salt or code.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Final, Literal, get_args

ANCHOR_FINAL: Final = "anchor.final"
TRANSFER_RECORDED: Final = "transfer.recorded"
SIGNAL_RAISED: Final = "signal.raised"
ORDER_CHANGED: Final = "order.changed"
EventType = Literal["anchor.final", "transfer.recorded", "signal.raised", "order.changed"]
EVENT_TYPES: Final = frozenset(get_args(EventType))


def rfc3339(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def envelope(event_type: str, at: int, data: dict[str, Any]) -> str:
    """The body, as the exact text that is signed and sent."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {event_type!r}")
    document = {"type": event_type, "timestamp": rfc3339(at), "data": data}
    return json.dumps(document, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def _hex(value: bytes | None) -> str | None:
    return None if value is None else "0x" + bytes(value).hex()


def anchor_data(anchor: dict[str, Any], *, chain_id: int, contract: str) -> dict[str, Any]:
    """``data`` of ``anchor.final`` from an ``anchors`` row."""
    return {
        "anchor_id": int(anchor["id"]),
        "tree_size": int(anchor["tree_size"]),
        "root": _hex(anchor["root"]),
        "previous_size": int(anchor["previous_size"]),
        "chain_id": chain_id,
        "contract": contract,
        "tx_hash": _hex(anchor["tx_hash"]),
        "block_number": anchor["block_number"],
        "block_hash": _hex(anchor["block_hash"]),
        "final_at": rfc3339(int(anchor["updated_at"])),
    }


def signal_data(
    *,
    signal_id: str,
    code: str,
    detail: str,
    good_type: str | None,
    fingerprint: bytes | None,
    evidence: dict[str, Any],
) -> dict[str, Any]:
    """``data`` of ``signal.raised``."""
    good = None
    if fingerprint is not None:
        good = {"good_type": good_type, "fingerprint": _hex(fingerprint)}
    return {
        "signal_id": signal_id,
        "code": code,
        "detail": detail,
        "good": good,
        "evidence": evidence,
    }


def order_data(
    *,
    order_id: int,
    sequence: int,
    event: str,
    from_state: str | None,
    to_state: str,
    actor: str,
    at: int,
    change_hash: bytes,
    good_type: str,
    fingerprint: bytes,
) -> dict[str, Any]:
    """``data`` of ``order.changed``."""
    return {
        "order_id": order_id,
        "sequence": sequence,
        "event": event,
        "from_state": from_state,
        "to_state": to_state,
        "actor": actor,
        "at": rfc3339(at),
        "change_hash": _hex(change_hash),
        "good": {"good_type": good_type, "fingerprint": _hex(fingerprint)},
    }


__all__ = [
    "ANCHOR_FINAL",
    "EVENT_TYPES",
    "ORDER_CHANGED",
    "SIGNAL_RAISED",
    "TRANSFER_RECORDED",
    "EventType",
    "anchor_data",
    "envelope",
    "order_data",
    "rfc3339",
    "signal_data",
]
