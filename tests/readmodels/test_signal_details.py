"""A market signal's detail in the reader's language (``readmodels.signals.DetailPart``): every
rule says its detail as catalogue templates beside its English sentence.

Read from the syntax tree of ``readmodels/``: every ``says(CODE, "variant", name=...)`` call
(the only way a part is made), and every ``Signal(...)``/``good_signal(...)``. Every signal
code has a template, every signal is made with its parts, both catalogues carry each template
with exactly the parameters the call passes, and no catalogue template is left that no rule
says. Then the rules themselves (the pure rule tests' scenarios, run again here): the English
template says what the English detail says. No database, no browser (the page is
tests/web/test_languages_page.py)."""

from __future__ import annotations

import ast
import inspect
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import readmodels
from api.languages import CHINESE, ENGLISH, LANGUAGES, catalogue
from readmodels import rules
from readmodels import signals as S

READMODELS = Path(readmodels.__file__).parent
PLACEHOLDER = re.compile(r"\{(\w+)\}")
DETAIL_KEY = re.compile(r"^signal\.[a-z-]+\.detail(\.[a-z-]+)?$")
#: The codes' constants (``DUPLICATE_CLAIM = "duplicate-claim"``) a call names.
CODES = {
    name: value
    for name, value in vars(S).items()
    if name.isupper() and isinstance(value, str) and value in S.WEIGHTS
}


def _calls(name: str) -> list[tuple[str, ast.Call]]:
    found = []
    for path in sorted(READMODELS.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            called = isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            if called and node.func.id == name:  # type: ignore[attr-defined]
                found.append((path.name, node))  # type: ignore[arg-type]
    return found


def emitted() -> dict[str, set[str]]:
    """Each template key a rule says, and the parameters it passes."""
    keys: dict[str, set[str]] = {}
    for where, call in _calls("says"):
        said = f"{where}: {ast.unparse(call)}"
        code, *variant = call.args
        assert isinstance(code, ast.Name) and code.id in CODES, said
        assert len(variant) <= 1, said
        suffix = ""
        if variant:
            assert isinstance(variant[0], ast.Constant) and isinstance(variant[0].value, str)
            suffix = f".{variant[0].value}"
        names = {keyword.arg for keyword in call.keywords}
        assert None not in names, f"{said}: name each parameter (no **)"
        key = f"signal.{CODES[code.id]}.detail{suffix}"
        assert keys.setdefault(key, names) == names, f"{said}: {key} said with other names"
    return keys  # type: ignore[return-value]


def test_every_code_says_its_detail_as_a_template() -> None:
    keys = emitted()
    codes = {key.split(".")[1] for key in keys}
    assert codes == set(S.WEIGHTS), sorted(set(S.WEIGHTS) ^ codes)


def test_every_signal_is_made_with_its_parts() -> None:
    """No rule makes a signal without saying its detail as templates (``message``)."""
    for where, call in _calls("Signal"):
        given = len(call.args) >= 7 or any(k.arg == "message" for k in call.keywords)
        assert given, f"{where}: {ast.unparse(call)[:120]}"
    for where, call in _calls("good_signal"):
        given = len(call.args) >= 6 or any(isinstance(a, ast.Starred) for a in call.args)
        assert given, f"{where}: {ast.unparse(call)[:120]}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_each_template_takes_exactly_the_params_the_rule_passes(language: str) -> None:
    texts = catalogue(language)
    for key, names in emitted().items():
        assert texts.get(key, "").strip(), (language, key)
        assert set(PLACEHOLDER.findall(texts[key])) == names, (language, key)
    # And no template is left that no rule says (a renamed variant would leave one).
    templates = {key for key in texts if DETAIL_KEY.match(key)}
    assert templates == set(emitted()), sorted(templates ^ set(emitted()))


def test_the_chinese_templates_say_no_english_word() -> None:
    texts = catalogue(CHINESE)
    for key in emitted():
        template = PLACEHOLDER.sub("", texts[key])
        assert re.search(r"[\u4e00-\u9fff]", template), key
        # Units and marks a Chinese page keeps: "z" (the z-score), "->".
        assert not re.search(r"[A-Za-z]{2,}", template), key


def _text(name: str, value: str | int, texts: dict[str, str]) -> str:
    if not isinstance(value, str):
        return str(value)
    if f"js.param.{name}.{value}" in texts:
        return texts[f"js.param.{name}.{value}"]
    items = value.split(", ")
    return texts["js.list.sep"].join(texts.get(f"js.param.party.{i}", i) for i in items)


def render(part: S.DetailPart, texts: dict[str, str]) -> str:
    """A part as the page says it (``tm.js``'s ``paramText``, numbers as Python writes them):
    a word the catalogue translates (``js.param.<name>.<value>``) by its text, a list of
    parties item by item (``js.param.party.<item>``: the creator)."""
    return texts[part.key].format(**{name: _text(name, v, texts) for name, v in part.params})


def _pure_rule_tests() -> list[Callable[[], Any]]:
    """The rule tests that need no fixture: each raises its rule's signals (and its honest
    twin's none) through ``rules.evaluate``."""
    from tests.readmodels import test_launderrules, test_signals

    return [
        test
        for module in (test_signals, test_launderrules)
        for name, test in sorted(vars(module).items())
        if name.startswith("test_")
        and callable(test)
        and not inspect.signature(test).parameters
        and not hasattr(test, "hypothesis")  # properties: their own run is enough
        and "pure" not in name  # a fresh interpreter's imports, no rule raised
    ]


def test_the_english_templates_say_what_the_english_detail_says(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    raised: list[S.Signal] = []
    evaluate = rules.evaluate

    def recording(*args: Any, **kwargs: Any) -> list[S.Signal]:
        found = evaluate(*args, **kwargs)
        raised.extend(found)
        return found

    monkeypatch.setattr(rules, "evaluate", recording)
    for test in _pure_rule_tests():
        test()
    assert len({s.code for s in raised}) >= 10, {s.code for s in raised}
    english, chinese = catalogue(ENGLISH), catalogue(CHINESE)
    for signal in raised:
        assert signal.message, signal.code
        said = [render(part, english) for part in signal.message]
        for part in signal.message:
            assert render(part, chinese)  # every template takes its parameters
        # NOTE: a buyer over two limits, or a seller over limits in two currencies, say each
        # clause whole (the party and the unit each time); the English page shows ``detail``.
        if len(said) > 1 and signal.code in (S.BUYER_DAILY_AMOUNT, S.UNATTESTED_SELLER):
            assert all(clause.split(" (")[0] in signal.detail for clause in said), signal.detail
            continue
        assert "; ".join(said) == signal.detail, (signal.code, said)
