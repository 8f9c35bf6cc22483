"""The typed client (``verifier.client``) against the real app in-process, on SQLite and
PostgreSQL: starlette's ``TestClient`` is the client's HTTP transport, so every call goes
through routing, authentication, rate limits and problem+json exactly as over a socket."""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from eth_account import Account
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from anchoring.devchain import free_port
from api import siwemessage
from api.apikeys import create_api_key
from api.app import create_app
from api.ratelimit import Limit, RateLimits
from registry import merkle
from registry.codesfile import codes_source, prepare_code_batch
from registry.creator import (
    CreatorKeys,
    sign_batch_registration,
    sign_batch_revocation,
    sign_enrollment,
    sign_revocation,
)
from registry.eip712 import DEV_DOMAIN, Domain
from registry.errors import ConfigurationError, Conflict, InvalidInput, NotFound, SignatureError
from registry.fingerprints import GoodType, Use, code_fingerprint
from registry.requests import RegistrationRequest
from registry.royalty import RoyaltyPolicy
from registry.service import Registry
from tests.conftest import Clock, CreatorFactory
from tests.registry.helpers import NO_ROYALTY, counts, registration
from tests.trust import policy_of, trust_root_of
from verifier.client import (
    NDJSON_LINES_PER_CHUNK,
    ApiProblem,
    InvalidRequest,
    JobFailed,
    NotAuthorized,
    ProblemConflict,
    ProblemNotFound,
    RegistryUnreachable,
    RetryLater,
    SignatureRefused,
    SignInRefused,
    TracemarkClient,
    VerificationError,
    ndjson_batch,
    siwe_message,
    verify_receipt,
)
from verifier.errors import UntrustedRegistry
from verifier.offline import check_bundle
from verifier.schemas import ReceiptOut
from verifier.statecheck import check_absence
from verifier.trust import TrustPolicy, TrustRoot

#: The authority the app's Sign-In with Ethereum expects, and the client's base URL.
SIWE_DOMAIN = "127.0.0.1:8000"
BASE_URL = f"http://{SIWE_DOMAIN}"
#: Roomy limits, so that only the test about rate limits meets them.
ROOMY = RateLimits(
    api_key=Limit(1000, 1000),
    auditor=Limit(1000, 1000),
    creator=Limit(1000, 1000),
    anonymous=Limit(1000, 1000),
)
STUDIO = "0x" + "11" * 20
POLICY = RoyaltyPolicy.parse({"recipients": [{"address": STUDIO, "bps": 500, "label": "studio"}]})
_CODE_ALPHABET = "GHJKLMNPQRSTUVWXYZ"


def random_code() -> str:
    return "-".join("".join(secrets.choice(_CODE_ALPHABET) for _ in range(4)) for _ in range(3))


@pytest.fixture
def registry(engine: Engine, clock: Clock) -> Registry:
    """On both databases (this package's conftest has an SQLite-only one for the chain)."""
    return Registry(
        engine,
        domain=DEV_DOMAIN,
        account=Account.create(),
        master_key=secrets.token_bytes(32),
        clock=clock,
    )


@dataclass
class Api:
    registry: Registry
    clock: Clock
    http: TestClient
    #: A platform key with every scope, and one with ``verify`` only.
    key: str
    verify_only_key: str

    def client(self, **options: object) -> TracemarkClient:
        """A client over the in-process app (no retries: the tests see every answer)."""
        settings: dict[str, object] = {"max_retries": 0, "clock": self.clock, **options}
        return TracemarkClient(BASE_URL, http_client=self.http, **settings)  # type: ignore[arg-type]

    def platform(self) -> TracemarkClient:
        return self.client(api_key=self.key)


@pytest.fixture
def api(registry: Registry, clock: Clock) -> Iterator[Api]:
    key, _ = create_api_key(
        registry.engine, "cardhub", ["verify", "transfer", "audit"], "", clock()
    )
    verify_only, _ = create_api_key(registry.engine, "cardhub", ["verify"], "ro", clock())
    app = create_app(registry, limits=ROOMY, siwe_domain=SIWE_DOMAIN)
    with TestClient(app) as http:
        yield Api(registry, clock, http, key, verify_only)


