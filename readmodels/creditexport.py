"""Credit facts in an evidence export, and scores recomputed from an export alone.

The writer streams the registry's credit facts (``registry.creditfacts.read_facts``) into an
export's optional ``credit`` member; ``recompute`` folds an export's facts into every
platform's and seller's inputs and scores them with the formula the export names (an export
naming ``credit/v1`` carries v1's facts, every transfer a sale, and recomputes to its v1
number; one naming ``credit/v2`` to v2's), the number the API gives for the same ``as_of``
(a test exports a generated market and compares every subject).
What the facts are is the registry's word: a refused transfer or a refund is not a logged
entry, so the export cannot prove it; it lets anyone check the arithmetic and the rule.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, TextIO

from registry.credit import FORMULA
from registry.creditfacts import Fact, credit_document, fold, read_facts

if TYPE_CHECKING:
    from registry.service import Registry
    from verifier.exportformat import Export


def write_credit_facts(registry: Registry, out: TextIO, *, as_of: int) -> int:
    """Append ``, "credit": {...}`` to an export being written; the number of facts."""
    from registry.db import read_transaction
    from verifier.exportformat import MAX_CREDIT_FACTS

    overdue_after = registry.payout_overdue_seconds
    head = {"formula": FORMULA, "as_of": as_of, "overdue_after": overdue_after}
    out.write(', "credit": ' + json.dumps(head)[:-1] + ', "facts": [')
    count = 0
    with read_transaction(registry.engine) as conn:
        for fact in read_facts(conn, as_of=as_of, overdue_after=overdue_after):
            if count >= MAX_CREDIT_FACTS:
                from registry.errors import InvalidInput

                raise InvalidInput("the registry's credit facts do not fit one export")
            seller = None if fact.seller_ref is None else "0x" + fact.seller_ref.hex()
            row = {
                "kind": fact.kind,
                "platform": fact.platform,
                "seller_platform": fact.seller_platform,
                "seller": seller,
                "at": fact.at,
            }
            out.write(("," if count else "") + json.dumps(row))
            count += 1
    out.write("]}")
    return count


def recompute(export: Export) -> list[dict[str, Any]]:
    """Every platform's and seller's score from the export's credit facts, platforms first,
    in a stable order; the documents are the API's (``CreditOut``)."""
    from registry.errors import InvalidInput

    credit = export.credit
    if credit is None:
        raise InvalidInput("this export carries no credit facts: export it with --credit")
    facts = (
        Fact(
            f.kind,
            f.platform,
            f.seller_platform,
            None if f.seller is None else bytes.fromhex(f.seller[2:]),
            f.at,
        )
        for f in credit.facts
    )
    inputs = fold(facts, as_of=credit.as_of)
    order = sorted(inputs, key=lambda s: (s[0] != "platform", s[1], s[2] or b""))
    return [
        credit_document(
            subject,
            inputs[subject],
            as_of=credit.as_of,
            overdue_after=credit.overdue_after,
            formula=credit.formula,
        )
        for subject in order
    ]


__all__ = ["recompute", "write_credit_facts"]
