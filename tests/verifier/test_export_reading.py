"""Reading and checking a whole export takes shortcuts for speed (bench/trust_verify_bench.py):
the cyclic collector paused, the depth check's adjacent quotes, one bundle copied per good, a
good's name made only for a failure, a leaf hashed without building a ``LeafData``. What they
must not change: a duplicate key, a malformed hex field or a good given twice is refused as
deep in an export as near its top, with the same error naming where; a leaf's hash, or its
refusal, is ``LeafData``'s."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from readmodels.exports import ExportSelection, write_export
from registry.errors import InvalidInput
from registry.fingerprints import GoodType
from registry.leaf import LEAF_VERSION, EntryKind, LeafData, encode_leaf
from registry.merkle import hash_leaf
from tests.trust import trust_root_of
from tests.verifier.conftest import CODES, World
from verifier.errors import BundleInvalid
from verifier.export import check_export
from verifier.exportformat import Export, MalformedExport, parse_evidence
from verifier.trust import TrustPolicy

Document = dict[str, Any]


@pytest.fixture
def exported(world: World, tmp_path: Path) -> Document:
    """Six goods under one head: five codes of a batch, then a file."""
    world.register_codes(CODES)
    world.register_file()
    world.anchor()
    selection = ExportSelection(creator=world.creator.address)
    result = write_export(world.registry, selection, tmp_path / "out")
    document: Document = json.loads(result.json_path.read_text())
    assert len(document["goods"]) == len(CODES) + 1
    return document


def _refusal(text: str) -> str:
    with pytest.raises(MalformedExport) as caught:
        parse_evidence(text)
    return caught.value.detail


def _with_duplicate(document: Document, where: dict[str, Any], key: str) -> str:
    """The text of ``document`` with ``key`` given a second time in its object ``where``."""
    where["__second__"] = "x"
    text = json.dumps(document)
    where.pop("__second__")
    assert text.count('"__second__": "x"') == 1
    return text.replace('"__second__": "x"', f'"{key}": "x"')


def test_a_duplicate_key_is_refused_as_deep_as_at_the_top(exported: Document) -> None:
    shallow = _with_duplicate(exported, exported, "format")
    message = exported["goods"][-1]["entry"]["payload"]["signed"]["message"]
    deep = _with_duplicate(exported, message, "product")
    assert _refusal(shallow) == "evidence must be one JSON document: duplicate key 'format'"
    assert _refusal(deep) == "evidence must be one JSON document: duplicate key 'product'"


@pytest.mark.parametrize(
    "bad_node",
    ["0x" + "g" + "0" * 63, "0x" + " " + "0" * 63, "0x" + "0" * 62 + " 0", "0X" + "0" * 64],
    ids=["not-hex", "leading-space", "inner-space", "upper-x"],
)
def test_a_malformed_hex_field_is_refused_as_deep_as_at_the_top(
    exported: Document, bad_node: str
) -> None:
    for good in (0, len(exported["goods"]) - 1):
        document = json.loads(json.dumps(exported))
        proof = document["goods"][good]["entry"]["inclusion_proof"]
        proof[-1] = bad_node
        where = f"goods[{good}].entry.inclusion_proof[{len(proof) - 1}]"
        assert _refusal(json.dumps(document)) == (
            f"malformed export: {where}: must be 0x and 64 hex digits"
        )


def test_a_good_given_twice_is_refused_by_name(world: World, exported: Document) -> None:
    exported["goods"].append(exported["goods"][2])
    export = Export.parse(json.dumps(exported))
    with pytest.raises(BundleInvalid) as caught:
        check_export(export, TrustPolicy.of(trust_root_of(world.registry)), None)
    fingerprint = exported["goods"][2]["good"]["fingerprint"]
    assert (caught.value.step, caught.value.detail) == (
        "shape",
        f"code {fingerprint} is in the export twice",
    )


@pytest.mark.parametrize("kind", list(EntryKind), ids=lambda kind: kind.name)
@pytest.mark.parametrize("good_type", list(GoodType), ids=lambda good_type: good_type.name)
def test_a_goods_leaf_hashed_directly_is_leafdatas_hash_or_refusal(
    kind: EntryKind, good_type: GoodType
) -> None:
    # entrycheck.entry_leaf_hash encodes a good's entry (always with a good type) without LeafData.
    fields = (bytes(range(32)), bytes(range(20)), bytes(range(32, 64)), 1_790_000_000)
    try:
        expected: bytes | str = LeafData(LEAF_VERSION, kind, good_type, *fields).leaf_hash()
    except InvalidInput as exc:
        expected = exc.detail
    try:
        direct: bytes | str = hash_leaf(encode_leaf(kind, good_type, *fields))
    except InvalidInput as exc:
        direct = exc.detail
    assert direct == expected