def _register_file(api: Api, creator: CreatorKeys, **options: object) -> bytes:
    fingerprint = os.urandom(32)
    request = registration(
        creator,
        api.clock(),
        fingerprint=fingerprint,
        product="art",
        **options,  # type: ignore[arg-type]
    )
    entry = api.client().register(request)
    assert entry.status == "queued" and entry.leaf_index is None
    api.registry.sequence_all()
    return fingerprint


def _code_batch(api: Api, creator: CreatorKeys, codes: list[str]) -> RegistrationRequest:
    batch = prepare_code_batch(codes_source("\n".join(codes)), creator.require_code_key())
    request = sign_batch_registration(
        creator,
        api.registry.domain,
        batch,
        good_type=GoodType.CODE,
        product="30-day-card",
        use=Use.SINGLE,
        royalty_policy=NO_ROYALTY,
        metadata={"lot": 7},
        now=api.clock(),
        new_product=True,
    )
    batch.close()
    return request


def _fingerprints(creator: CreatorKeys, codes: list[str]) -> list[bytes]:
    return [code_fingerprint(creator.require_code_key(), code) for code in codes]


def _root_with_key(root: TrustRoot, address: str) -> TrustRoot:
    """The same registry's trust root, naming another key to sign everything."""
    key = {"address": address, "from_size": 1, "until_size": None, "handover_signature": None}
    return TrustRoot.model_validate({**root.document(), "signing_keys": [key]})


# -- platforms: verify, and the auditor's proofs ---------------------------------------------------


def test_verify_by_fingerprint_head_proof_and_bundle(api: Api, creator: CreatorKeys) -> None:
    fingerprint = _register_file(api, creator)
    platform = api.platform()

    answer = platform.verify("file", fingerprint=fingerprint)
    assert answer.verdict == "pending_anchor"  # logged, no chain here
    assert (answer.creator, answer.product, answer.leaf_index) == (creator.address, "art", 0)
    unknown = platform.verify(GoodType.FILE, fingerprint="0x" + os.urandom(32).hex())
    assert unknown.verdict == "unknown" and unknown.creator is None

    root = trust_root_of(api.registry)
    head = platform.tree_head(trust=TrustPolicy.of(root))
    # The good's entry, and the head's state commitment (issue 14).
    assert head.tree_size == 2 and head.domain == DEV_DOMAIN
    assert platform.domain() == DEV_DOMAIN
    with pytest.raises(VerificationError, match="not"):
        platform.tree_head(trust=TrustPolicy.of(_root_with_key(root, Account.create().address)))
    # The trust root the registry serves about itself names the same registry and keys.
    served = platform.trust_root()
    assert (served.chain_id, served.contract_address, served.signing_keys) == (
        root.chain_id,
        root.contract_address,
        root.signing_keys,
    )
    assert platform.tree_head(trust=TrustPolicy.of(served)) == head
    leaf = merkle.hash_leaf(api.registry.entry_at(0).leaf_data())
    merkle.verify_inclusion(leaf, 0, 2, platform.inclusion_proof(0, 2), head.root)

    bundle = platform.proof_bundle("file", fingerprint)
    report = check_bundle(bundle, TrustPolicy.of(root), None)
    assert report.status == "chain-not-checked"
    assert report.trust_fingerprint == root.fingerprint()
    assert report.completeness == "complete as of head 2"
    # A good never registered: the proof of its absence, and a registered one has none.
    never = os.urandom(32)
    absence = platform.absence_proof("file", never)
    assert check_absence(absence, TrustPolicy.of(root), None).tree_size == 2
    with pytest.raises(ProblemConflict, match="is registered"):
        platform.absence_proof(GoodType.FILE, fingerprint)


