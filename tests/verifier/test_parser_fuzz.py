"""The parsers of what a verifier reads from outside (bundles, exports, trust roots, creator
statements, transfer receipts), fuzzed: any byte string is refused with the parser's own
error and a reason, never a crash (an exception of any other class).

Hypothesis applies structured mutations to real documents made here by a real registry
(bytes flipped, cut or added; keys dropped, duplicated or retyped; deep nesting; huge
numbers and strings), with bounded examples so the module runs in seconds. Every file under
``tests/verifier/corpus/<parser>/`` is replayed on every run: inputs worth keeping (edge
cases, and anything a fuzzing run ever found) go there, named after what they probe.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
from eth_account import Account
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.receipts import receipt_out
from readmodels.bundles import build_absence, build_bundle
from readmodels.exports import ExportSelection, write_export
from registry.creator import CreatorKeys
from registry.db import create_db_engine
from registry.eip712 import DEV_DOMAIN
from registry.errors import TracemarkError
from registry.fingerprints import GoodType, Use
from registry.migrate import upgrade
from registry.royalty import RoyaltyPolicy
from registry.service import Registry
from registry.transfers import Party, TransferRequest
from tests.conftest import Clock
from tests.registry.helpers import registration
from tests.trust import trust_root_of
from verifier.absence import Absence, MalformedAbsence
from verifier.bundle import Bundle, MalformedBundle
from verifier.client import TracemarkClient
from verifier.exportformat import Export, MalformedExport, parse_evidence
from verifier.identity import CreatorStatement, MalformedStatement
from verifier.problems import UnexpectedAnswer
from verifier.schemas import ReceiptOut
from verifier.signedanswers import verify_receipt
from verifier.transport import Answer
from verifier.trust import MalformedTrustRoot, TrustPolicy, TrustRoot

CORPUS = Path(__file__).parent / "corpus"
MARKER = "\x00tracemark-fuzz-marker\x00"
#: Examples per parser and strategy: enough to reach every key and type, a few seconds in all.
EXAMPLES = 60


def _parse_receipt(raw: bytes) -> ReceiptOut:
    return TracemarkClient._model(ReceiptOut, Answer(200, httpx2.Headers(), raw))


@dataclass(frozen=True)
class Parser:
    name: str
    parse: Callable[[bytes], Any]
    #: The errors that are refusals; anything else is a crash.
    refusals: tuple[type[Exception], ...]


PARSERS = {
    parser.name: parser
    for parser in (
        Parser("bundle", Bundle.parse, (MalformedBundle,)),
        Parser("evidence", parse_evidence, (MalformedBundle, MalformedExport, MalformedAbsence)),
        Parser("absence", Absence.parse, (MalformedAbsence,)),
        Parser("export", Export.parse, (MalformedExport, MalformedBundle)),
        Parser("trust", TrustRoot.parse, (MalformedTrustRoot,)),
        Parser("statement", CreatorStatement.parse, (MalformedStatement,)),
        Parser("receipt", _parse_receipt, (UnexpectedAnswer,)),
    )
}


@dataclass(frozen=True)
class Seeds:
    """Real documents, one of each kind, and what a receipt is checked under."""

    documents: dict[str, bytes]
    trust: TrustPolicy


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> Seeds:
    directory = tmp_path_factory.mktemp("seeds")
    engine = create_db_engine(f"sqlite:///{directory / 'registry.db'}")
    upgrade(engine)
    clock = Clock()
    registry = Registry(
        engine,
        domain=DEV_DOMAIN,
        account=Account.create(),
        master_key=secrets.token_bytes(32),
        clock=clock,
    )
    creator = CreatorKeys(Account.create(), secrets.token_bytes(32))
    policy = RoyaltyPolicy.parse(
        {"recipients": [{"address": "0x" + "11" * 20, "bps": 500, "label": "studio"}]}
    )
    code = os.urandom(32)
    registry.register(
        registration(
            creator,
            clock(),
            fingerprint=code,
            good_type=GoodType.CODE,
            product="card",
            use=Use.SINGLE,
            policy=policy,
            metadata={"title": "a work", "tags": ["x", 1, None]},
        )
    )
    registry.sequence_all()
    agent = Party("cardhub", "agent-7")
    request = TransferRequest(
        platform="cardhub",
        good_type=GoodType.CODE,
        fingerprint=code,
        seller=Party(None, None),
        buyer=agent,
        price=None,
        currency=None,
        final=False,
        idempotency_key=None,
    )
    registry.transfer(request)
    resale = TransferRequest(
        platform="cardhub",
        good_type=GoodType.CODE,
        fingerprint=code,
        seller=agent,
        buyer=Party("cardhub", "player-1"),
        price=1_234,
        currency="EUR",
        final=True,
        idempotency_key=None,
    )
    receipt = json.dumps(receipt_out(registry.transfer(resale))).encode()
    bundle = build_bundle(registry, GoodType.CODE, code).to_json().encode()
    absence = build_absence(registry, GoodType.CODE, os.urandom(32)).to_json().encode()
    exported = write_export(
        registry, ExportSelection(creator=creator.address), directory / "export"
    )
    root = trust_root_of(registry)
    statement = CreatorStatement.signed(
        private_key=bytes(creator.account.key),
        domain="studio.example",
        name="Studio Example",
        issued_at=clock(),
        eip712_domain=DEV_DOMAIN,
    )
    documents = {
        "bundle": bundle,
        "evidence": bundle,
        "absence": absence,
        "export": exported.json_path.read_bytes(),
        "trust": root.to_json().encode(),
        "statement": statement.to_json().encode(),
        "receipt": receipt,
    }
    engine.dispose()
    return Seeds(documents, TrustPolicy.of(root))


def check(parser: Parser, raw: bytes, trust: TrustPolicy | None = None) -> Any:
    """Parse ``raw``: a value, or the parser's own refusal with a reason. Anything else fails."""
    try:
        parsed = parser.parse(raw)
    except parser.refusals as refusal:
        assert isinstance(refusal, TracemarkError)
        assert isinstance(refusal.detail, str) and refusal.detail.strip(), repr(refusal)
        assert "Traceback" not in refusal.detail
        assert len(refusal.detail) < 4_000, "a reason, not a dump of the input"
        return None
    except Exception as crash:  # the point of the test: anything else is a crash
        pytest.fail(f"{parser.name} crashed on {raw[:200]!r}: {type(crash).__name__}: {crash}")
    if parser.name == "receipt" and trust is not None:
        # A receipt that parses goes on to its offline check: a refusal there is fine, any
        # other exception is a crash of the check.
        with contextlib.suppress(TracemarkError):
            verify_receipt(parsed, trust)
    return parsed


