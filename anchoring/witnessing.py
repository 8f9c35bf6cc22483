"""Witnessing: the registry asks its policy's witnesses to cosign each checkpoint (C2SP
tlog-witness) and publishes it only when their cosignatures reach the quorum (tlog-policy).

One round takes the newest unpublished checkpoint (``registry.checkpoints``) and POSTs
``add-checkpoint`` to every witness of the policy at once: ``old`` is the size that witness
last cosigned for us, with the consistency proof from it. A 409 names the witness's real size
(``text/x.tlog.size``): the request is sent once more with a proof from that size. Each
returned cosignature is verified under the policy's vkey for that witness before it counts.
At the quorum the cosignatures are stored and the checkpoint is published (served, then
anchored); below it nothing is published and the alarm names each witness that failed and
why: a WARNING line, the per-witness failure counters (``checkpoint_witnesses``) that
``/readyz`` reports, and this object's counters.

NOTE: it lives in ``anchoring`` beside the chain worker, not in ``registry``: it is the
registry's other outbound conversation (an HTTP client with timeouts, a loop with back-off),
and the registry package makes no network calls; what it stores is ``registry.checkpoints``.
"""

from __future__ import annotations

import base64
import logging
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlsplit

import httpx2
from sqlalchemy import Connection

from registry import checkpoints
from registry.checkpoints import SignedCheckpoint
from registry.cosignature import cosignature_timestamp
from registry.db import read_transaction, write_transaction
from registry.errors import ConfigurationError, LeaseLost
from registry.lease import Lease
from registry.note import NoteError, NoteSignature, parse_signature_lines
from registry.service import Registry
from registry.witnesspolicy import PolicyWitness, QuorumNotReached, WitnessPolicy

logger = logging.getLogger("tracemark.witnessing")

CONNECT_TIMEOUT: Final = 2.0
"""Seconds to connect to a witness. Threat: a witness that is down stalls publishing."""
REQUEST_TIMEOUT: Final = 10.0
"""Seconds a witness may take to accept the request or send each part of its answer (it
verifies, signs and fsyncs before answering)."""
MAX_ANSWER_BYTES: Final = 64 * 1024
"""Largest witness answer read. A few cosignature lines are ~3.5 KB each (ML-DSA-44); more is
a broken or hostile witness filling our memory."""
MAX_PARALLEL: Final = 16
"""Witnesses asked at the same time (a policy supports at least 32; the rest wait a turn)."""
MAX_BACKOFF_SECONDS: Final = 30.0
"""Longest pause between rounds while the quorum is not reached."""
SIZE_MEDIA_TYPE: Final = "text/x.tlog.size"
_MAX_DETAIL = 200


class _Refused(Exception):
    """This witness gave no usable cosignature; the message says why, for the alarm."""


