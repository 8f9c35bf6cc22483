"""A typed Python client for the tracemark HTTP API: ``TracemarkClient`` and its public names.

Platforms verify goods and report transfers with an API key; creators send what their own
machine signed (codes never leave it: only fingerprints and signed messages travel) and sign
in with Ethereum to read their goods and statements; auditors fetch signed heads, proofs and
bundles. Every method returns a model of ``verifier.schemas`` (or a verified value) or raises:
a problem+json answer becomes an ``ApiProblem`` whose class places it in the registry's own
error family (``NotFound``, ``Conflict``, ``SignatureError``...), so a caller handles a remote
registry exactly as a local one. No credential ever appears in an error, a repr or a URL.

The calls live in ``verifier.platformcalls``, ``verifier.creatorcalls`` and
``verifier.auditorcalls`` over ``verifier.transport``; the offline checks of what it answers in
``verifier.signedanswers``. This module re-exports what a platform imports from it.
"""

from __future__ import annotations

from verifier.attestationcalls import AttestationCalls
from verifier.auditorcalls import AuditorCalls
from verifier.clienterrors import JobFailed, JobStillRunning, SignInRefused
from verifier.creatorcalls import MAX_CSV_BYTES, MAX_POLL_INTERVAL, CreatorCalls, Period
from verifier.creditcalls import CreditCalls
from verifier.errors import VerificationError
from verifier.ordercalls import OrderCalls
from verifier.payoutcalls import PayoutCalls
from verifier.platformcalls import UPLOAD_CHUNK, PlatformCalls
from verifier.problems import (
    ApiProblem,
    InvalidRequest,
    NotAuthorized,
    ProblemConflict,
    ProblemNotFound,
    RegistryUnreachable,
    RetryLater,
    SignatureRefused,
    UnexpectedAnswer,
)
from verifier.rebatecalls import RebateCalls
from verifier.receiptcalls import ReceiptCalls
from verifier.requestdocs import (
    NDJSON_LINES_PER_CHUNK,
    enrollment_document,
    ndjson_batch,
    registration_document,
    revocation_document,
)
from verifier.signedanswers import verify_receipt, verify_tree_head
from verifier.signin import SIGN_IN_STATEMENT, siwe_message, siwe_time
from verifier.transport import DEFAULT_TIMEOUT, MAX_RESPONSE_BYTES, MAX_RETRY_WAIT


class TracemarkClient(
    PlatformCalls,
    OrderCalls,
    ReceiptCalls,
    PayoutCalls,
    RebateCalls,
    CreatorCalls,
    AuditorCalls,
    CreditCalls,
    AttestationCalls,
):
    """The registry's HTTP API, typed. One credential at a time: a platform's API key
    (``tm_live_...``), or a creator's session token (``tm_siwe_...``, see ``sign_in``);
    creators' signed writes need neither.

    ``max_retries`` resends a request the registry refused before applying it (429 rate
    limited, 503 storage busy), after its Retry-After (at most ``MAX_RETRY_WAIT`` s); a
    streamed body is never resent. ``http_client`` sends through an existing ``httpx2``
    client (e.g. starlette's ``TestClient``), which the caller keeps and closes; ``clock``
    gives the Unix time stamped on sign-in messages.
    """

    def __repr__(self) -> str:
        return f"TracemarkClient({self.base_url!r}, credential={self._credential_kind})"

    def __enter__(self) -> TracemarkClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


__all__ = [
    "DEFAULT_TIMEOUT",
    "MAX_CSV_BYTES",
    "MAX_POLL_INTERVAL",
    "MAX_RESPONSE_BYTES",
    "MAX_RETRY_WAIT",
    "NDJSON_LINES_PER_CHUNK",
    "SIGN_IN_STATEMENT",
    "UPLOAD_CHUNK",
    "ApiProblem",
    "InvalidRequest",
    "JobFailed",
    "JobStillRunning",
    "NotAuthorized",
    "Period",
    "ProblemConflict",
    "ProblemNotFound",
    "RegistryUnreachable",
    "RetryLater",
    "SignInRefused",
    "SignatureRefused",
    "TracemarkClient",
    "UnexpectedAnswer",
    "VerificationError",
    "enrollment_document",
    "ndjson_batch",
    "registration_document",
    "revocation_document",
    "siwe_message",
    "siwe_time",
    "verify_receipt",
    "verify_tree_head",
]
