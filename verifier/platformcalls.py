"""The platform's calls of the client: verify goods, report transfers, read receipts."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any, Final

from registry.eip712 import parse_address
from registry.errors import (
    InvalidInput,
)
from registry.fingerprints import GoodType
from verifier.pow import MAX_POW_BITS, POW_HEADER, body_binding, solve
from verifier.problems import (
    ApiProblem,
    UnexpectedAnswer,
)
from verifier.schemas import (
    DEFAULT_PAGE,
    MAX_PAGE,
    GoodTypeName,
    HandoverIn,
    HandoverOut,
    Page,
    PartyIn,
    ReceiptOut,
    TransferIn,
    VerifyIn,
    VerifyOut,
)
from verifier.transport import (
    RegistryTransport,
    fingerprint_text,
    good_type_name,
    request_model,
)

UPLOAD_CHUNK: Final = 1024 * 1024
"""Bytes read from a file per chunk of a streamed upload."""


class PlatformCalls(RegistryTransport):
    """What a platform does with its API key: verify goods, report transfers, read receipts."""

    def verify(
        self,
        good_type: GoodType | GoodTypeName,
        *,
        fingerprint: bytes | str | None = None,
        code: str | None = None,
        creator: str | None = None,
        product: str | None = None,
    ) -> VerifyOut:
        """Is this good authentic? Name it by fingerprint, or by code and the creator (and
        product) it claims to come from: the registry fingerprints the code under that
        creator's enrolled key."""
        if (fingerprint is None) == (code is None):
            raise InvalidInput("give exactly one of fingerprint or code")
        request = VerifyIn(
            good_type=good_type_name(good_type),
            fingerprint=None if fingerprint is None else fingerprint_text(fingerprint),
            code=code,
            creator=creator,
            product=product,
        )
        document = request.model_dump(exclude_none=True)
        try:
            answer = self._send("POST", "/v1/verify", document=document)
        except ApiProblem as problem:
            if problem.status != 428 or code is None:
                raise
            # A public code lookup (no key, or a creator asking about others' codes) pays a
            # proof of work bound to this very body (``verifier.pow``); a key never does.
            answer = self._send(
                "POST",
                "/v1/verify",
                document=document,
                headers={POW_HEADER: self._proof_of_work(request)},
            )
        return self._model(VerifyOut, answer)

    def _proof_of_work(self, request: VerifyIn) -> str:
        """Fetch a challenge and solve it for ``request`` (about 0.1-0.3 s of one core at the
        default difficulty)."""
        issued = json.loads(self._send("POST", "/v1/verify/challenge").body)
        if not isinstance(issued, dict) or not isinstance(issued.get("challenge"), str):
            raise UnexpectedAnswer("the registry's challenge is not {challenge, difficulty}")
        difficulty = issued.get("difficulty")
        if not isinstance(difficulty, int) or not 0 <= difficulty <= MAX_POW_BITS:
            raise UnexpectedAnswer("the registry asks an unreasonable proof of work")
        assert request.code is not None
        binding = body_binding(request.good_type, request.creator, request.product, request.code)
        return solve(issued["challenge"], difficulty, binding)

    def verify_file(
        self, path_or_stream: str | Path | IO[bytes], creator: str | None = None
    ) -> VerifyOut:
        """Upload a file, streamed in ``UPLOAD_CHUNK`` chunks; the registry hashes it and keeps
        nothing. (Hashing locally and calling ``verify`` sends less.)"""
        params = {} if creator is None else {"creator": parse_address(creator)}
        if isinstance(path_or_stream, str | Path):
            path = Path(path_or_stream)
            if not path.is_file():
                raise InvalidInput(f"{path} is not a readable file")

            def from_path() -> Iterator[bytes]:
                with path.open("rb") as source:
                    while chunk := source.read(UPLOAD_CHUNK):
                        yield chunk

            body, replayable = from_path, True
        else:
            stream = path_or_stream

            def from_stream() -> Iterator[bytes]:
                while chunk := stream.read(UPLOAD_CHUNK):
                    yield chunk

            body, replayable = from_stream, False
        answer = self._send(
            "POST",
            "/v1/verify/file",
            params=params,
            body=body,
            replayable=replayable,
            content_type="application/octet-stream",
        )
        return self._model(VerifyOut, answer)

    def transfer(
        self,
        request: TransferIn | None = None,
        *,
        good_type: GoodType | GoodTypeName | None = None,
        fingerprint: bytes | str | None = None,
        seller: PartyIn | Mapping[str, Any] | None = None,
        buyer: PartyIn | Mapping[str, Any] | None = None,
        price: int | str | None = None,
        currency: str | None = None,
        final: bool = False,
        idempotency_key: str | None = None,
        authorization: str | None = None,
    ) -> ReceiptOut:
        """Report a hand-over or sale (a ``TransferIn``, or its fields); the answer is the
        registry's signed receipt with the royalty split (check it with ``verify_receipt``).
        Send an ``idempotency_key`` to make a retry return the same receipt. A seller on
        another platform than yours needs that platform's consent: the ``authorization`` it
        issued you (``authorize_handover``); the seller may then be ``{"platform": P}``."""
        if request is None:
            if good_type is None or fingerprint is None or seller is None or buyer is None:
                raise InvalidInput("a transfer names good_type, fingerprint, seller and buyer")
            fields = {
                "good_type": good_type_name(good_type),
                "fingerprint": fingerprint_text(fingerprint),
                "seller": seller,
                "buyer": buyer,
                "price": None if price is None else str(price),
                "currency": currency,
                "final": final,
                "authorization": authorization,
            }
            request = request_model(TransferIn, fields, "the transfer's fields are invalid")
        return self._post(
            "/v1/transfers",
            request.model_dump(mode="json"),
            ReceiptOut,
            idempotency_key=idempotency_key,
        )

    def authorize_handover(
        self,
        *,
        good_type: GoodType | GoodTypeName,
        fingerprint: bytes | str,
        reference: str,
        buyer_platform: str,
        expires_in: int = 600,
    ) -> HandoverOut:
        """Consent, once, that ``buyer_platform`` may move a good your platform holds under
        ``reference``: hand the answer's ``authorization`` (a secret, shown once) to that
        platform, which passes it to ``transfer``. It expires after ``expires_in`` seconds."""
        fields = {
            "good_type": good_type_name(good_type),
            "fingerprint": fingerprint_text(fingerprint),
            "reference": reference,
            "buyer_platform": buyer_platform,
            "expires_in": expires_in,
        }
        request = request_model(HandoverIn, fields, "the authorization's fields are invalid")
        return self._post(
            "/v1/transfers/authorizations", request.model_dump(mode="json"), HandoverOut
        )

    def receipt(self, transfer_id: int) -> ReceiptOut:
        """One of your platform's transfers, as its receipt."""
        answer = self._send("GET", f"/v1/transfers/{int(transfer_id)}")
        return self._model(ReceiptOut, answer)

    def transfers(
        self,
        cursor: str | None = None,
        limit: int = DEFAULT_PAGE,
        *,
        good_type: GoodType | GoodTypeName | None = None,
        fingerprint: bytes | str | None = None,
    ) -> Page[ReceiptOut]:
        """One page of your platform's transfers, oldest first (``next_cursor`` continues)."""
        params: dict[str, str | int] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        if good_type is not None:
            params["good_type"] = good_type_name(good_type)
        if fingerprint is not None:
            params["fingerprint"] = fingerprint_text(fingerprint)
        return self._model(Page[ReceiptOut], self._send("GET", "/v1/transfers", params=params))

    def iter_transfers(
        self,
        *,
        good_type: GoodType | GoodTypeName | None = None,
        fingerprint: bytes | str | None = None,
        page_size: int = MAX_PAGE,
    ) -> Iterator[ReceiptOut]:
        """Every transfer of your platform, oldest first, a page at a time."""
        cursor: str | None = None
        while True:
            page = self.transfers(cursor, page_size, good_type=good_type, fingerprint=fingerprint)
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor
