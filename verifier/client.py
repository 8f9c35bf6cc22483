"""A typed Python client for the tracemark HTTP API, and the offline check of its receipts.

Platforms verify goods and report transfers with an API key; creators send what their own
machine signed (codes never leave it: only fingerprints and signed messages travel) and sign
in with Ethereum to read their goods and statements; auditors fetch signed heads, proofs and
bundles. Every method returns a model of ``verifier.schemas`` (or a verified value) or raises:
a problem+json answer becomes an ``ApiProblem`` whose class places it in the registry's own
error family (``NotFound``, ``Conflict``, ``SignatureError``...), so a caller handles a remote
registry exactly as a local one. No credential ever appears in an error, a repr or a URL.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final, Literal, TypeVar, overload
from urllib.parse import quote, urlsplit

import httpx2
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from pydantic import BaseModel, ValidationError

from registry.distribution_policy import parse_platforms
from registry.eip712 import (
    Domain,
    checksum_address,
    parse_address,
    typed_data,
    verify_signature,
)
from registry.errors import (
    ConfigurationError,
    Conflict,
    InvalidInput,
    NotFound,
    SignatureError,
    StorageBusy,
    TracemarkError,
)
from registry.fingerprints import GoodType, fingerprint_hex, parse_fingerprint, parse_good_type
from registry.requests import RegistrationRequest, RevocationRequest
from registry.royalty import policy_document
from registry.signed import SignedMessage
from verifier.bundle import MAX_BUNDLE_BYTES, Bundle, SignedTreeHead
from verifier.errors import BundleInvalid, VerificationError
from verifier.pow import MAX_POW_BITS, POW_HEADER, body_binding, solve
from verifier.problems import (
    PROBLEM_PREFIX,
    ApiProblem,
    InvalidRequest,
    NotAuthorized,
    ProblemConflict,
    ProblemNotFound,
    RegistryUnreachable,
    RetryLater,
    SignatureRefused,
    UnexpectedAnswer,
    problem_class,
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
    GoodOut,
    GoodTypeName,
    HandoverIn,
    HandoverOut,
    IdentityIn,
    IdentityOut,
    JobOut,
    Page,
    PartyIn,
    ProofOut,
    ReceiptOut,
    RegistrationIn,
    RevocationIn,
    SignalPage,
    SiweIn,
    SiweNonceOut,
    StatementOut,
    TokenOut,
    TraceOut,
    TransferIn,
    VerifyIn,
    VerifyOut,
)
from verifier.trust import MAX_TRUST_ROOT_BYTES, WELL_KNOWN_PATH, TrustPolicy, TrustRoot

DEFAULT_TIMEOUT: Final = 10.0
"""Seconds to wait for the registry to connect, accept a chunk or answer (each, not in all)."""

MAX_RESPONSE_BYTES: Final = 16 * 1024 * 1024
"""Largest answer read into memory (a page of 200 receipts is well under 1 MiB).

Threat: a hostile or broken server (or a proxy in front of it) streaming without end would
exhaust the client's memory. Bundles have their own bound, ``MAX_BUNDLE_BYTES``.
"""

MAX_CSV_BYTES: Final = 256 * 1024 * 1024
"""Largest royalty statement read as CSV (one line per good, platform and period)."""

MAX_RETRY_WAIT: Final = 30.0
"""Longest a retry waits for ``Retry-After`` (seconds); a longer wait is the caller's call."""

UPLOAD_CHUNK: Final = 1024 * 1024
"""Bytes read from a file per chunk of a streamed upload."""

NDJSON_LINES_PER_CHUNK: Final = 4_096
"""Fingerprint lines per chunk of a bulk upload (~270 KiB): few writes, little memory."""

MAX_POLL_INTERVAL: Final = 2.0
"""Longest pause between two looks at a bulk job (seconds); polls start faster."""

SIGN_IN_STATEMENT: Final = "Sign in to the tracemark registry to read your goods and statements."

_JOB_ID = re.compile(r"job_[A-Za-z0-9_-]{1,60}\Z")
_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,128}\Z")

Period = Literal["day", "month", "all"]
M = TypeVar("M", bound=BaseModel)


# -- errors ---------------------------------------------------------------------------------------


class JobFailed(InvalidInput):
    """A bulk job failed on the server; nothing of it was written. ``job`` is its last state;
    ``problem`` is what the request would have answered had it failed at once (the same
    exception family as a direct refusal: ``ProblemNotFound`` for an unknown product...)."""

    code = "job-failed"

    def __init__(self, job: JobOut) -> None:
        detail = job.error or f"bulk job {job.job_id} failed"
        super().__init__(detail)
        self.job = job
        code = job.error_code or self.code
        status = _status_of(code)
        self.problem: ApiProblem = problem_class(status, code)(
            status, PROBLEM_PREFIX + code, "Bulk job failed", detail, code=code
        )


def _status_of(code: str) -> int:
    """The HTTP status the registry answers a domain error with (``api/errors.py``), from the
    error's code: a failed job records the code, not a status."""
    kind = _REGISTRY_ERRORS.get(code)
    if kind is None or issubclass(kind, InvalidInput):
        return 400
    if issubclass(kind, NotFound):
        return 404
    if issubclass(kind, Conflict):
        return 409
    if issubclass(kind, StorageBusy):
        return 503
    return 500


def _registry_error_classes() -> dict[str, type[TracemarkError]]:
    found: dict[str, type[TracemarkError]] = {}
    pending: list[type[TracemarkError]] = [TracemarkError]
    while pending:
        for sub in pending.pop().__subclasses__():
            if sub.__module__.startswith("registry."):
                found.setdefault(sub.code, sub)
            pending.append(sub)
    return found


class JobStillRunning(TracemarkError):
    """``wait_job`` gave up waiting; the job goes on on the server: poll it again later."""

    code = "job-still-running"


class SignInRefused(ConfigurationError):
    """The client refused to sign a sign-in message that names another domain (phishing)."""

    code = "sign-in-refused"


# -- documents ------------------------------------------------------------------------------------


def registration_document(request: RegistrationRequest) -> dict[str, Any]:
    """A (batch) registration as the API takes it (``RegistrationIn``)."""
    return {
        "signed": request.signed.document(),
        "royalty_policy": policy_document(request.royalty_policy),
        "metadata": dict(request.metadata),
        "new_product": request.new_product,
    }


def revocation_document(request: RevocationRequest) -> dict[str, Any]:
    """A (batch) revocation as the API takes it (``RevocationIn``)."""
    return {"signed": request.signed.document()}


def enrollment_document(signed: SignedMessage, code_key: bytes) -> dict[str, Any]:
    """A code-key enrolment as the API takes it (``CodeKeyIn``): the key travels once, over
    TLS, and is kept sealed at rest."""
    if len(code_key) != 32:
        raise InvalidInput("a code key is exactly 32 bytes")
    return {"signed": signed.document(), "code_key": "0x" + code_key.hex()}


def ndjson_batch(document: Mapping[str, Any], fingerprints: Iterable[bytes]) -> Iterator[bytes]:
    """A bulk body, lazily: the signed request on the first line, then one ``0x`` fingerprint
    a line, in upload order; ``NDJSON_LINES_PER_CHUNK`` lines a chunk, so 10^6 fingerprints
    never sit in memory."""
    yield json.dumps(document, separators=(",", ":")).encode("utf-8") + b"\n"
    lines: list[bytes] = []
    for number, fingerprint in enumerate(fingerprints, start=1):
        if not isinstance(fingerprint, bytes) or len(fingerprint) != 32:
            raise InvalidInput(f"item {number}: a fingerprint is exactly 32 bytes")
        lines.append(b"0x%s\n" % fingerprint.hex().encode("ascii"))
        if len(lines) == NDJSON_LINES_PER_CHUNK:
            yield b"".join(lines)
            lines.clear()
    if lines:
        yield b"".join(lines)


