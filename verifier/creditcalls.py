"""The client's calls for credit scores (issue 18 item 1): a platform's, a seller's."""

from __future__ import annotations

import re

from registry.errors import InvalidInput
from registry.parties import check_platform_id
from verifier.schemas.credit import CreditOut, PlatformCreditsOut
from verifier.transport import RegistryTransport

_SELLER = re.compile(r"0x[0-9a-f]{64}")


class CreditCalls(RegistryTransport):
    """Credit scores; recompute one from its ``inputs`` with ``registry.credit.credit_score``."""

    def platform_credits(self) -> PlatformCreditsOut:
        """Every platform's score as the registry last refreshed it (each with its inputs)."""
        return self._model(PlatformCreditsOut, self._send("GET", "/v1/credit/platforms"))

    def platform_credit(self, platform: str) -> CreditOut:
        """A platform's score, inputs and formula version (any caller)."""
        answer = self._send("GET", f"/v1/credit/platforms/{check_platform_id(platform)}")
        return self._model(CreditOut, answer)

    def seller_credit(self, platform: str, seller: str) -> CreditOut:
        """A seller's score on ``platform``, by its keyed reference hash (``0x`` + 64 hex, as
        evidence exports carry it)."""
        if _SELLER.fullmatch(seller) is None:
            raise InvalidInput("a seller is its keyed reference hash: 0x and 64 hex digits")
        path = f"/v1/credit/platforms/{check_platform_id(platform)}/sellers/{seller}"
        return self._model(CreditOut, self._send("GET", path))


__all__ = ["CreditCalls"]