@dataclass(frozen=True)
class WitnessOutcome:
    """One witness's part of a round: its verified cosignature lines, or why there are none."""

    name: str
    cosignatures: tuple[NoteSignature, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class WitnessingRound:
    """What one round did for the checkpoint of ``size``."""

    size: int
    cosigned: tuple[str, ...]
    #: Witness name -> why it did not cosign.
    failures: Mapping[str, str]
    published: bool
    #: Set when the quorum was not reached: the alarm's text.
    alarm: str | None = None


@dataclass
class WitnessingCounters:
    """Counters of this process's rounds (a dashboard's metrics)."""

    rounds: int = 0
    published: int = 0
    below_quorum: int = 0
    failures: Counter[str] = field(default_factory=Counter)


def _check_url(witness: PolicyWitness) -> str:
    if witness.url is None:
        raise ConfigurationError(f"witness {witness.name!r} has no submission URL in the policy")
    parts = urlsplit(witness.url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(
            f"witness {witness.name!r}: the submission URL must be http(s)://host[/prefix]"
        )
    return witness.url.rstrip("/") + "/add-checkpoint"


def _printable(data: bytes) -> str:
    text = data.decode("utf-8", "replace")
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())[:_MAX_DETAIL]


def add_checkpoint_body(old: int, proof: Sequence[bytes], signed: SignedCheckpoint) -> bytes:
    """The tlog-witness request: ``old N``, one base64 hash a line, a blank line, the note."""
    lines = [f"old {old}\n"] + [base64.b64encode(node).decode() + "\n" for node in proof]
    return ("".join(lines) + "\n").encode() + signed.note.to_bytes()


class Witnessing:
    """Asks the policy's witnesses about the newest unpublished checkpoint, one round a step."""

    def __init__(
        self,
        registry: Registry,
        policy: WitnessPolicy,
        *,
        http: httpx2.Client | None = None,
        clock: Callable[[], int] | None = None,
    ) -> None:
        self.registry = registry
        self.policy = policy
        self.clock = clock or registry.clock
        self._urls = {witness.name: _check_url(witness) for witness in policy.witnesses}
        self._http = http or httpx2.Client(
            timeout=httpx2.Timeout(REQUEST_TIMEOUT, connect=CONNECT_TIMEOUT),
            follow_redirects=False,
        )
        self.counters = WitnessingCounters()
        self._last_alarm: str | None = None
        #: Run first in the transaction that records a round (``registry.lease.Lease.fence``):
        #: a process that lost the witnessing role records and publishes nothing.
        self.fence: Callable[[Connection], None] = lambda conn: None

    def close(self) -> None:
        """Close the HTTP client (its pooled sockets): ``run_witnessing`` does at its end;
        a one-off round uses ``with Witnessing(...) as witnessing``."""
        self._http.close()

    def __enter__(self) -> Witnessing:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- one round ---------------------------------------------------------------------------

    def step(self) -> WitnessingRound | None:
        """One round for the newest unpublished checkpoint (None: nothing waits)."""
        with read_transaction(self.registry.engine) as conn:
            signed = checkpoints.newest_unpublished_checkpoint(conn)
            if signed is None:
                return None
            olds = {
                w.name: checkpoints.witness_record(conn, w.verifier).tree_size
                for w in self.policy.witnesses
            }
        with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(olds) or 1)) as pool:
            outcomes = list(
                pool.map(lambda w: self._ask(w, signed, olds[w.name]), self.policy.witnesses)
            )
        return self._conclude(signed, outcomes)

    def _conclude(
        self, signed: SignedCheckpoint, outcomes: Sequence[WitnessOutcome]
    ) -> WitnessingRound:
        size, now = signed.checkpoint.size, self.clock()
        failures = {o.name: o.error for o in outcomes if o.error is not None}
        cosignatures = [line for o in outcomes for line in o.cosignatures]
        alarm = None
        with write_transaction(self.registry.engine) as conn:
            self.fence(conn)
            for outcome in outcomes:
                verifier = self.policy.witness(outcome.name).verifier
                if outcome.error is None:
                    checkpoints.record_cosigned(conn, verifier, size, now=now)
                else:
                    checkpoints.record_witness_failure(conn, verifier, outcome.error, now=now)
            try:
                # The policy decides on the whole note: each line verified again, the quorum.
                cosigned = self.policy.check(signed.note.with_signatures(*cosignatures))
            except QuorumNotReached as exc:
                cosigned, alarm = (), exc.detail
            except NoteError as exc:  # a listed log did not sign: the policy names another
                cosigned, alarm = (), f"the policy refuses the checkpoint: {exc.detail}"
            if alarm is None:
                checkpoints.publish_checkpoint(conn, size, cosignatures, now=now)
        self._count(failures, published=alarm is None)
        self._report(size, failures, alarm)
        return WitnessingRound(size, cosigned, failures, alarm is None, alarm)

    def _count(self, failures: Mapping[str, str], *, published: bool) -> None:
        self.counters.rounds += 1
        self.counters.failures.update(failures.keys())
        if published:
            self.counters.published += 1
        else:
            self.counters.below_quorum += 1

    def _report(self, size: int, failures: Mapping[str, str], alarm: str | None) -> None:
        why = "; ".join(f"{name}: {error}" for name, error in failures.items())
        if alarm is not None:
            text = f"checkpoint {size} NOT published: {alarm}" + (f" ({why})" if why else "")
            # The same alarm again (a witness still down) is logged once, then at DEBUG.
            level = logging.DEBUG if text == self._last_alarm else logging.WARNING
            logger.log(level, "ALERT witnessing: %s", text)
            self._last_alarm = text
            return
        self._last_alarm = None
        if failures:
            logger.warning("witnessing: checkpoint %d published; failed: %s", size, why)
        else:
            logger.info("witnessing: checkpoint %d published, cosigned by all", size)

    # -- one witness ----------------------------------------------------------------------------

    def _ask(self, witness: PolicyWitness, signed: SignedCheckpoint, old: int) -> WitnessOutcome:
        try:
            return WitnessOutcome(witness.name, self._cosign(witness, signed, old))
        except _Refused as exc:
            return WitnessOutcome(witness.name, error=str(exc))

    def _cosign(
        self, witness: PolicyWitness, signed: SignedCheckpoint, old: int
    ) -> tuple[NoteSignature, ...]:
        size = signed.checkpoint.size
        # A recorded size beyond this checkpoint (our database restored from a backup?): ask
        # from 0, and the witness's 409 tells its real size.
        status, media_type, body = self._post(witness, signed, old if old <= size else 0)
        if status == 409:
            theirs = _conflict_size(media_type, body)
            if theirs > size:
                raise _Refused(
                    f"it cosigned size {theirs}, beyond this checkpoint's {size}: the log "
                    "was rolled back or forked"
                )
            status, media_type, body = self._post(witness, signed, theirs)
            if status == 409:
                raise _Refused(f"HTTP 409 again after retrying from size {theirs}")
        if status != 200:
            raise _Refused(f"HTTP {status}: {_printable(body) or 'no reason given'}")
        return self._verified(witness, signed, body)

    def _post(
        self, witness: PolicyWitness, signed: SignedCheckpoint, old: int
    ) -> tuple[int, str, bytes]:
        size = signed.checkpoint.size
        proof = [] if old in (0, size) else self.registry.consistency_proof(old, size)
        content = add_checkpoint_body(old, proof, signed)
        try:
            with self._http.stream("POST", self._urls[witness.name], content=content) as answer:
                declared = answer.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > MAX_ANSWER_BYTES:
                    raise _Refused(f"its answer is over {MAX_ANSWER_BYTES} bytes")
                data = bytearray()
                for chunk in answer.iter_bytes():
                    data += chunk
                    if len(data) > MAX_ANSWER_BYTES:
                        raise _Refused(f"its answer is over {MAX_ANSWER_BYTES} bytes")
                media_type = answer.headers.get("content-type", "").split(";")[0].strip()
                return answer.status_code, media_type, bytes(data)
        except httpx2.TimeoutException:
            raise _Refused("no answer within the timeout") from None
        except httpx2.TransportError as exc:
            # The exception's type and text only: the URL may carry credentials.
            reason = " ".join(str(exc).split())[:_MAX_DETAIL] or type(exc).__name__
            raise _Refused(f"unreachable ({type(exc).__name__}: {reason})") from None

    def _verified(
        self, witness: PolicyWitness, signed: SignedCheckpoint, body: bytes
    ) -> tuple[NoteSignature, ...]:
        """The answer's lines from this witness's policy key, each verified; lines from its
        other keys (or anyone else's) are ignored, as tlog-witness says."""
        try:
            lines = parse_signature_lines(body)
        except NoteError as exc:
            raise _Refused(f"a malformed answer: {exc.detail}") from None
        verifier = witness.verifier
        mine = tuple(s for s in lines if (s.name, s.key_id) == (verifier.name, verifier.key_id))
        if not mine:
            raise _Refused(f"no cosignature from its key {verifier.name} ({verifier.key_id:08x})")
        for line in mine:
            if cosignature_timestamp(line.signature) == 0:
                raise _Refused("a cosignature without a timestamp (tlog-witness forbids it)")
            if not verifier.verify(signed.note.text, line.signature):
                raise _Refused("a bad cosignature: it does not verify under the policy's key")
        return mine


