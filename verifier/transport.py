"""The client's HTTP transport: credential, retries, bounded reads, problem+json as exceptions."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit

import httpx2
from pydantic import BaseModel, ValidationError

from registry.errors import (
    ConfigurationError,
    InvalidInput,
)
from registry.fingerprints import GoodType, fingerprint_hex, parse_fingerprint, parse_good_type
from verifier.problems import (
    ApiProblem,
    RegistryUnreachable,
    UnexpectedAnswer,
)
from verifier.schemas import (
    GoodTypeName,
)

DEFAULT_TIMEOUT: Final = 10.0
"""Seconds to wait for the registry to connect, accept a chunk or answer (each, not in all)."""

MAX_RESPONSE_BYTES: Final = 16 * 1024 * 1024
"""Largest answer read into memory (a page of 200 receipts is well under 1 MiB).

Threat: a hostile or broken server (or a proxy in front of it) streaming without end would
exhaust the client's memory. Bundles have their own bound, ``MAX_BUNDLE_BYTES``.
"""

MAX_RETRY_WAIT: Final = 30.0
"""Longest a retry waits for ``Retry-After`` (seconds); a longer wait is the caller's call."""

_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,128}\Z")

M = TypeVar("M", bound=BaseModel)


def invalid_fields(exc: ValidationError) -> str:
    """The fields a request model refused, as ``a, b.c`` for the caller's error."""
    return ", ".join(".".join(map(str, e["loc"])) for e in exc.errors())


@dataclass(frozen=True)
class Answer:
    status: int
    headers: httpx2.Headers
    body: bytes


def _without_new_members(body: bytes, exc: ValidationError) -> bytes | None:
    """The answer without the members this client's models do not know, when those are all
    that failed (None otherwise). The models forbid unknown members, which is right for what
    the registry accepts; but a registry newer than this client adds members to its answers
    (additively, e.g. a verify answer's ``credit``), and a client pinned by a platform must
    keep reading them. Only members are dropped, never a value of a wrong type, and only on
    this slow path, so a well-formed answer costs nothing more."""
    errors = exc.errors()
    if not errors or any(e["type"] != "extra_forbidden" for e in errors):
        return None
    document = json.loads(body)
    for error in errors:
        *path, member = error["loc"]
        holder = document
        for step in path:
            by_name = isinstance(holder, dict) and isinstance(step, str) and step in holder
            by_index = isinstance(holder, list) and isinstance(step, int) and step < len(holder)
            if not (by_name or by_index):
                return None  # a union member's tag or a path this reading cannot follow
            holder = holder[step]
        if not (isinstance(holder, dict) and isinstance(member, str) and member in holder):
            return None
        del holder[member]
    return json.dumps(document).encode()


_GOOD_TYPE_NAMES: Final[dict[GoodType, GoodTypeName]] = {
    GoodType.FILE: "file",
    GoodType.CODE: "code",
    GoodType.ITEM: "item",
}


def good_type_name(good_type: GoodType | str) -> GoodTypeName:
    parsed = good_type if isinstance(good_type, GoodType) else parse_good_type(good_type)
    return _GOOD_TYPE_NAMES[parsed]


def fingerprint_text(fingerprint: bytes | str) -> str:
    if isinstance(fingerprint, bytes):
        return fingerprint_hex(fingerprint)
    return fingerprint_hex(parse_fingerprint(fingerprint))


def request_model(model: type[M], document: Mapping[str, Any], refusal: str) -> M:
    """``document`` read as the request ``model`` the API takes, before anything is sent.

    Bad input is the caller's ``InvalidInput`` (``refusal``, then the fields refused), never a
    pydantic error out of the client: every call that builds a request checks it here.
    """
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        raise InvalidInput(f"{refusal}: {invalid_fields(exc)}") from None


def split_base_url(url: str) -> tuple[str, str]:
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


class RegistryTransport:
    """One registry's HTTP API at ``base_url``: the credential, retries, bounded reads, and
    problem+json answers raised as ``ApiProblem``. The calls themselves are in the mixins
    ``PlatformCalls``, ``CreatorCalls`` and ``AuditorCalls``; ``TracemarkClient`` has them all."""

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
        self.base_url, self.authority = split_base_url(base_url)
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

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

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
    ) -> Answer:
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
                    answer = Answer(response.status_code, response.headers, data)
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

    def _post(
        self,
        path: str,
        document: Any,
        answer_model: type[M],
        *,
        idempotency_key: str | None = None,
    ) -> M:
        """POST a JSON document; the answer read as ``answer_model``."""
        answer = self._send("POST", path, document=document, idempotency_key=idempotency_key)
        return self._model(answer_model, answer)

    @staticmethod
    def _model(model: type[M], answer: Answer) -> M:
        try:
            return model.model_validate_json(answer.body)
        except ValidationError as exc:
            newer = _without_new_members(answer.body, exc)
            if newer is not None:
                try:
                    return model.model_validate_json(newer)
                except ValidationError as again:
                    exc = again
            where = "; ".join(
                ".".join(str(p) for p in e["loc"]) + ": " + e["msg"] for e in exc.errors()[:3]
            )
            raise UnexpectedAnswer(
                f"the registry's answer is not a {model.__name__}: {where}"
            ) from None