def test_verify_a_file_streamed_from_a_path_or_a_stream(
    api: Api, creator: CreatorKeys, tmp_path: Path
) -> None:
    content = os.urandom(3 * 1024 * 1024 + 5)  # several upload chunks
    fingerprint = hashlib.sha256(content).digest()
    request = registration(creator, api.clock(), fingerprint=fingerprint, product="art")
    api.client().register(request)
    api.registry.sequence_all()
    path = os.path.join(tmp_path, "work.bin")
    with open(path, "wb") as handle:
        handle.write(content)

    by_path = api.platform().verify_file(path, creator=creator.address)
    by_stream = api.platform().verify_file(io.BytesIO(content))

    assert by_path.fingerprint == by_stream.fingerprint == "0x" + fingerprint.hex()
    assert by_path.verdict == by_stream.verdict == "pending_anchor"


def test_verify_by_code_after_enrolling_the_code_key(api: Api, creator: CreatorKeys) -> None:
    client = api.client()
    enrolled = client.enroll_code_key(
        sign_enrollment(creator, api.registry.domain, now=api.clock()), creator.require_code_key()
    )
    assert enrolled.status == "enrolled" and enrolled.creator == creator.address
    codes = [random_code() for _ in range(5)]
    job = client.wait_job(
        client.register_batch(
            _code_batch(api, creator, codes), _fingerprints(creator, codes)
        ).job_id,
        30,
    )
    assert job.result is not None and job.result["registered"] == 5

    platform = api.platform()
    found = platform.verify("code", code=codes[2].lower(), creator=creator.address)
    assert found.verdict == "pending_anchor" and found.product == "30-day-card"
    assert found.fingerprint == "0x" + _fingerprints(creator, codes[2:3])[0].hex()
    wrong_product = platform.verify(
        "code", code=codes[2], creator=creator.address, product="other-card"
    )
    assert wrong_product.verdict != "pending_anchor"
    assert platform.verify("code", code=random_code(), creator=creator.address).verdict == "unknown"
    # Without a key, a code lookup learns only authentic or not.
    coarse = client.verify("code", code=codes[0], creator=creator.address)
    assert coarse.coarse and coarse.fingerprint is None


# -- transfers and receipts ------------------------------------------------------------------------


def test_a_transfer_receipt_verifies_offline_and_a_tampered_one_does_not(
    api: Api, creator: CreatorKeys
) -> None:
    fingerprint = _register_file(api, creator, policy=POLICY)
    platform = api.platform()
    first = platform.transfer(
        good_type="file",
        fingerprint=fingerprint,
        seller={"creator": True},
        buyer={"reference": "alice"},
        price=1000,
        currency="USD",
        idempotency_key="sale-1",
    )
    root = trust_root_of(api.registry)
    trust = TrustPolicy.of(root)
    assert verify_receipt(first, trust) == root
    assert verify_receipt(first, policy_of(api.registry)).domain() == DEV_DOMAIN
    again = platform.transfer(
        good_type="file",
        fingerprint=fingerprint,
        seller={"creator": True},
        buyer={"reference": "alice"},
        price=1000,
        currency="USD",
        idempotency_key="sale-1",
    )
    assert again.replayed and again.transfer_id == first.transfer_id

    resale = platform.transfer(
        good_type="file",
        fingerprint=fingerprint,
        seller={"reference": "alice"},
        buyer={"reference": "bob"},
        price="2000",
        currency="USD",
    )
    verify_receipt(resale, trust)
    assert [(r.recipient, r.amount) for r in resale.royalties] == [(STUDIO, "100")]
    assert platform.receipt(resale.transfer_id) == resale

    signature = bytes.fromhex(resale.signature[2:])
    flipped = "0x" + (signature[:10] + bytes([signature[10] ^ 1]) + signature[11:]).hex()
    for tampered, why in [
        (resale.model_copy(update={"leaf_index": resale.leaf_index + 1}), "typed_data"),
        (resale.model_copy(update={"timestamp": resale.timestamp - 1}), "typed_data"),
        (resale.model_copy(update={"signature": flipped}), "does not verify"),
        (resale.model_copy(update={"signer": STUDIO}), "signed by"),
    ]:
        with pytest.raises(VerificationError, match=why):
            verify_receipt(tampered, trust)
    # The typed data rebuilt to match a changed field: the signature no longer recovers.
    forged = _with_consistent_typed_data(resale.model_copy(update={"leaf_index": 0}))
    with pytest.raises(VerificationError, match="not made by"):
        verify_receipt(forged, trust)
    with pytest.raises(VerificationError, match="signed by"):
        verify_receipt(resale, TrustPolicy.of(_root_with_key(root, Account.create().address)))
    # Pinned only for another chain (same contract address): the receipt's registry is not.
    mainnet = TrustRoot.model_validate({**root.document(), "chain_id": 1})
    with pytest.raises(UntrustedRegistry, match="chain"):
        verify_receipt(resale, TrustPolicy.of(mainnet))

    # Alice sold it already: selling it again is the double-sale signal.
    with pytest.raises(ProblemConflict) as double:
        platform.transfer(
            good_type="file",
            fingerprint=fingerprint,
            seller={"reference": "alice"},
            buyer={"reference": "carol"},
        )
    assert double.value.status == 409 and isinstance(double.value, Conflict)

    listed = list(platform.iter_transfers(page_size=1))
    assert [r.transfer_id for r in listed] == [first.transfer_id, resale.transfer_id]
    filtered = platform.transfers(good_type="file", fingerprint=fingerprint, limit=5)
    assert len(filtered.items) == 2 and filtered.next_cursor is None