def _conflict_size(media_type: str, body: bytes) -> int:
    """The witness's size from a 409 (tlog-witness: decimal, newline, ``text/x.tlog.size``)."""
    text = body.decode("ascii", "replace")
    digits = text[:-1] if text.endswith("\n") else ""
    if media_type != SIZE_MEDIA_TYPE or not (digits.isascii() and digits.isdigit()):
        raise _Refused(f"HTTP 409 without a {SIZE_MEDIA_TYPE} size: {_printable(body)!r}")
    if digits != str(int(digits)) or len(digits) > 20:
        raise _Refused("HTTP 409 with a malformed size")
    return int(digits)


def run_witnessing(
    witnessing: Witnessing,
    *,
    interval: float,
    stop: threading.Event,
    lease: Lease | None = None,
) -> None:
    """Rounds until ``stop`` is set: at once while checkpoints get published, every
    ``interval`` when none waits, backing off (to ``MAX_BACKOFF_SECONDS``) below the quorum.

    With a ``lease`` (kept by the caller) only its holder asks the witnesses, and each
    round's record is fenced by it."""
    backoff = interval
    if lease is not None:
        witnessing.fence = lease.fence
    try:
        while not stop.is_set():
            if lease is not None and not lease.held:
                stop.wait(min(interval, lease.interval))  # another process witnesses
                continue
            try:
                done = witnessing.step()
            except LeaseLost as exc:
                logger.warning("witnessing stopped: %s", exc.detail)
                continue
            except Exception:
                logger.exception("witnessing round failed; retrying in %.1fs", backoff)
                done = None
                failed = True
            else:
                failed = done is not None and not done.published
            if done is not None and done.published:
                backoff = interval
                continue  # a newer checkpoint may already wait
            if failed:
                stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
            else:
                backoff = interval
                stop.wait(interval)
    finally:
        witnessing.close()


__all__ = [
    "CONNECT_TIMEOUT",
    "MAX_ANSWER_BYTES",
    "REQUEST_TIMEOUT",
    "WitnessOutcome",
    "Witnessing",
    "WitnessingCounters",
    "WitnessingRound",
    "add_checkpoint_body",
    "run_witnessing",
]
