"""The error family (issue 13, item 5): every error class carries its HTTP status and a
one-line next step, and ``api/errors.py`` answers with the class's status, as the ordered
list it replaced did for each class."""

from __future__ import annotations

from collections.abc import Iterator

import api.app  # noqa: F401 (imports every error class the server can raise)
from anchoring.errors import AnchoringError, ChainMismatch, ChainUnavailable, ReceiptMismatch
from api.errors import PayloadTooLarge, UnsupportedMediaType, status_of
from api.pow import ProofOfWorkRefused, ProofOfWorkRequired
from api.principal import Forbidden, Unauthorized
from api.ratelimit import RateLimited
from api.siwemessage import SiweRejected
from api.webhooks.ssrf import PortRefused, TargetRefused
from registry import errors
from registry.distribution_policy import NotADistributor
from registry.handover import AuthorizationRefused, NotTheHolder
from registry.transferrequests import DoubleSale, GoodConsumed, GoodRevoked

#: The statuses the API answered before the family carried them (the ordered list of
#: ``api/errors.py``, resolved class by class): a change here changes the API.
STATUS = {
    Unauthorized: 401,
    SiweRejected: 401,
    Forbidden: 403,
    NotADistributor: 403,
    NotTheHolder: 403,
    AuthorizationRefused: 403,
    RateLimited: 429,
    errors.IdempotencyKeyReused: 422,
    PortRefused: 422,
    TargetRefused: 400,
    PayloadTooLarge: 413,
    ProofOfWorkRequired: 428,
    ProofOfWorkRefused: 400,
    UnsupportedMediaType: 415,
    errors.StorageBusy: 503,
    ChainUnavailable: 503,
    ChainMismatch: 503,
    errors.ConfigurationError: 500,
    errors.NonceReused: 409,
    errors.SignatureError: 400,
    errors.WrongSigner: 400,
    errors.ExpiredDeadline: 400,
    errors.MalformedSignature: 400,
    errors.ProofOutOfRange: 400,
    errors.InvalidInput: 400,
    errors.InvalidFingerprint: 400,
    errors.NotFound: 404,
    errors.UnknownProduct: 404,
    errors.Conflict: 409,
    DoubleSale: 409,
    GoodConsumed: 409,
    GoodRevoked: 409,
    errors.InvalidProof: 400,
    errors.LogCorrupt: 500,
    errors.TracemarkError: 500,
    AnchoringError: 500,
    ReceiptMismatch: 500,
}


def family() -> Iterator[type[errors.TracemarkError]]:
    seen: set[type[errors.TracemarkError]] = set()
    pending = [errors.TracemarkError]
    while pending:
        kind = pending.pop()
        if kind not in seen:
            seen.add(kind)
            yield kind
            pending.extend(kind.__subclasses__())


def test_each_class_answers_with_the_status_it_always_had() -> None:
    for kind, status in STATUS.items():
        assert kind.http_status == status, kind.__name__
        assert status_of(kind.__new__(kind)) == status, kind.__name__


def test_every_error_class_says_its_status_and_what_to_do_next() -> None:
    kinds = list(family())
    assert len(kinds) > 40
    for kind in kinds:
        assert 400 <= kind.http_status <= 599, kind.__name__
        assert kind.diagnostics and "\n" not in kind.diagnostics, kind.__name__
        assert len(kind.diagnostics) <= 100, kind.__name__


def test_one_idempotency_key_reused() -> None:
    from api import idempotency
    from registry import transferrequests

    assert idempotency.IdempotencyKeyReused is errors.IdempotencyKeyReused
    assert transferrequests.IdempotencyKeyReused is errors.IdempotencyKeyReused