def _with_consistent_typed_data(receipt: ReceiptOut) -> ReceiptOut:
    typed = json.loads(json.dumps(receipt.typed_data))
    typed["message"]["logIndex"] = receipt.leaf_index
    return receipt.model_copy(update={"typed_data": typed})


# -- bulk ------------------------------------------------------------------------------------------


def test_a_batch_of_2000_codes_is_streamed_and_waited_for(api: Api, creator: CreatorKeys) -> None:
    codes = [random_code() for _ in range(2000)]
    fingerprints = _fingerprints(creator, codes)
    client = api.client()

    submitted = client.register_batch(_code_batch(api, creator, codes), iter(fingerprints))
    assert submitted.job_id.startswith("job_") and submitted.state in ("queued", "running", "done")
    seen: list[int] = []
    done = client.wait_job(submitted.job_id, 60, progress=seen.append)

    assert done.state == "done" and done.processed == 2000 and seen[-1] == 2000
    assert seen == sorted(seen)
    assert done.result is not None
    # The batch's 2,000 leaves, and the head's state commitment.
    assert (done.result["count"], done.result["registered"], done.result["tree_size"]) == (
        2000,
        2000,
        2001,
    )
    assert client.tree_head().tree_size == 2001
    assert client.job(submitted.job_id) == done

    leaked = fingerprints[10:15]
    batch = prepare_code_batch(codes_source("\n".join(codes[10:15])), creator.require_code_key())
    revocation = sign_batch_revocation(
        creator,
        api.registry.domain,
        batch,
        good_type=GoodType.CODE,
        reason="leaked lot",
        now=api.clock(),
    )
    batch.close()
    revoked = client.wait_job(client.revoke_batch(revocation, leaked).job_id, 60)
    assert revoked.result is not None and revoked.result["registered"] == 5
    verdict = api.platform().verify("code", fingerprint=leaked[0]).verdict
    assert verdict == "revoked"


def test_a_bulk_body_is_produced_lazily() -> None:
    made = itertools.count()

    def endless() -> Iterator[bytes]:
        for n in made:
            yield n.to_bytes(32, "big")

    body = ndjson_batch({"signed": {}}, endless())
    assert json.loads(next(body)) == {"signed": {}}
    chunk = next(body)
    assert chunk.count(b"\n") == NDJSON_LINES_PER_CHUNK
    assert chunk.startswith(b"0x" + bytes(32).hex().encode() + b"\n")
    # Only one chunk's worth was drawn from the (endless) source.
    assert next(made) == NDJSON_LINES_PER_CHUNK
    short = ndjson_batch({}, [b"short"])
    next(short)  # the document line
    with pytest.raises(InvalidInput, match="item 1"):
        next(short)


