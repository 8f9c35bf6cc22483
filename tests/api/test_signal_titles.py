"""Every risk signal's title and one-sentence meaning in both catalogues (issue 18 item 5).

The codes are read from the code, never from a list kept here: every code the rules raise
(``readmodels.signals.WEIGHTS``, the risk index's weights) and every code a verify answer's
own decision names (the ``VerdictSignal("...")`` literals of ``readmodels.authenticity``, read
from its syntax tree). A rule added without a title in either language fails here, and so does
a title left behind for a code no rule raises any more. No server, no browser.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from pathlib import Path

import pytest

import readmodels.authenticity
from api.languages import CHINESE, ENGLISH, LANGUAGES, Translator, catalogue, signal_titles
from readmodels.compliancecsv import CSV_COLUMNS
from readmodels.signals import ANOMALY, FAN_IN, WEIGHTS

PARTS = ("title", "meaning")
#: A title is a few words: what a filter's option and a table's cell can hold.
MAX_TITLE = {ENGLISH: 40, CHINESE: 12}
_SENTENCE_END = {ENGLISH: ".", CHINESE: "。"}


def verdict_signal_codes() -> set[str]:
    """The codes ``readmodels.authenticity.decide`` names (its ``VerdictSignal`` calls)."""
    tree = ast.parse(Path(readmodels.authenticity.__file__).read_text(encoding="utf-8"))
    return {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "VerdictSignal"
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    }


def signal_codes() -> set[str]:
    """Every signal code a person may read on a page or in a report."""
    return set(WEIGHTS) | verdict_signal_codes()


def missing_texts(codes: set[str], texts: Mapping[str, str]) -> list[str]:
    return sorted(
        f"signal.{code}.{part}"
        for code in codes
        for part in PARTS
        if not texts.get(f"signal.{code}.{part}", "").strip()
    )


def test_the_codes_are_read_from_the_rules_and_the_decision() -> None:
    codes = signal_codes()
    # The rules' codes, the index's explanation, and the decision's own.
    assert {FAN_IN, ANOMALY, "sold-by-non-holder", "unattested-seller"} <= codes
    assert {"unregistered", "revoked", "consumed", "creator-mismatch"} <= codes
    assert len(verdict_signal_codes()) >= 7
    assert all(re.fullmatch(r"[a-z]+(?:-[a-z]+)*", code) for code in codes), sorted(codes)


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_signal_code_has_a_title_and_a_meaning(language: str) -> None:
    assert missing_texts(signal_codes(), catalogue(language)) == []


@pytest.mark.parametrize("language", LANGUAGES)
def test_no_text_for_a_code_nothing_raises(language: str) -> None:
    named = {key.split(".")[1] for key in catalogue(language) if key.startswith("signal.")}
    assert named - signal_codes() == set()
    # A market signal's detail templates (``signal.<code>.detail[.<variant>]``) are checked
    # against the rules that say them: tests/readmodels/test_signal_details.py.
    keys = {k for k in catalogue(language) if k.startswith("signal.") and ".detail" not in k}
    assert all(key.count(".") == 2 and key.rsplit(".", 1)[1] in PARTS for key in keys)


@pytest.mark.parametrize("language", LANGUAGES)
def test_titles_are_short_distinct_and_meanings_one_sentence(language: str) -> None:
    texts = catalogue(language)
    titles = {code: texts[f"signal.{code}.title"] for code in signal_codes()}
    # Two codes with one title could not be told apart in the audit page's filter.
    assert len(set(titles.values())) == len(titles)
    end = _SENTENCE_END[language]
    for code, title in titles.items():
        assert len(title) <= MAX_TITLE[language] and "\n" not in title, code
        assert not title.endswith(end), code
        meaning = texts[f"signal.{code}.meaning"]
        # One plain sentence: it ends once, at its end, and carries no markup.
        assert meaning.endswith(end) and meaning.count(end) == 1, (code, meaning)
        assert "<" not in meaning and "<" not in title, code
    if language == CHINESE:
        for code, title in titles.items():
            assert re.search(r"[\u4e00-\u9fff]", title), code


def test_a_missing_title_is_found() -> None:
    """Mutation probe: the walk reports a catalogue with one key deleted."""
    texts = dict(catalogue(CHINESE))
    del texts[f"signal.{FAN_IN}.title"]
    assert missing_texts(signal_codes(), texts) == [f"signal.{FAN_IN}.title"]
    texts[f"signal.{FAN_IN}.title"] = " "
    assert missing_texts(signal_codes(), texts) == [f"signal.{FAN_IN}.title"]


def test_the_pages_scripts_get_the_signals_texts() -> None:
    """tm.js names a signal from the page's embedded texts: they carry every title."""
    for language in LANGUAGES:
        given = Translator(language).script_texts()
        assert missing_texts(signal_codes(), given) == []
        assert given[f"signal.{FAN_IN}.title"] == catalogue(language)[f"signal.{FAN_IN}.title"]
    assert Translator(CHINESE).script_texts()["signal.fan-in.title"] == "多源汇入"


def test_the_compliance_csv_gets_every_rules_title_in_both_languages() -> None:
    """The CSV's title columns (``readmodels.compliancecsv``) come from these catalogues."""
    titles = signal_titles()
    assert set(WEIGHTS) <= set(titles)
    for code in WEIGHTS:
        assert titles[code] == (
            catalogue(ENGLISH)[f"signal.{code}.title"],
            catalogue(CHINESE)[f"signal.{code}.title"],
        )
    assert titles[FAN_IN] == ("Buying from many sources", "多源汇入")
    assert CSV_COLUMNS[-2:] == ("title_en", "title_zh")
