"""Test helpers: signed requests with sensible defaults, and row counts."""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import Engine, text

from registry.creator import CreatorKeys, sign_registration
from registry.eip712 import DEV_DOMAIN, Domain
from registry.fingerprints import GoodType, Use
from registry.requests import RegistrationRequest
from registry.royalty import RoyaltyPolicy

NO_ROYALTY = RoyaltyPolicy.parse({"recipients": []})


def registration(
    creator: CreatorKeys,
    now: int,
    *,
    fingerprint: bytes | None = None,
    good_type: GoodType = GoodType.FILE,
    product: str = "",
    use: Use = Use.TRANSFERABLE,
    domain: Domain = DEV_DOMAIN,
    policy: RoyaltyPolicy = NO_ROYALTY,
    metadata: dict[str, Any] | None = None,
    new_product: bool = True,
) -> RegistrationRequest:
    return sign_registration(
        creator,
        domain,
        good_type=good_type,
        fingerprint=fingerprint if fingerprint is not None else os.urandom(32),
        product=product,
        use=use,
        royalty_policy=policy,
        metadata=metadata or {},
        now=now,
        new_product=new_product,
    )


def counts(engine: Engine) -> dict[str, int]:
    """Row counts of every table a write could touch: 'changes nothing' means these are equal."""
    tables = [
        "entries",
        "signed_records",
        "products",
        "code_keys",
        "tree_tiles",
        "batch_tiles",
        "tree_heads",
    ]
    with engine.connect() as conn:
        found = {
            t: int(conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()) for t in tables
        }
        found["tree_size"] = int(
            conn.execute(text("SELECT tree_size FROM log_state WHERE id = 1")).scalar_one()
        )
    return found
