"""The API client's errors: a registry's problem+json answers, placed in the registry's own
error family (``ProblemNotFound`` is a ``NotFound``...), and a registry that does not answer.

Kept apart from ``verifier.client`` (which re-exports them) so that code which only maps errors
to exit codes, such as the ``tracemark`` command's frame, need not import the HTTP client.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from registry.errors import (
    Conflict,
    ExpiredDeadline,
    InvalidInput,
    MalformedSignature,
    NonceReused,
    NoPlatformKey,
    NotFound,
    RotationUnconsented,
    SignatureError,
    StorageBusy,
    TracemarkError,
    WrongSigner,
)
from verifier import boundedjson

if TYPE_CHECKING:
    import httpx2

MAX_PROBLEM_DETAIL: Final = 1_000
"""Characters of a problem's ``detail`` kept: an error stays one readable line."""

PROBLEM_PREFIX: Final = "https://tracemark.dev/problems/"

#: Problem codes of refused signatures: the registry's ``SignatureError`` family (400/409).
SIGNATURE_PROBLEMS: Final = frozenset(
    kind.code
    for kind in (
        SignatureError,
        MalformedSignature,
        WrongSigner,
        ExpiredDeadline,
        NonceReused,
        NoPlatformKey,
        RotationUnconsented,
    )
)
#: Problems that are refused before anything is applied, so the same request may be resent.
RETRYABLE_PROBLEMS: Final = frozenset({"rate-limited", StorageBusy.code})


class ApiProblem(TracemarkError):
    """The registry answered with an RFC 9457 problem (``status`` >= 400).

    ``code`` is the problem type's last segment (``not-found``, ``rate-limited``...);
    ``retry_after`` is the server's Retry-After in seconds (429 and 503), when it sent one.
    ``from_answer`` picks the subclass that matches the registry's own error family.
    """

    code = "api-problem"

    def __init__(
        self,
        status: int,
        type_: str,
        title: str,
        detail: str,
        *,
        code: str,
        retry_after: int | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        #: The registry's own status, not the class's.
        self.http_status = status
        self.type = type_
        self.title = title
        self.code = code
        self.retry_after = retry_after
        #: The problem's other members (e.g. ``errors`` of a validation problem).
        self.extra: dict[str, Any] = dict(extra or {})

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status}, code={self.code!r})"

    @classmethod
    def from_answer(cls, status: int, headers: httpx2.Headers, body: bytes) -> ApiProblem:
        """The problem a response carries (or a plain one for a non-problem error body)."""
        document: Any = None
        if headers.get("content-type", "").split(";")[0].strip().endswith("json"):
            try:
                document = boundedjson.loads(body)  # a registry's answer: bounded too
            except ValueError:
                document = None
        if not isinstance(document, dict):
            document = {}
        type_ = document.get("type")
        type_ = type_ if isinstance(type_, str) else "about:blank"
        code = type_.removeprefix(PROBLEM_PREFIX) if type_.startswith(PROBLEM_PREFIX) else ""
        code = code if code and len(code) <= 64 else f"http-{status}"
        title = document.get("title")
        title = title if isinstance(title, str) else f"HTTP {status}"
        detail = document.get("detail")
        if not isinstance(detail, str) or not detail:
            detail = f"the registry answered HTTP {status}"
        detail = " ".join(detail.split())[:MAX_PROBLEM_DETAIL]
        extra = {
            k: v for k, v in document.items() if k not in ("type", "title", "status", "detail")
        }
        kind = problem_class(status, code)
        return kind(
            status,
            type_,
            title[:200],
            detail,
            code=code,
            retry_after=_retry_after(headers),
            extra=extra,
        )

    @property
    def retryable(self) -> bool:
        """The registry refused before applying anything: the same request may be resent."""
        return self.code in RETRYABLE_PROBLEMS


class InvalidRequest(ApiProblem, InvalidInput):
    """400, 413, 415, 422: the request was malformed or over a limit; fix it."""


class SignatureRefused(ApiProblem, SignatureError):
    """A signed message was refused: malformed, wrong signer, expired or its nonce reused."""


class ProblemNotFound(ApiProblem, NotFound):
    """404: no such good, entry, job or product (or it is not yours to know about)."""


class ProblemConflict(ApiProblem, Conflict):
    """409: the request contradicts the registry (a double sale, a revoked good...)."""


class NotAuthorized(ApiProblem):
    """401 or 403: missing, refused or insufficient credentials (the detail says which)."""

    diagnostics = "Check your API key and its scopes, or sign in with Ethereum again."
    exit_code = 13


class RetryLater(ApiProblem, StorageBusy):
    """429, 503 (or a gateway's 502, 504): rate limited, busy, not ready or not there;
    retry later, after ``retry_after`` seconds when the answer says."""

    diagnostics = "Retry later (after Retry-After seconds when the answer gave one)."


def problem_class(status: int, code: str) -> type[ApiProblem]:
    if code in SIGNATURE_PROBLEMS:
        return SignatureRefused
    if status in (401, 403):
        return NotAuthorized
    if status in (429, 502, 503, 504):  # 502 and 504: a gateway in front of the registry
        return RetryLater
    if status == 404:
        return ProblemNotFound
    if status == 409:
        return ProblemConflict
    if 400 <= status < 500:
        return InvalidRequest
    return ApiProblem


def _retry_after(headers: httpx2.Headers) -> int | None:
    value = headers.get("retry-after", "").strip()
    return int(value) if value.isdigit() and len(value) <= 9 else None


class RegistryUnreachable(TracemarkError):
    """The registry's API did not answer (refused, unresolvable, timed out, cut off)."""

    code = "registry-unreachable"
    diagnostics = "Check the registry's URL and your network, then try again."
    exit_code = 14


class UnexpectedAnswer(TracemarkError):
    """The registry answered something this client does not understand (a version skew?)."""

    code = "unexpected-answer"
    diagnostics = "Update tracemark: the registry may run a newer version."


__all__ = [
    "MAX_PROBLEM_DETAIL",
    "PROBLEM_PREFIX",
    "RETRYABLE_PROBLEMS",
    "SIGNATURE_PROBLEMS",
    "ApiProblem",
    "InvalidRequest",
    "NotAuthorized",
    "ProblemConflict",
    "ProblemNotFound",
    "RegistryUnreachable",
    "RetryLater",
    "SignatureRefused",
    "UnexpectedAnswer",
    "problem_class",
]
