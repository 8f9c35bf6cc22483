"""The authenticity lookup's answer to a verify request: the ``VerifyOut`` document, as a dict.

NOTE: a plain dict encoded by orjson, not a pydantic model: ``POST /v1/verify`` is the hot
path, and the model's validation and encoding cost more than the lookup (the route's
``response_model`` still documents the shape).
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Response

from api.context import ApiContext
from api.principal import Principal
from readmodels import authenticity
from readmodels.market import ANONYMOUS as ANONYMOUS_PLATFORM
from registry.creditscores import REFRESH_EVERY as CREDIT_REFRESH_EVERY
from registry.fingerprints import USE_NAMES, GoodType, fingerprint_hex
from registry.telemetry import VerificationRecord

#: The fields of a verify answer that describe a registered good (null for an unknown one).
EMPTY_FACTS: dict[str, Any] = dict.fromkeys(
    (
        "creator",
        "product",
        "use",
        "leaf_index",
        "holder",
        "anchor",
        "verifications",
        "creator_identity",
        "credit",
    )
)


def authenticity_answer(
    ctx: ApiContext,
    good_type: GoodType,
    fingerprint: bytes,
    *,
    claimed_creator: str | None,
    claimed_product: str | None,
) -> tuple[dict[str, Any], str]:
    """The full answer as a dict matching ``VerifyOut``, and its verdict."""
    return authenticity_answer_of(
        ctx,
        good_type,
        fingerprint,
        ctx.lookup.facts(good_type, fingerprint),
        claimed_creator=claimed_creator,
        claimed_product=claimed_product,
    )


def authenticity_answer_of(
    ctx: ApiContext,
    good_type: GoodType,
    fingerprint: bytes,
    facts: authenticity.GoodFacts | None,
    *,
    claimed_creator: str | None,
    claimed_product: str | None,
) -> tuple[dict[str, Any], str]:
    """``authenticity_answer`` of facts read already."""
    decision = authenticity.decide(
        facts, claimed_creator=claimed_creator, claimed_product=claimed_product
    )
    block, seen_at = ctx.chain_watch.view()
    answer: dict[str, Any] = {
        "verdict": decision.verdict,
        "good_type": good_type.name.lower(),
        "fingerprint": fingerprint_hex(fingerprint),
        "chain_block": block,
        "chain_seen_at": seen_at,
        "risk": {
            "score": decision.score,
            "signals": [signal_answer(s) for s in decision.all_signals],
        },
        "coarse": False,
        **EMPTY_FACTS,
    }
    if facts is not None:
        anchor = None
        if facts.anchor is not None:
            a = facts.anchor
            anchor = {
                "chain_id": ctx.registry.domain.chain_id,
                "contract": ctx.registry.domain.verifying_contract,
                "tx_hash": "0x" + a.tx_hash.hex(),
                "block_number": a.block_number,
                "tree_size": a.tree_size,
                "state": "final" if a.final else "unconfirmed",
                "confirmations": None if block is None else max(0, block - a.block_number + 1),
            }
        answer.update(
            creator=facts.creator,
            product=facts.product,
            use=USE_NAMES[int(facts.use)],
            leaf_index=facts.leaf_index,
            holder={
                "platform": facts.holder_platform,
                "since_transfer": facts.last_transfer_id,
                "reserved": facts.reserved_at(ctx.registry.clock()),
            },
            anchor=anchor,
            verifications={
                "times": facts.times_verified,
                "platforms": facts.platforms_verified,
                "first_at": facts.first_verified_at,
            },
            creator_identity=(
                None if ctx.identities is None else ctx.identities.answer(facts.creator)
            ),
            credit=holder_credit(facts),
        )
    return answer, decision.verdict


def signal_answer(signal: authenticity.VerdictSignal) -> dict[str, Any]:
    """A signal as ``SignalOut``: ``detail`` stays the English sentence (clients read it);
    ``message`` names a verdict signal's catalogue template and parameters, and ``parts`` a
    market signal's (its rule's clauses, joined by the page), so a page says it in its
    reader's language."""
    key = signal.message_key
    message = None if key is None else {"key": key, "params": dict(signal.params or {})}
    answer: dict[str, Any] = {"code": signal.code, "detail": signal.detail, "message": message}
    if signal.parts:  # additive: absent where there are none, as before
        answer["parts"] = [{"key": p["key"], "params": dict(p["params"])} for p in signal.parts]
    return answer


def holder_credit(facts: authenticity.GoodFacts) -> dict[str, Any] | None:
    """The current holder's credit (``HolderCreditOut``) from the documents the risk worker
    keeps (``registry.creditscores``): two JSON texts read with the facts, no aggregate."""
    platform = facts.holder_platform
    if platform is None or (facts.platform_credit is None and facts.seller_credit is None):
        return None
    seller = None if facts.seller_credit is None else orjson.loads(facts.seller_credit)
    url = f"/v1/credit/platforms/{platform}"
    return {
        "platform": None if facts.platform_credit is None else orjson.loads(facts.platform_credit),
        "seller": seller,
        "platform_url": url,
        "seller_url": None if seller is None else f"{url}/sellers/{seller['seller']}",
        "refreshed_every": CREDIT_REFRESH_EVERY,
    }


def answer_response(answer: dict[str, Any]) -> Response:
    """A verify answer as JSON: the same compact UTF-8 document ``JSONResponse`` makes,
    encoded by orjson (the hot path's largest single cost with the standard library's)."""
    return Response(orjson.dumps(answer), media_type="application/json")


def coarse(answer: dict[str, Any]) -> dict[str, Any]:
    """What an anonymous code lookup learns: authentic or not, nothing to mine."""
    verdict = answer["verdict"] if answer["verdict"] == authenticity.AUTHENTIC else "not_authentic"
    return {"verdict": verdict, "good_type": answer["good_type"], "coarse": True}


def unknown_code(coarse_answer: bool) -> dict[str, Any]:
    decision = authenticity.decide(None)
    answer = {
        "verdict": authenticity.UNKNOWN,
        "good_type": "code",
        "fingerprint": None,
        "chain_block": None,
        "chain_seen_at": None,
        **EMPTY_FACTS,
        "risk": {
            "score": decision.score,
            "signals": [signal_answer(s) for s in decision.signals],
        },
        "coarse": False,
    }
    return coarse(answer) if coarse_answer else answer


def record_telemetry(
    ctx: ApiContext,
    principal: Principal,
    good_type: GoodType,
    fingerprint: bytes,
    via: str,
    verdict: str,
) -> None:
    """Hand the verification to the telemetry buffer (written behind the request: counts, not
    acknowledged writes)."""
    ctx.telemetry.add(
        VerificationRecord(
            at=ctx.registry.clock(),
            platform=principal.platform or ANONYMOUS_PLATFORM,
            good_type=int(good_type),
            fingerprint=fingerprint,
            via=via,
            verdict=verdict,
        )
    )


__all__ = [
    "ANONYMOUS_PLATFORM",
    "EMPTY_FACTS",
    "USE_NAMES",
    "answer_response",
    "authenticity_answer",
    "authenticity_answer_of",
    "coarse",
    "holder_credit",
    "record_telemetry",
    "signal_answer",
    "unknown_code",
]
