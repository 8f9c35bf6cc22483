"""The client's own errors: a failed or unfinished bulk job, a refused sign-in."""

from __future__ import annotations

from typing import Final

import registry.distribution_policy  # noqa: F401 (registers NotADistributor)
from registry.errors import (
    ConfigurationError,
    Conflict,
    InvalidInput,
    NotFound,
    StorageBusy,
    TracemarkError,
)
from verifier.problems import (
    PROBLEM_PREFIX,
    ApiProblem,
    problem_class,
)
from verifier.schemas import (
    JobOut,
)


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
        status = status_of(code)
        self.problem: ApiProblem = problem_class(status, code)(
            status, PROBLEM_PREFIX + code, "Bulk job failed", detail, code=code
        )


def status_of(code: str) -> int:
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


def registry_error_classes() -> dict[str, type[TracemarkError]]:
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


#: The registry's domain errors by code. NOTE: built from the error classes loaded when this
#: module is imported (``registry.errors`` and ``registry.distribution_policy``, imported above
#: for that reason), exactly the set the client loaded before it was split.
_REGISTRY_ERRORS: Final = registry_error_classes()
