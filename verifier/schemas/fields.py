"""The wire schemas' own field types (text kept as sent): hex, slugs, names, amounts, pages.

The edge types shared with the formats (``Hex32``, ``AddressText``, ``GoodTypeName``) are
``registry.edges``.
"""

from __future__ import annotations

from typing import Annotated, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, StringConstraints

Verdict = Literal[
    "authentic", "unknown", "revoked", "pending_anchor", "conflict", "consumed", "not_authentic"
]
HexBytes = Annotated[str, StringConstraints(pattern=r"^0x([0-9a-fA-F]{2}){0,1024}$")]
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]
#: A platform id (``registry.parties.PLATFORM_ID_PATTERN``, the grammar of API keys' platforms):
#: no NUL, control, bidi or other format character reaches the signed log.
PlatformId = Annotated[
    str, StringConstraints(pattern=r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$", max_length=64)
]
Reference = Annotated[str, StringConstraints(min_length=1, max_length=256)]
Amount = Annotated[str, StringConstraints(pattern=r"^(0|[1-9][0-9]{0,77})$")]
#: An upper-case currency code of 1 to 16 characters with at least one letter (EUR, USDC):
#: what ``registry.transfers`` accepts; a code of digits only is not a currency.
Currency = Annotated[str, StringConstraints(pattern=r"^[0-9]*[A-Z][A-Z0-9]*$", max_length=16)]

#: Most items one page of any list holds (THREATS 40); the default is smaller.
MAX_PAGE = 200
DEFAULT_PAGE = 50


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


T = TypeVar("T")


class Page(Strict, Generic[T]):
    items: list[T]
    #: Pass as ``cursor`` for the next page; null on the last page.
    next_cursor: str | None
