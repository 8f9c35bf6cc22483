"""No personal data through any route (issue 18 item 4): every request's text is checked
before any route runs, and personal data is refused (422 ``personal-data-refused``).

One app-wide dependency (``create_app`` installs it before every route's own) walks the
JSON body (keys and string values, however deep), the query parameters and the path
parameters, and applies each field's policy:

- ``REFERENCE_FIELDS``: an account's opaque id that the registry keeps only as a keyed hash
  (``registry.parties``): a phone-shaped id is accepted (it is hashed, never stored), an ID
  number or Chinese characters (a name) are refused;
- ``EXEMPT_FIELDS``: never stored as sent and not personal by nature: a code (only its
  keyed fingerprint is kept; a card PIN may look like a phone number), a code key (kept
  encrypted), amounts (validated as decimal minor units), opaque cursors;
- every other text (product slugs, metadata, reasons, payout references, URLs, names of
  domains, the ``Idempotency-Key`` header, ...): a phone number or an ID number is refused.

Bodies that are not JSON (bulk uploads of fingerprints, files to fingerprint) are not read
here: the routes stream them, and they hold hashes and bytes, not text fields.
``POST /v1/verify`` is answered in front of the app (``api.verify_front``) without app
dependencies; it stores no text it is sent (a code is fingerprinted, a product looked up).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Final

from fastapi import Request

from registry.personaldata import (
    MAX_SCANNED,
    PersonalDataRefused,
    might_hold_personal_data,
    refuse_personal_data,
)

#: (route path, field path) of references: hashed, so only ID numbers and names are refused.
#: A field path names JSON members by dots and list items by ``[]``.
REFERENCE_FIELDS: Final = frozenset(
    {
        ("/v1/transfers", "seller.reference"),
        ("/v1/transfers", "buyer.reference"),
        ("/v1/transfers/authorizations", "reference"),
        ("/v1/orders", "buyer_reference"),
        ("/v1/orders", "seller.reference"),
        ("/v1/rebates/agents", "agents[].agent"),
        ("/v1/rebates/agents", "agents[].upline"),
        ("/v1/rebates/agents/lookup", "agent"),
        ("/v1/attestations", "reference"),
        ("/v1/attestations/statement", "reference"),
    }
)

#: (route path, field) of free JSON whose numbers are read as text too: a phone number written
#: as a JSON number there is as personal (typed numbers elsewhere are ids, times, amounts).
FREE_FIELDS: Final = frozenset(
    {("/v1/registrations", "metadata"), ("/v1/registrations/batches", "metadata")}
)

#: Field names (the last member of a path, or a query parameter) never checked; see above.
EXEMPT_FIELDS: Final = frozenset({"code", "code_key", "price", "amount", "cursor"})

#: The request header checked as free text (see ``refuse_personal_data_in_request``).
IDEMPOTENCY_HEADER: Final = "Idempotency-Key"
#: The content types whose bodies are checked (others are streamed bytes, see above): every
#: one FastAPI parses as JSON (``application/json`` and any ``application/*+json``), or a
#: body sent as ``application/json-patch+json`` would reach the route unchecked.
_JSON_TYPES: Final = ("application/json",)
_JSON_SUFFIX: Final = "+json"
#: Deepest JSON nesting walked; deeper bodies are refused (the models accept far less).
MAX_DEPTH: Final = 32


def _walk(value: Any, path: str, depth: int = 0) -> Iterator[tuple[str, str | int | float]]:
    """(field path, value) of every key, string and number in a JSON document."""
    if depth > MAX_DEPTH:
        raise PersonalDataRefused("the body nests too deep to be checked for personal data")
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            yield child, str(key)
            yield from _walk(item, child, depth + 1)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item, f"{path}[]", depth + 1)


def _check(route: str, field: str, text: str) -> None:
    name = field.rsplit(".", 1)[-1].removesuffix("[]")
    if name in EXEMPT_FIELDS:
        return
    refuse_personal_data(text, field or "the body", reference=(route, field) in REFERENCE_FIELDS)


async def refuse_personal_data_in_request(request: Request) -> None:
    """The app-wide dependency: ``PersonalDataRefused`` for personal data in the request's
    path parameters, query parameters or JSON body (see the module's policy)."""
    route = getattr(request.scope.get("route"), "path", request.url.path)
    for name, value in request.path_params.items():
        if isinstance(value, str):
            _check(route, name, value)
    for name, value in request.query_params.multi_items():
        _check(route, name, value)
    # The one header the registry stores as sent (replays, transfers' UNIQUE column): a key
    # named after a buyer's phone number would be kept in clear.
    idempotency_key = request.headers.get(IDEMPOTENCY_HEADER)
    if idempotency_key is not None:
        _check(route, IDEMPOTENCY_HEADER, idempotency_key)
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    maintype, _, subtype = content_type.partition("/")
    if content_type not in _JSON_TYPES and not (
        maintype == "application" and subtype.endswith(_JSON_SUFFIX)
    ):
        return
    body = await request.body()  # capped by ``api.limits.BodyLimit``; cached for the route
    if not body:
        return
    if len(body) > MAX_SCANNED:
        raise PersonalDataRefused("the body is too large to be checked for personal data")
    if not might_hold_personal_data(body):
        return  # the usual request: nothing in it could be (see the function)
    try:
        document = json.loads(body)
    except ValueError:
        return  # the route's own parse answers it (a validation error), storing nothing
    refuse_personal_data_in_document(route, document)


def refuse_personal_data_in_document(route: str, document: Any) -> None:
    """``PersonalDataRefused`` for personal data in a JSON ``document`` sent to ``route``,
    by the module's policy. NOTE: also called by the bulk routes for their signed request
    (an NDJSON first line or a header, which the app-wide dependency does not read)."""
    for field, value in _walk(document, ""):
        if isinstance(value, str):
            _check(route, field, value)
        elif _free(route, field):
            _check(route, field, str(value))


def _free(route: str, field: str) -> bool:
    """Whether ``field`` lies in one of ``route``'s free JSON fields (``FREE_FIELDS``)."""
    return any(
        route == free_route and (field == free or field.startswith((free + ".", free + "[]")))
        for free_route, free in FREE_FIELDS
    )


__all__ = [
    "EXEMPT_FIELDS",
    "FREE_FIELDS",
    "MAX_DEPTH",
    "REFERENCE_FIELDS",
    "refuse_personal_data_in_document",
    "refuse_personal_data_in_request",
]