def test_the_seeds_parse(seeds: Seeds) -> None:
    """The real documents are accepted, so mutations start from something valid."""
    for name, parser in PARSERS.items():
        assert check(parser, seeds.documents[name], seeds.trust) is not None, name
    verify_receipt(_parse_receipt(seeds.documents["receipt"]), seeds.trust)


# -- the committed corpus -----------------------------------------------------------------------


def _corpus() -> list[tuple[str, Path]]:
    return sorted(
        (parser, path)
        for parser in PARSERS
        for path in (CORPUS / parser).glob("*")
        if path.is_file()
    ) + sorted(("*", path) for path in (CORPUS / "any").glob("*") if path.is_file())


def test_the_corpus_is_there() -> None:
    assert len(_corpus()) >= 20
    assert {parser for parser, _ in _corpus()} >= {"*", "bundle", "trust", "statement"}


@pytest.mark.parametrize(("parser", "path"), _corpus(), ids=lambda v: getattr(v, "name", v))
def test_corpus_inputs_are_refused_with_a_reason_never_a_crash(
    parser: str, path: Path, seeds: Seeds
) -> None:
    raw = path.read_bytes()
    for name in PARSERS if parser == "*" else (parser,):
        check(PARSERS[name], raw, seeds.trust)


# -- structured mutations of real documents -----------------------------------------------------


class Pairs(list[tuple[str, Any]]):
    """An object written with its keys as given, duplicates included."""


def dumps(value: Any) -> str:
    if isinstance(value, Pairs):
        return "{" + ",".join(f"{json.dumps(k)}:{dumps(v)}" for k, v in value) + "}"
    if isinstance(value, dict):
        return dumps(Pairs(value.items()))
    if isinstance(value, list):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    return json.dumps(value)