def test_a_failed_batch_raises_job_failed_and_writes_nothing(
    api: Api, creator: CreatorKeys
) -> None:
    codes = [random_code() for _ in range(20)]
    client = api.client()
    before = counts(api.registry.engine)

    job = client.register_batch(
        _code_batch(api, creator, codes), _fingerprints(creator, codes)[:-1]
    )
    with pytest.raises(JobFailed) as failed:
        client.wait_job(job.job_id, 60)

    assert failed.value.job.state == "failed" and "signed 20 goods but 19" in failed.value.detail
    assert counts(api.registry.engine) == before
    with pytest.raises(ProblemNotFound):
        client.job("job_" + "x" * 22)


# -- creators: sign-in, goods and statements -------------------------------------------------------


def test_sign_in_with_ethereum_goods_and_royalty_statement(
    api: Api, make_creator: CreatorFactory
) -> None:
    creator = make_creator()
    fingerprint = _register_file(api, creator, policy=POLICY)
    others = [_register_file(api, creator) for _ in range(2)]
    platform = api.platform()
    for seller, buyer, price in [(None, "alice", 1000), ("alice", "bob", 3000)]:
        platform.transfer(
            good_type="file",
            fingerprint=fingerprint,
            seller={"creator": True} if seller is None else {"reference": seller},
            buyer={"reference": buyer},
            price=price,
            currency="USD",
        )
    session = api.client()
    with pytest.raises(NotAuthorized) as anonymous:
        session.my_goods()
    assert anonymous.value.status == 401

    token = session.sign_in(creator.account)

    assert token.startswith("tm_siwe_") and token not in repr(session)
    goods = list(session.iter_my_goods(page_size=2))
    assert [g.fingerprint for g in goods] == ["0x" + f.hex() for f in (fingerprint, *others)]
    statement = session.royalty_statement(since=0, period="all")
    assert statement.creator == creator.address
    assert [(line.recipient, line.amount, line.transfers) for line in statement.lines] == [
        (STUDIO, "150", 1)
    ]
    assert [(t.recipient, t.amount, t.currency) for t in statement.totals] == [
        (STUDIO, "150", "USD")
    ]
    text = session.royalty_statement(since=0, period="all", format="csv")
    assert text.splitlines()[0].startswith("period,") and "150" in text
    # A session token is a creator's, not a platform's.
    with pytest.raises(NotAuthorized) as forbidden:
        session.transfers()
    assert forbidden.value.status in (401, 403)


def test_the_sign_in_message_is_exactly_the_servers_format() -> None:
    address = Account.create().address
    fields = {
        "domain": SIWE_DOMAIN,
        "address": address,
        "uri": BASE_URL,
        "chain_id": 31337,
        "nonce": "abcDEF123456",
        "issued_at": 1_790_000_000,
    }
    for statement in (None, "Sign in to the tracemark registry."):
        text = siwe_message(**fields, statement=statement)
        assert text == siwemessage.build_message(**fields, statement=statement)
        assert siwemessage.parse_message(text).to_text() == text


def test_sign_in_refuses_a_message_for_another_domain(api: Api, creator: CreatorKeys) -> None:
    phished = TracemarkClient(
        "http://registry.example:8000", http_client=api.http, clock=api.clock, max_retries=0
    )
    with pytest.raises(SignInRefused, match=r"127\.0\.0\.1:8000"):
        phished.sign_in(creator.account)
    assert phished.sign_in(creator.account, domain=SIWE_DOMAIN).startswith("tm_siwe_")


# -- problems --------------------------------------------------------------------------------------


def test_problems_become_api_problems_in_the_registrys_error_family(
    api: Api, creator: CreatorKeys
) -> None:
    platform = api.platform()
    with pytest.raises(ProblemNotFound) as missing:
        platform.proof_bundle("file", os.urandom(32))
    problem = missing.value
    assert isinstance(problem, NotFound) and isinstance(problem, ApiProblem)
    assert (problem.status, problem.code) == (404, "not-found")
    assert problem.type == "https://tracemark.dev/problems/not-found"
    assert "is registered" in problem.detail

    with pytest.raises(InvalidRequest) as invalid:
        platform.transfers(limit=0)
    assert invalid.value.status == 422 and invalid.value.code == "validation-error"
    assert invalid.value.extra["errors"][0]["loc"] == ["query", "limit"]

    # A signature under another domain is refused as a signature (exit 6 in the CLI).
    elsewhere = Domain(1, DEV_DOMAIN.verifying_contract)
    request = registration(creator, api.clock(), domain=elsewhere)
    with pytest.raises(SignatureRefused) as refused:
        api.client().register(request)
    assert refused.value.status == 400 and isinstance(refused.value, SignatureError)
    assert refused.value.code == "wrong-signer"
    signed = sign_revocation(
        creator, DEV_DOMAIN, good_type=GoodType.FILE, fingerprint=bytes(32), reason="x", now=1
    )
    with pytest.raises(SignatureRefused, match="deadline"):
        api.client().revoke(signed)

    ro = api.client(api_key=api.verify_only_key)
    with pytest.raises(NotAuthorized) as forbidden:
        ro.transfers()
    assert forbidden.value.status == 403 and "transfer" in forbidden.value.detail


