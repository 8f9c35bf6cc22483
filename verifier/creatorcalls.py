"""The creator's calls of the client: signed writes, bulk jobs, sign-in and own reads."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Final, Literal, overload
from urllib.parse import quote

from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from pydantic import BaseModel

from registry.distribution_policy import parse_platforms
from registry.errors import (
    InvalidInput,
)
from registry.requests import RegistrationRequest, RevocationRequest
from registry.signed import SignedMessage
from verifier.clienterrors import JobFailed, JobStillRunning, SignInRefused
from verifier.problems import (
    UnexpectedAnswer,
)
from verifier.requestdocs import (
    enrollment_document,
    ndjson_batch,
    registration_document,
    revocation_document,
)
from verifier.schemas import (
    DEFAULT_PAGE,
    MAX_PAGE,
    BatchRegistrationIn,
    BatchRevocationIn,
    CodeKeyIn,
    CodeKeyOut,
    CodeKeyRetireIn,
    CodeKeyRetireOut,
    CodeKeysOut,
    DistributionIn,
    DistributionOut,
    EntryOut,
    FaceValueHistoryOut,
    FaceValueIn,
    FaceValueOut,
    GoodOut,
    IdentityIn,
    IdentityOut,
    JobOut,
    Page,
    RegistrationIn,
    RevocationIn,
    SiweIn,
    SiweNonceOut,
    StatementOut,
    TokenOut,
)
from verifier.signin import SIGN_IN_STATEMENT, siwe_message
from verifier.transport import RegistryTransport, request_model

MAX_CSV_BYTES: Final = 256 * 1024 * 1024
"""Largest royalty statement read as CSV (one line per good, platform and period)."""

MAX_POLL_INTERVAL: Final = 2.0
"""Longest pause between two looks at a bulk job (seconds); polls start faster."""

_JOB_ID = re.compile(r"job_[A-Za-z0-9_-]{1,60}\Z")

Period = Literal["day", "month", "all"]


class CreatorCalls(RegistryTransport):
    """What a creator does: signed writes (no credential), bulk jobs, and its own data signed in."""

    def enroll_code_key(
        self, signed: SignedMessage, code_key: bytes, *, idempotency_key: str | None = None
    ) -> CodeKeyOut:
        """Enrol the creator's code key (a signed ``CodeKeyEnrollment``), sent this once."""
        document = self._document(CodeKeyIn, enrollment_document(signed, code_key))
        return self._post(
            "/v1/creators/code-key", document, CodeKeyOut, idempotency_key=idempotency_key
        )

    def retire_code_key(
        self, signed: SignedMessage, *, idempotency_key: str | None = None
    ) -> CodeKeyRetireOut:
        """Retire one of the creator's code keys (a signed ``CodeKeyRetirement``)."""
        document = self._document(CodeKeyRetireIn, {"signed": signed.document()})
        return self._post(
            "/v1/creators/code-key/retire",
            document,
            CodeKeyRetireOut,
            idempotency_key=idempotency_key,
        )

    def register(
        self, request: RegistrationRequest, *, idempotency_key: str | None = None
    ) -> EntryOut:
        """Register one good (a signed ``Registration``); queued until the sequencer logs it."""
        document = self._document(RegistrationIn, registration_document(request))
        return self._post("/v1/registrations", document, EntryOut, idempotency_key=idempotency_key)

    def revoke(self, request: RevocationRequest, *, idempotency_key: str | None = None) -> EntryOut:
        """Revoke one of your goods (a signed ``Revocation``)."""
        document = self._document(RevocationIn, revocation_document(request))
        return self._post("/v1/revocations", document, EntryOut, idempotency_key=idempotency_key)

    def register_batch(self, request: RegistrationRequest, fingerprints: Iterable[bytes]) -> JobOut:
        """Upload a signed ``BatchRegistration`` and its fingerprints (in the signed order) as
        streamed NDJSON; the answer is the job ingesting it (``wait_job``)."""
        document = self._document(BatchRegistrationIn, registration_document(request))
        return self._bulk("/v1/registrations/batches", document, fingerprints)

    def revoke_batch(self, request: RevocationRequest, fingerprints: Iterable[bytes]) -> JobOut:
        """Upload a signed ``BatchRevocation`` and its fingerprints as streamed NDJSON."""
        document = self._document(BatchRevocationIn, revocation_document(request))
        return self._bulk("/v1/revocations/batches", document, fingerprints)

    @staticmethod
    def _document(model: type[BaseModel], document: dict[str, Any]) -> dict[str, Any]:
        """Validate a request document against its wire schema before it is sent; the
        document itself is what is sent, as built."""
        request_model(model, document, "the request does not fit the API's schema")
        return document

    def _bulk(self, path: str, document: dict[str, Any], fingerprints: Iterable[bytes]) -> JobOut:
        answer = self._send(
            "POST",
            path,
            body=lambda: ndjson_batch(document, fingerprints),
            replayable=False,
            content_type="application/x-ndjson",
        )
        return self._model(JobOut, answer)

    def job(self, job_id: str) -> JobOut:
        """A bulk job's state and progress (``processed`` fingerprints so far)."""
        if not _JOB_ID.match(job_id):
            raise InvalidInput("a job id is job_ and up to 60 URL-safe characters")
        return self._model(JobOut, self._send("GET", f"/v1/jobs/{quote(job_id)}"))

    def wait_job(
        self,
        job_id: str,
        timeout: float | None = None,
        *,
        progress: Callable[[int], None] | None = None,
        interval: float = 0.1,
    ) -> JobOut:
        """Poll a job until it is done (returned), failed (``JobFailed``: nothing of it was
        written) or ``timeout`` seconds passed (``JobStillRunning``); ``progress`` gets the
        job's ``processed`` count at every look. Polls start every ``interval`` s and slow down
        to ``MAX_POLL_INTERVAL``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = interval
        while True:
            job = self.job(job_id)
            if progress is not None:
                progress(job.processed)
            if job.state == "done":
                return job
            if job.state == "failed":
                raise JobFailed(job)
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise JobStillRunning(
                        f"bulk job {job_id} is still {job.state} after {timeout:g} s "
                        f"({job.processed:,} processed); poll it again later"
                    )
                pause = min(pause, left)
            time.sleep(pause)
            pause = min(pause * 1.5, MAX_POLL_INTERVAL)

    # -- creators: sign-in and reads ----------------------------------------------------------

    def sign_in(
        self,
        account: LocalAccount,
        *,
        statement: str | None = SIGN_IN_STATEMENT,
        domain: str | None = None,
    ) -> str:
        """Sign in with Ethereum (EIP-4361) as ``account``; the session token is kept for this
        client's next requests (replacing any credential) and returned.

        The message is signed only if it names ``domain`` (default: this client's
        ``host[:port]``), the EIP's guard against a site relaying another's sign-in.
        """
        offer = self._model(SiweNonceOut, self._send("POST", "/v1/auth/siwe/nonce"))
        expected = domain if domain is not None else self.authority
        if offer.domain != expected:
            raise SignInRefused(
                f"the registry at {self.base_url} asks to sign in for {offer.domain!r}, "
                f"not {expected!r}: not signing (name the domain if it is right)"
            )
        text = siwe_message(
            domain=offer.domain,
            address=str(account.address),
            uri=offer.uri,
            chain_id=offer.chain_id,
            nonce=offer.nonce,
            issued_at=self._clock(),
            statement=statement,
        )
        signature = bytes(account.sign_message(encode_defunct(text=text)).signature)
        request = SiweIn(message=text, signature="0x" + signature.hex())
        token = self._post("/v1/auth/siwe", request.model_dump(), TokenOut)
        if token.creator.lower() != str(account.address).lower():
            raise UnexpectedAnswer("the session the registry issued is for another address")
        self._credential, self._credential_kind = token.token, "session token"
        return token.token

    def my_goods(self, cursor: str | None = None, limit: int = DEFAULT_PAGE) -> Page[GoodOut]:
        """One page of the signed-in creator's goods, oldest first."""
        params: dict[str, str | int] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        return self._model(Page[GoodOut], self._send("GET", "/v1/creators/me/goods", params=params))

    def iter_my_goods(self, *, page_size: int = MAX_PAGE) -> Iterator[GoodOut]:
        """Every good of the signed-in creator, oldest first, a page at a time."""
        cursor: str | None = None
        while True:
            page = self.my_goods(cursor, page_size)
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    @overload
    def royalty_statement(
        self,
        *,
        since: int = 0,
        until: int | None = None,
        period: Period = "month",
        format: Literal["json"] = "json",
    ) -> StatementOut: ...

    @overload
    def royalty_statement(
        self,
        *,
        since: int = 0,
        until: int | None = None,
        period: Period = "month",
        format: Literal["csv"],
    ) -> str: ...

    def royalty_statement(
        self,
        *,
        since: int = 0,
        until: int | None = None,
        period: Period = "month",
        format: Literal["json", "csv"] = "json",
    ) -> StatementOut | str:
        """Royalties owed on the signed-in creator's goods from ``since`` to ``until`` (Unix
        seconds; until now by default), per good, platform, recipient and ``period``: a
        ``StatementOut``, or the CSV text with ``format="csv"``."""
        params: dict[str, str | int] = {"since": since, "period": period, "format": format}
        if until is not None:
            params["until"] = until
        if format == "csv":
            answer = self._send(
                "GET", "/v1/creators/me/royalties", params=params, limit=MAX_CSV_BYTES
            )
            return answer.body.decode("utf-8")
        answer = self._send("GET", "/v1/creators/me/royalties", params=params)
        return self._model(StatementOut, answer)

    def code_keys(self) -> CodeKeysOut:
        """The signed-in creator's code keys (ids and dates), newest first."""
        return self._model(CodeKeysOut, self._send("GET", "/v1/creators/me/code-keys"))

    def distribution(self) -> DistributionOut:
        """Who may sell the signed-in creator's goods first-hand."""
        return self._model(DistributionOut, self._send("GET", "/v1/creators/me/distribution"))

    def set_distribution(
        self, *, restricted: bool, platforms: Sequence[str] = ()
    ) -> DistributionOut:
        """Restrict first-hand sales of the signed-in creator's goods to ``platforms``
        (``restricted``), or open them to any platform again; replaces the whole policy."""
        chosen = sorted(parse_platforms(platforms))  # InvalidInput before anything is sent
        body = DistributionIn(restricted=restricted, platforms=chosen)
        answer = self._send("PUT", "/v1/creators/me/distribution", document=body.model_dump())
        return self._model(DistributionOut, answer)

    def face_value(self, product: str) -> FaceValueHistoryOut:
        """The face value of one of the signed-in creator's products (null: none given), with
        its history: when each value was set or cleared, oldest first."""
        path = f"/v1/creators/me/products/{product}/face-value"
        return self._model(FaceValueHistoryOut, self._send("GET", path))

    def set_face_value(self, product: str, value: int | None, currency: str | None) -> FaceValueOut:
        """Set the face value printed on the product's cards (minor units of ``currency``), or
        clear it with ``value`` None; resales far below it raise ``below-face-value``."""
        path = f"/v1/creators/me/products/{product}/face-value"
        if value is None:
            return self._model(FaceValueOut, self._send("DELETE", path))
        body = request_model(
            FaceValueIn,
            {"face_value": str(value), "currency": currency},
            "the face value is invalid",
        )
        return self._model(FaceValueOut, self._send("PUT", path, document=body.model_dump()))

    def prove_identity(self, domain: str) -> IdentityOut:
        """Have the registry fetch and check the signed-in creator's statement on ``domain``
        (``https://<domain>/.well-known/tracemark-creator.json``) and log the verified name."""
        body = IdentityIn(domain=domain).model_dump()
        return self._post("/v1/creators/me/identity", body, IdentityOut)

    def recheck_identity(self) -> IdentityOut:
        """Have the registry fetch the signed-in creator's statement again: still verified, or
        lapsed (logged) if it no longer verifies."""
        return self._model(IdentityOut, self._send("POST", "/v1/creators/me/identity/recheck"))