def paths(value: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a decoded document, the root included."""
    found = [here]
    if isinstance(value, dict):
        for key, child in value.items():
            found += paths(child, (*here, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += paths(child, (*here, index))
    return found


def replace(document: Any, path: tuple[Any, ...], change: Callable[[Any], Any]) -> Any:
    if not path:
        return change(document)
    head, *rest = path
    if isinstance(document, dict):
        out: Any = dict(document)
    else:
        out = list(document)
    out[head] = replace(document[head], tuple(rest), change)
    return out


WRONG_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([2**64, 2**256, -1, 0, 10**40, 1e308, -0.0, 0.5]),
    st.text(max_size=40),
    st.sampled_from(["", "0x", "0x" + "g" * 64, "0x" + "00" * 32, "0x" + "ff" * 65, "\u0000"]),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


@st.composite
def mutated(draw: st.DrawFn, document: Any) -> bytes:
    """One structured mutation of a decoded document, written back as JSON text."""
    path = draw(st.sampled_from(paths(document)))
    target: Any = document
    for step in path:
        target = target[step]
    kind = draw(
        st.sampled_from(
            ["retype", "drop-key", "duplicate-key", "add-key", "nest", "huge-number", "huge-text"]
        )
    )
    if kind == "drop-key" and isinstance(target, dict) and target:
        key = draw(st.sampled_from(sorted(target)))
        changed = replace(document, path, lambda d: {k: v for k, v in d.items() if k != key})
    elif kind == "duplicate-key" and isinstance(target, dict) and target:
        key = draw(st.sampled_from(sorted(target)))
        other = draw(WRONG_VALUES)
        changed = replace(document, path, lambda d: Pairs([*d.items(), (key, other)]))
    elif kind == "add-key" and isinstance(target, dict):
        name = draw(st.sampled_from(["extra", "format", "__proto__", "later_entries", "x" * 300]))
        changed = replace(document, path, lambda d: {**d, name: draw(WRONG_VALUES)})
    elif kind in ("nest", "huge-number"):
        # Written as raw text in place of a marker: too deep or too long to build as values.
        size = draw(st.sampled_from([1, 2, 127, 129, 5_000] if kind == "nest" else [30, 4_301]))
        text = "[" * size + "0" + "]" * size if kind == "nest" else "9" * size
        marked = dumps(replace(document, path, lambda v: MARKER))
        return marked.replace(json.dumps(MARKER), text).encode()
    elif kind == "huge-text":
        changed = replace(document, path, lambda v: "a" * draw(st.sampled_from([300, 70_000])))
    else:
        changed = replace(document, path, lambda v: draw(WRONG_VALUES))
    return dumps(changed).encode()


@st.composite
def byte_mutated(draw: st.DrawFn, raw: bytes) -> bytes:
    """Byte-level damage: a flipped bit, a cut, inserted or trailing bytes, another encoding."""
    kind = draw(st.sampled_from(["flip", "cut", "insert", "trail", "utf16", "bom"]))
    if kind == "flip":
        at = draw(st.integers(0, len(raw) - 1))
        bit = draw(st.integers(0, 7))
        return raw[:at] + bytes([raw[at] ^ (1 << bit)]) + raw[at + 1 :]
    if kind == "cut":
        return raw[: draw(st.integers(0, len(raw) - 1))]
    if kind == "insert":
        at = draw(st.integers(0, len(raw)))
        return raw[:at] + draw(st.binary(min_size=1, max_size=8)) + raw[at:]
    if kind == "trail":
        return raw + draw(st.sampled_from([b" x", b"{}", b"\x00", b"\n{}", b"[]"]))
    if kind == "utf16":
        return raw.decode("utf-8").encode("utf-16")
    return b"\xef\xbb\xbf" + raw


FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,  # the same examples every run; widen with --hypothesis-seed locally
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_structured_mutations_of_real_documents_never_crash(name: str, seeds: Seeds) -> None:
    document = json.loads(seeds.documents[name])

    @FUZZ
    @given(mutated(document))
    def run(raw: bytes) -> None:
        check(PARSERS[name], raw, seeds.trust)

    run()


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_byte_mutations_of_real_documents_never_crash(name: str, seeds: Seeds) -> None:
    @FUZZ
    @given(byte_mutated(seeds.documents[name]))
    def run(raw: bytes) -> None:
        check(PARSERS[name], raw, seeds.trust)

    run()


@FUZZ
@given(st.binary(max_size=256))
def test_arbitrary_bytes_never_crash_any_parser(raw: bytes) -> None:
    for parser in PARSERS.values():
        check(parser, raw)