def test_a_refused_credential_never_shows_in_an_error(api: Api) -> None:
    bogus = "tm_live_" + "2" * 44
    client = api.client(api_key=bogus)
    with pytest.raises(NotAuthorized) as refused:
        client.verify("file", fingerprint=os.urandom(32))
    error = refused.value
    assert error.status == 401
    for shown in (str(error), repr(error), repr(error.args), repr(error.extra), repr(client)):
        assert bogus not in shown and "2" * 20 not in shown
    with pytest.raises(ConfigurationError) as shape:
        TracemarkClient(BASE_URL, api_key="sk-" + "3" * 40)
    assert "3" * 20 not in str(shape.value)


def test_rate_limits_are_retry_later_with_their_retry_after(registry: Registry) -> None:
    tight = RateLimits(anonymous=Limit(0.01, 2))
    with TestClient(create_app(registry, limits=tight)) as http:
        client = TracemarkClient(BASE_URL, http_client=http, max_retries=0)
        for _ in range(2):
            client.verify("file", fingerprint=os.urandom(32))
        with pytest.raises(RetryLater) as limited:
            client.verify("file", fingerprint=os.urandom(32))
    assert limited.value.status == 429 and limited.value.code == "rate-limited"
    assert limited.value.retry_after is not None and limited.value.retry_after >= 1
    assert limited.value.retryable


def test_an_unreachable_registry_is_one_clear_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with TracemarkClient(url, timeout=2) as client, pytest.raises(RegistryUnreachable) as down:
        client.tree_head()
    assert str(down.value).startswith(f"cannot reach the registry at {url}")


@pytest.mark.parametrize(
    "url",
    ["ftp://host", "http://user:secret@host", "http://host/?q=1", "host:8000", "http://:80"],
)
def test_a_bad_registry_url_is_a_configuration_error(url: str) -> None:
    with pytest.raises(ConfigurationError) as bad:
        TracemarkClient(url)
    assert "secret" not in str(bad.value)


def test_a_request_the_api_would_refuse_is_invalid_input_and_nothing_is_sent(
    creator: CreatorKeys,
) -> None:
    """Every call that builds a request checks it against the API's model first: the caller
    gets ``InvalidInput`` naming the fields, never a pydantic error, and no request goes out
    (nothing listens at the URL: a request sent would be ``RegistryUnreachable``)."""
    good = "0x" + "ab" * 32
    with TracemarkClient(f"http://127.0.0.1:{free_port()}", timeout=2) as client:
        with pytest.raises(InvalidInput, match=r"^the transfer's fields are invalid: seller\.x"):
            client.transfer(
                good_type="file", fingerprint=good, seller={"x": 1}, buyer={"platform": "b"}
            )
        with pytest.raises(InvalidInput, match=r"^the authorization's fields are invalid: "):
            client.authorize_handover(
                good_type="file", fingerprint=good, reference="r", buyer_platform="b", expires_in=0
            )
        # A signed message of another type where an enrolment is due.
        enrollment = sign_enrollment(creator, DEV_DOMAIN, now=1_000)
        mistaken = replace(enrollment, primary_type="CodeKeyRetirement")
        with pytest.raises(InvalidInput, match=r"^the request does not fit the API's schema: "):
            client.enroll_code_key(mistaken, creator.require_code_key())