# -- Sign-In with Ethereum (EIP-4361) -------------------------------------------------------------


def siwe_time(unix_seconds: int) -> str:
    """An RFC 3339 UTC date-time with a Z, as EIP-4361 messages carry it."""
    return datetime.fromtimestamp(unix_seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def siwe_message(
    *,
    domain: str,
    address: str,
    uri: str,
    chain_id: int,
    nonce: str,
    issued_at: int,
    statement: str | None = None,
) -> str:
    """The EIP-4361 message text a creator signs, laid out as the EIP's ABNF (and the
    server's parser, which accepts exactly one text per message) requires: header, address,
    a blank line, the optional statement and a blank line, then the fields in order, LF line
    ends and no trailing newline."""
    lines = [f"{domain} wants you to sign in with your Ethereum account:", address, ""]
    if statement is not None:
        lines.append(statement)
    lines += [
        "",
        f"URI: {uri}",
        "Version: 1",
        f"Chain ID: {chain_id}",
        f"Nonce: {nonce}",
        f"Issued At: {siwe_time(issued_at)}",
    ]
    return "\n".join(lines)


# -- receipts --------------------------------------------------------------------------------------


def verify_receipt(receipt: ReceiptOut, trust: TrustPolicy) -> TrustRoot:
    """Check a ``TransferReceipt`` offline under the caller's pinned trust; return the trust
    root it verified under, or raise ``VerificationError`` (``UntrustedRegistry`` when no
    pinned root names the registry it claims to be from).

    The receipt must be signed under a domain a pinned trust root names, by the registry key
    that root names for the receipt's place in the log (a key hand-over keeps old receipts
    valid under the old key). The other fields of the answer (price, royalties) are bound
    through ``transfer_hash``, the TRANSFER entry's payload hash, which the log proves.
    """
    try:
        signed_under = Domain.from_dict(receipt.domain)
        # 1. A registry the caller trusts (its chain and contract), and the key it names.
        root = trust.root_for(signed_under)
        expected = checksum_address(root.key_for_entry(receipt.log_index))
        # 2. The receipt names that key as its signer.
        if parse_address(receipt.signer, what="signer") != expected:
            raise VerificationError(
                f"the receipt is signed by {receipt.signer}, but trust root {root.label()} "
                f"names {expected} for leaf {receipt.log_index:,}"
            )
        # 3. The signed message is rebuilt from the receipt's fields ...
        message: dict[str, object] = {
            "goodType": int(parse_good_type(receipt.good_type)),
            "fingerprint": parse_fingerprint(receipt.fingerprint),
            "logIndex": receipt.log_index,
            "transferHash": bytes.fromhex(receipt.transfer_hash[2:]),
            "timestamp": receipt.timestamp,
        }
        # 4. ... and the typed data shown beside them is that very message, nothing else.
        if receipt.typed_data != typed_data("TransferReceipt", message, signed_under):
            raise VerificationError("the receipt's typed_data is not the message of its fields")
        # 5. The EIP-712 signature (65 bytes, low s) recovers that key under the domain.
        verify_signature("TransferReceipt", message, root.domain(), receipt.signature, expected)
    except (SignatureError, InvalidInput) as exc:
        raise VerificationError(f"the receipt does not verify: {exc.detail}") from None
    except BundleInvalid as exc:
        raise VerificationError(f"the receipt does not verify: {exc.detail}") from None
    return root


def verify_tree_head(head: SignedTreeHead, trust: TrustPolicy) -> TrustRoot:
    """Check a signed tree head under the caller's pinned trust: the domain a pinned root
    names, the key it names for the head's size, the EIP-712 signature. Returns the trust
    root used; raises ``VerificationError`` otherwise."""
    from verifier.offline import check_head

    root = trust.root_for(head.domain.domain())
    try:
        check_head(head, root)
    except BundleInvalid as exc:
        raise VerificationError(f"the tree head does not verify: {exc.detail}") from None
    return root


# -- the client ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: httpx2.Headers
    body: bytes


_GOOD_TYPE_NAMES: Final[dict[GoodType, GoodTypeName]] = {
    GoodType.FILE: "file",
    GoodType.CODE: "code",
    GoodType.ITEM: "item",
}


def _good_type_name(good_type: GoodType | str) -> GoodTypeName:
    parsed = good_type if isinstance(good_type, GoodType) else parse_good_type(good_type)
    return _GOOD_TYPE_NAMES[parsed]


def _fingerprint_text(fingerprint: bytes | str) -> str:
    if isinstance(fingerprint, bytes):
        return fingerprint_hex(fingerprint)
    return fingerprint_hex(parse_fingerprint(fingerprint))


def _base_url(url: str) -> tuple[str, str]:
    """(the base URL without a trailing slash, its authority ``host[:port]``)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port  # raises ValueError for a port that is not a number
    except ValueError:
        parts, port = None, None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.username is not None
        or parts.password is not None
        or parts.query
        or parts.fragment
    ):
        raise ConfigurationError(
            "the registry's URL must be http(s)://host[:port][/path], without credentials, "
            "query or fragment"
        )
    del port
    # Without userinfo the netloc is exactly the authority, host[:port], as typed.
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}", parts.netloc


class TracemarkClient:
    """The registry's HTTP API, typed. One credential at a time: a platform's API key
    (``tm_live_...``), or a creator's session token (``tm_siwe_...``, see ``sign_in``);
    creators' signed writes need neither.

    ``max_retries`` resends a request the registry refused before applying it (429 rate
    limited, 503 storage busy), after its Retry-After (at most ``MAX_RETRY_WAIT`` s); a
    streamed body is never resent. ``http_client`` sends through an existing ``httpx2``
    client (e.g. starlette's ``TestClient``), which the caller keeps and closes; ``clock``
    gives the Unix time stamped on sign-in messages.
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        token: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx2.BaseTransport | None = None,
        http_client: httpx2.Client | None = None,
        max_retries: int = 2,
        clock: Callable[[], int] | None = None,
    ) -> None:
        self.base_url, self.authority = _base_url(base_url)
        if api_key is not None and token is not None:
            raise ConfigurationError("give an API key or a session token, not both")
        # The shape only, and never the value in the message: it may be a mistyped secret.
        if api_key is not None and not api_key.startswith("tm_live_"):
            raise ConfigurationError("an API key starts with tm_live_")
        if token is not None and not token.startswith("tm_siwe_"):
            raise ConfigurationError("a session token starts with tm_siwe_")
        self._credential = api_key if api_key is not None else token
        self._credential_kind = (
            "API key" if api_key is not None else "session token" if token is not None else None
        )
        self.timeout = timeout
        self.max_retries = max(0, max_retries)
        self._clock = clock if clock is not None else lambda: int(time.time())
        self._owns_http = http_client is None
        self._http = (
            http_client
            if http_client is not None
            else httpx2.Client(transport=transport, timeout=timeout, follow_redirects=False)
        )

    def __repr__(self) -> str:
        return f"TracemarkClient({self.base_url!r}, credential={self._credential_kind})"

    def __enter__(self) -> TracemarkClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    # -- transport ----------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        document: Any = None,
        body: Callable[[], Iterator[bytes]] | None = None,
        replayable: bool = True,
        content_type: str | None = None,
        idempotency_key: str | None = None,
        limit: int = MAX_RESPONSE_BYTES,
        headers: Mapping[str, str] | None = None,
    ) -> _Answer:
        extra = headers
        headers = {"Accept": "application/json, application/problem+json", **(extra or {})}
        if self._credential is not None:
            headers["Authorization"] = f"Bearer {self._credential}"
        if idempotency_key is not None:
            if not _IDEMPOTENCY_KEY.match(idempotency_key):
                raise InvalidInput("an Idempotency-Key is 1 to 128 printable ASCII characters")
            headers["Idempotency-Key"] = idempotency_key
        content: bytes | None = None
        if document is not None:
            content = json.dumps(document, separators=(",", ":")).encode("utf-8")
            headers["Content-Type"] = "application/json"
        elif content_type is not None:
            headers["Content-Type"] = content_type
        attempt = 0
        while True:
            try:
                with self._http.stream(
                    method,
                    self.base_url + path,
                    params=dict(params) if params else None,
                    content=content if body is None else body(),
                    headers=headers,
                    timeout=self.timeout,
                ) as response:
                    data = self._read(response, limit)
                    answer = _Answer(response.status_code, response.headers, data)
            except httpx2.TransportError as exc:
                raise self._unreachable(exc) from None
            if answer.status < 400:
                return answer
            problem = ApiProblem.from_answer(answer.status, answer.headers, answer.body)
            resendable = body is None or replayable
            if not (problem.retryable and resendable) or attempt >= self.max_retries:
                raise problem
            attempt += 1
            time.sleep(min(float(problem.retry_after or 1), MAX_RETRY_WAIT))

    def _read(self, response: httpx2.Response, limit: int) -> bytes:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise UnexpectedAnswer(f"the registry's answer is over {limit:,} bytes")
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > limit:
                raise UnexpectedAnswer(f"the registry's answer is over {limit:,} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def _unreachable(self, exc: httpx2.TransportError) -> RegistryUnreachable:
        # The reason from the exception's type and text: neither holds a header (the
        # credential travels only there), and the URL is ours and holds none.
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        if isinstance(exc, httpx2.ConnectError | httpx2.ConnectTimeout):
            return RegistryUnreachable(f"cannot reach the registry at {self.base_url}: {reason}")
        if isinstance(exc, httpx2.TimeoutException):
            return RegistryUnreachable(
                f"the registry at {self.base_url} did not answer within {self.timeout:g} s; "
                "the request may have been applied: retry it with the same Idempotency-Key"
            )
        return RegistryUnreachable(
            f"lost the connection to the registry at {self.base_url} ({reason}); "
            "the request may have been applied"
        )

    @staticmethod
    def _model(model: type[M], answer: _Answer) -> M:
        try:
            return model.model_validate_json(answer.body)
        except ValidationError as exc:
            where = "; ".join(
                ".".join(str(p) for p in e["loc"]) + ": " + e["msg"] for e in exc.errors()[:3]
            )
            raise UnexpectedAnswer(
                f"the registry's answer is not a {model.__name__}: {where}"
            ) from None

    # -- platforms ----------------------------------------------------------------------------

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
            good_type=_good_type_name(good_type),
            fingerprint=None if fingerprint is None else _fingerprint_text(fingerprint),
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
            try:
                request = TransferIn(
                    good_type=_good_type_name(good_type),
                    fingerprint=_fingerprint_text(fingerprint),
                    seller=PartyIn.model_validate(seller),
                    buyer=PartyIn.model_validate(buyer),
                    price=None if price is None else str(price),
                    currency=currency,
                    final=final,
                    authorization=authorization,
                )
            except ValidationError as exc:
                fields = ", ".join(".".join(map(str, e["loc"])) for e in exc.errors())
                raise InvalidInput(f"the transfer's fields are invalid: {fields}") from None
        answer = self._send(
            "POST",
            "/v1/transfers",
            document=request.model_dump(mode="json"),
            idempotency_key=idempotency_key,
        )
        return self._model(ReceiptOut, answer)

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
        try:
            request = HandoverIn(
                good_type=_good_type_name(good_type),
                fingerprint=_fingerprint_text(fingerprint),
                reference=reference,
                buyer_platform=buyer_platform,
                expires_in=expires_in,
            )
        except ValidationError as exc:
            fields = ", ".join(".".join(map(str, e["loc"])) for e in exc.errors())
            raise InvalidInput(f"the authorization's fields are invalid: {fields}") from None
        answer = self._send(
            "POST", "/v1/transfers/authorizations", document=request.model_dump(mode="json")
        )
        return self._model(HandoverOut, answer)

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
            params["good_type"] = _good_type_name(good_type)
        if fingerprint is not None:
            params["fingerprint"] = _fingerprint_text(fingerprint)
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

    # -- auditors -----------------------------------------------------------------------------

    def tree_head(self, *, trust: TrustPolicy | None = None) -> SignedTreeHead:
        """The newest signed tree head; with ``trust``, checked under the pinned trust root
        (domain, the key for its size, signature), else parsed only: a head checked against
        what the server says about itself proves nothing."""
        answer = self._send("GET", "/v1/log/head")
        head = self._model(SignedTreeHead, answer)
        if trust is not None:
            verify_tree_head(head, trust)
        return head

    def trust_root(self) -> TrustRoot:
        """The trust root the registry serves about itself, parsed strictly. Compare its
        ``fingerprint()`` with one its operator gave you out of band before you pin it."""
        answer = self._send("GET", WELL_KNOWN_PATH, limit=MAX_TRUST_ROOT_BYTES)
        try:
            return TrustRoot.parse(answer.body)
        except InvalidInput as exc:
            raise UnexpectedAnswer(f"the registry's trust root: {exc.detail}") from None

    def domain(self) -> Domain:
        """The EIP-712 domain the registry signs under (from its newest tree head)."""
        return self.tree_head().domain.domain()

    def inclusion_proof(self, leaf_index: int, tree_size: int) -> list[bytes]:
        """The RFC 9162 inclusion proof of a leaf in a tree size."""
        params = {"leaf_index": leaf_index, "tree_size": tree_size}
        answer = self._send("GET", "/v1/log/proof/inclusion", params=params)
        return self._proof(answer)

    def consistency_proof(self, from_size: int, tree_size: int) -> list[bytes]:
        """The RFC 9162 consistency proof between two tree sizes."""
        params = {"from_size": from_size, "tree_size": tree_size}
        answer = self._send("GET", "/v1/log/proof/consistency", params=params)
        return self._proof(answer)

    def _proof(self, answer: _Answer) -> list[bytes]:
        try:
            return [parse_fingerprint(node) for node in self._model(ProofOut, answer).proof]
        except InvalidInput:
            raise UnexpectedAnswer("a proof node is not 0x and 64 hex digits") from None

    def proof_bundle(self, good_type: GoodType | GoodTypeName, fingerprint: bytes | str) -> Bundle:
        """The good's proof bundle (``tracemark-bundle/v1``), parsed strictly; check it with
        ``verifier.offline.check_bundle`` and the chain, trusting nothing the server said."""
        path = f"/v1/goods/{_good_type_name(good_type)}/{_fingerprint_text(fingerprint)}/proof"
        answer = self._send("GET", path, limit=MAX_BUNDLE_BYTES)
        return Bundle.parse(answer.body)

    # -- creators: signed writes -------------------------------------------------------------

    def enroll_code_key(
        self, signed: SignedMessage, code_key: bytes, *, idempotency_key: str | None = None
    ) -> CodeKeyOut:
        """Enrol the creator's code key (a signed ``CodeKeyEnrollment``), sent this once."""
        document = CodeKeyIn.model_validate(enrollment_document(signed, code_key))
        answer = self._send(
            "POST",
            "/v1/creators/code-key",
            document=document.model_dump(),
            idempotency_key=idempotency_key,
        )
        return self._model(CodeKeyOut, answer)

    def retire_code_key(
        self, signed: SignedMessage, *, idempotency_key: str | None = None
    ) -> CodeKeyRetireOut:
        """Retire one of the creator's code keys (a signed ``CodeKeyRetirement``)."""
        document = CodeKeyRetireIn.model_validate({"signed": signed.document()})
        answer = self._send(
            "POST",
            "/v1/creators/code-key/retire",
            document=document.model_dump(),
            idempotency_key=idempotency_key,
        )
        return self._model(CodeKeyRetireOut, answer)

    def register(
        self, request: RegistrationRequest, *, idempotency_key: str | None = None
    ) -> EntryOut:
        """Register one good (a signed ``Registration``); queued until the sequencer logs it."""
        document = self._document(RegistrationIn, registration_document(request))
        answer = self._send(
            "POST", "/v1/registrations", document=document, idempotency_key=idempotency_key
        )
        return self._model(EntryOut, answer)

    def revoke(self, request: RevocationRequest, *, idempotency_key: str | None = None) -> EntryOut:
        """Revoke one of your goods (a signed ``Revocation``)."""
        document = self._document(RevocationIn, revocation_document(request))
        answer = self._send(
            "POST", "/v1/revocations", document=document, idempotency_key=idempotency_key
        )
        return self._model(EntryOut, answer)

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
        """Validate a request document against its wire schema before it is sent."""
        try:
            model.model_validate(document)
        except ValidationError as exc:
            fields = ", ".join(".".join(map(str, e["loc"])) for e in exc.errors())
            raise InvalidInput(f"the request does not fit the API's schema: {fields}") from None
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
        token = self._model(
            TokenOut, self._send("POST", "/v1/auth/siwe", document=request.model_dump())
        )
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

    def prove_identity(self, domain: str) -> IdentityOut:
        """Have the registry fetch and check the signed-in creator's statement on ``domain``
        (``https://<domain>/.well-known/tracemark-creator.json``) and log the verified name."""
        body = IdentityIn(domain=domain).model_dump()
        answer = self._send("POST", "/v1/creators/me/identity", document=body)
        return self._model(IdentityOut, answer)

    def recheck_identity(self) -> IdentityOut:
        """Have the registry fetch the signed-in creator's statement again: still verified, or
        lapsed (logged) if it no longer verifies."""
        return self._model(IdentityOut, self._send("POST", "/v1/creators/me/identity/recheck"))

    # -- auditors: traces (issue 5) ----------------------------------------------------------

    def trace(self, good_type: GoodType | GoodTypeName, fingerprint: bytes | str) -> TraceOut:
        """The good's whole history in order (``tracemark-trace/v1``): an API key with the
        audit scope, or the good's creator signed in."""
        path = f"/v1/goods/{_good_type_name(good_type)}/{_fingerprint_text(fingerprint)}/trace"
        return self._model(TraceOut, self._send("GET", path))

    def trace_mermaid(self, good_type: GoodType | GoodTypeName, fingerprint: bytes | str) -> str:
        """The good's holders as Mermaid ``graph LR`` text."""
        path = f"/v1/goods/{_good_type_name(good_type)}/{_fingerprint_text(fingerprint)}/trace"
        answer = self._send("GET", path, params={"format": "mermaid"})
        return answer.body.decode("utf-8")

    def signals(
        self,
        *,
        code: str | None = None,
        subject: str | None = None,
        platform: str | None = None,
        good: tuple[GoodType | GoodTypeName, bytes | str] | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> SignalPage:
        """One page of the standing fraud and piracy signals (an API key with the audit
        scope); ``good`` is (good_type, fingerprint)."""
        params: dict[str, str | int] = {}
        for name, value in (
            ("code", code),
            ("subject", subject),
            ("platform", platform),
            ("cursor", cursor),
            ("limit", limit),
        ):
            if value is not None:
                params[name] = value
        if good is not None:
            params["good"] = f"{_good_type_name(good[0])}:{_fingerprint_text(good[1])}"
        return self._model(SignalPage, self._send("GET", "/v1/signals", params=params))


#: The registry's domain errors by code (built once the registry's modules are imported).
_REGISTRY_ERRORS: Final = _registry_error_classes()

__all__ = [
    "DEFAULT_TIMEOUT",
    "MAX_RESPONSE_BYTES",
    "ApiProblem",
    "InvalidRequest",
    "JobFailed",
    "JobStillRunning",
    "NotAuthorized",
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
