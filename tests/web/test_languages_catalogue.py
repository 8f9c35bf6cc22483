"""The page's message catalogues (issue 18 item 5) walked against what uses them: every key a
template, script or page module names exists in both languages, no catalogue key goes unused,
no visible English is left in a template or in the translated scripts, and ``Accept-Language``
picks the language it should. No browser and no server: these run in a second."""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import api.app  # noqa: F401  (imports every module that defines an error class)
import verifier.clienterrors
import verifier.problems  # noqa: F401
from api.languages import (
    CHINESE,
    ENGLISH,
    LANGUAGES,
    MESSAGES,
    catalogue,
    from_accept_language,
    localized_problem,
    problem_catalogue,
)
from api.web import STATIC, TEMPLATES
from registry.errors import TracemarkError
from registry.fingerprints import USE_NAMES
from tests.api.test_signal_titles import signal_codes, verdict_signal_codes
from tests.readmodels.test_signal_details import emitted

API = Path(__file__).parents[2] / "api"
#: Scripts whose texts come from the catalogue. svg.js (the graph's and chart's drawing)
#: still carries a few English literals (docs/ARCHITECTURE.md, "Languages": not done yet).
TRANSLATED_SCRIPTS = ("tm.js", "check.js", "receipt.js", "label.js", "audit.js")
#: The Python modules that name catalogue keys (the not-found page's "what", QR titles).
PAGE_MODULES = ("web.py", "receiptpage.py", "badge.py")
KEY = re.compile(
    r"""["']((?:base|common|notfound|label|check|audit|receipt|badge|signal|js)\.[\w.]+)["']"""
)
PACKAGES = ("api", "registry", "verifier", "anchoring", "readmodels")
PLACEHOLDER = re.compile(r"\{(\w+)\}")
#: Latin-script words a Chinese page keeps: names, protocols, units.
KEEP = {"tracemark", "API", "SHA", "KiB", "MiB", "GiB", "TiB", "Webhook", "URL", "EIP", "EVM"}


def _sources() -> dict[str, str]:
    files = [*TEMPLATES.glob("*.html")]
    # Keys are looked for in every script (audit.js is partly translated).
    files += sorted(STATIC.glob("*.js"))
    files += [API / name for name in PAGE_MODULES]
    # Without comments: a comment may show how a key is named ("js.key").
    return {
        path.name: re.sub(
            r"/\*.*?\*/|(?<!:)//[^\n]*", "", path.read_text(encoding="utf-8"), flags=re.S
        )
        for path in files
    }


def _used_keys() -> set[str]:
    used: set[str] = set()
    for text in _sources().values():
        # A file's name ("check.html") is not a key.
        used |= {k for k in KEY.findall(text) if not k.endswith((".html", ".js", "."))}
    tm = (STATIC / "tm.js").read_text(encoding="utf-8")
    # Keys built at run time: each verdict's word and sentence, each count's two forms.
    verdicts = re.search(r"var VERDICTS = \{(.*?)\n  \};", tm, re.S)
    assert verdicts is not None
    for name in re.findall(r"^\s*(\w+): \{", verdicts.group(1), re.M):
        used |= {f"js.verdict.{name}.word", f"js.verdict.{name}.say"}
    # Keys a script builds from a prefix and a value ("js.audit.period." + period): every key
    # under the prefix counts as used; test_dynamic_keys_cover_their_values checks the values.
    for text in _sources().values():
        for prefix in re.findall(r'"((?:js|label)\.[\w.]+\.)" [+~]', text):
            used |= {key for key in catalogue(ENGLISH) if key.startswith(prefix)}
    # A signal's title and meaning (tm.js builds "signal." + code + "." + part): one of each
    # for every code the rules or a verify answer raise (tests/api/test_signal_titles.py).
    if '"signal." + code + "." + part' in tm:
        used |= {
            f"signal.{code}.{part}" for code in signal_codes() for part in ("title", "meaning")
        }
    # A verdict signal's detail template, named by the verify answer's message.key
    # (tests/api/test_verdict_details.py checks each against what the server sends).
    if "function signalDetail(" in tm:
        used |= {f"verdict.{code}.detail" for code in verdict_signal_codes()}
    # A market signal's detail templates, named by the verify answer's parts (each checked
    # against the rule that says it: tests/readmodels/test_signal_details.py).
    if "signal.parts" in tm:
        used |= set(emitted())
    for text in _sources().values():
        for base in re.findall(r"""count\([^,]+, "(js\.count\.\w+)"\)""", text):
            used = (used - {base}) | {f"{base}.one", f"{base}.other"}
    return used


def test_dynamic_keys_cover_their_values() -> None:
    """Keys built from a value have a text for every value: the royalty period the dashboard
    names (the page's select), a label's use."""
    html = (TEMPLATES / "audit.html").read_text(encoding="utf-8")
    select = re.search(r'<select id="royalty-period".*?</select>', html, re.S)
    assert select is not None
    periods = re.findall(r'<option value="(\w+)"', select.group(0))
    assert periods == ["day", "month"]
    for language in LANGUAGES:
        for period in periods:
            assert f"js.audit.period.{period}" in catalogue(language)
    # A label names the good's use (registry.fingerprints.USE_NAMES).
    for language in LANGUAGES:
        for use in USE_NAMES.values():
            assert f"label.use.{use}" in catalogue(language)


def test_both_catalogues_have_the_same_keys_and_placeholders() -> None:
    english, chinese = catalogue(ENGLISH), catalogue(CHINESE)
    assert set(english) == set(chinese)
    for key, text in english.items():
        assert set(PLACEHOLDER.findall(text)) == set(PLACEHOLDER.findall(chinese[key])), key
        # The same markup in both (a catalogue may carry <em>, <code>, <span>, <strong>).
        assert re.findall(r"</?(\w+)", text) == re.findall(r"</?(\w+)", chinese[key]), key


def test_every_key_used_exists_and_every_key_is_used() -> None:
    used = _used_keys()
    for language in LANGUAGES:
        missing = used - set(catalogue(language))
        assert not missing, (language, sorted(missing))
    unused = set(catalogue(ENGLISH)) - used
    assert not unused, sorted(unused)


def test_the_walker_finds_a_key_that_is_missing(tmp_path: Path) -> None:
    """Mutation probe: a template naming a key the catalogue lacks is caught by the walk."""
    probe = '<p>{{ t("check.no_such_text") }}</p>'
    assert KEY.findall(probe) == ["check.no_such_text"]
    assert "check.no_such_text" not in catalogue(ENGLISH)


def _visible_template_text(html: str) -> str:
    html = re.sub(r"\{#.*?#\}|\{%.*?%\}|\{\{.*?\}\}", " ", html, flags=re.S)
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    html = re.sub(r"<[^>]*>", " ", html)
    return re.sub(r"&[#\w]+;", " ", html)


def _english_words(text: str) -> list[str]:
    return [w for w in re.findall(r"[A-Za-z]{2,}", text) if w not in KEEP]


@pytest.mark.parametrize("template", sorted(p.name for p in TEMPLATES.glob("*.html")))
def test_no_visible_english_left_in_a_template(template: str) -> None:
    html = (TEMPLATES / template).read_text(encoding="utf-8")
    assert _english_words(_visible_template_text(html)) == [], template
    # Attributes people read (placeholders, labels, titles) come from the catalogue too.
    for value in re.findall(r'(?:placeholder|aria-label|title|alt)="([^"{]*)"', html):
        assert _english_words(value) == [], (template, value)


def test_the_template_check_finds_english(tmp_path: Path) -> None:
    """Mutation probe: English typed into a template is found."""
    assert _english_words(_visible_template_text("<h1>Check a good</h1>{{ t('x') }}")) == [
        "Check",
        "good",
    ]


@pytest.mark.parametrize("script", TRANSLATED_SCRIPTS)
def test_no_english_sentence_left_in_a_translated_script(script: str) -> None:
    code = re.sub(r"/\*.*?\*/|(?<!:)//[^\n]*", "", (STATIC / script).read_text(), flags=re.S)
    # The Sign-In with Ethereum message is a protocol's text (EIP-4361), English by standard.
    code = re.sub(r"function siweMessage\(.*?\n  \}", "", code, flags=re.S)
    literals = re.findall(r'"((?:[^"\\\n]|\\.)*)"', code)
    # A capitalised phrase, or words ending a sentence or before a colon, is text a person
    # reads (class names, "use strict" and the like are neither).
    sentence = re.compile(r"^\s*[A-Z][a-z]+ [A-Za-z]|[A-Za-z]{2,}(?:[.…]$|: )")
    sentences = [s for s in literals if sentence.search(s) and not s.startswith(("js.", "signal."))]
    assert sentences == [], (script, sentences)


def test_the_chinese_catalogue_is_chinese() -> None:
    for key, text in catalogue(CHINESE).items():
        assert re.search(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]", text), key


@pytest.mark.parametrize(
    ("header", "language"),
    [
        (None, ENGLISH),
        ("", ENGLISH),
        ("zh", CHINESE),
        ("zh-CN", CHINESE),
        ("zh-cn", CHINESE),
        ("zh-Hans", CHINESE),
        ("zh-Hans-CN,zh;q=0.9", CHINESE),
        ("zh-SG", CHINESE),
        ("en-US,en;q=0.9", ENGLISH),
        ("fr-FR,fr;q=0.9", ENGLISH),
        ("fr-FR, zh-CN;q=0.5", CHINESE),
        ("en;q=0.5, zh-CN;q=0.8", CHINESE),
        ("zh-CN;q=0.8, en;q=0.9", ENGLISH),
        ("zh;q=0", ENGLISH),
        ("zh-TW", ENGLISH),  # Traditional: Simplified is not what was asked for
        ("zh-Hant, zh-CN;q=0.5", CHINESE),
        ("*", ENGLISH),
        ("zh-CN;q=bad", ENGLISH),
        ("en, zh", ENGLISH),  # equal q: the header's order
        ("zh, en", CHINESE),
    ],
)
def test_accept_language_known_answers(header: str | None, language: str) -> None:
    assert from_accept_language(header) == language


@given(st.text(max_size=200))
def test_accept_language_never_fails_and_answers_a_language(header: str) -> None:
    assert from_accept_language(header) in LANGUAGES


@given(st.lists(st.sampled_from(["fr", "de", "ja", "ko", "es-ES", "ru"]), max_size=5))
def test_a_header_without_chinese_or_english_is_english(tags: list[str]) -> None:
    assert from_accept_language(", ".join(tags)) == ENGLISH
    assert from_accept_language(", ".join([*tags, "zh-CN;q=0.1"])) == CHINESE


def _import_every_module() -> None:
    """Every module of the project's packages, so that every error class is defined whatever
    this worker imported before (the CI's worker had imported the verifier's monitor; a
    helper's run had not, and the test passed there with three codes untitled)."""
    for package in PACKAGES:
        root = importlib.import_module(package)
        for info in pkgutil.walk_packages(root.__path__, prefix=package + "."):
            if not info.name.endswith("__main__"):
                importlib.import_module(info.name)


def _codes(cls: type[TracemarkError]) -> set[str]:
    found = set()
    for sub in cls.__subclasses__():
        # The project's classes only: a test module may define its own (the suite shares a
        # process between modules).
        if sub.__module__.split(".")[0] in PACKAGES:
            found.add(sub.code)
        found |= _codes(sub)
    return found


def test_every_problem_code_has_a_chinese_title() -> None:
    _import_every_module()
    codes = _codes(TracemarkError) | {"validation-error", "storage-unavailable", "internal-error"}
    missing = codes - set(problem_catalogue())
    assert not missing, sorted(missing)
    for code, entry in problem_catalogue().items():
        assert re.search(r"[\u4e00-\u9fff]", entry["title"]), code


def test_localized_problem_keeps_english_and_unknown_codes_as_given() -> None:
    assert localized_problem("not-found", "NotFound", "no such good", ENGLISH) == (
        "NotFound",
        "no such good",
    )
    # A detail no template matches gets its code's own Chinese detail, never the English
    # (tests/api/test_problem_languages.py walks every code).
    assert localized_problem("not-found", "NotFound", "no such good", CHINESE) == (
        "未找到",
        problem_catalogue()["not-found"]["detail"],
    )
    assert localized_problem("no-such-code", "T", "d", CHINESE) == ("T", "d")
    assert localized_problem("internal-error", "Server error", "x", CHINESE) == (
        "服务器错误",
        "意外错误；已记录",
    )


def test_catalogue_files_are_sorted_json_objects_of_strings() -> None:
    for path in MESSAGES.glob("*.json"):
        data = json.loads(path.read_text(encoding="utf-8"))
        assert list(data) == sorted(data), path.name


@given(st.text(max_size=50))
def test_a_value_is_escaped_into_a_text_never_markup(value: str) -> None:
    from markupsafe import escape

    from api.languages import Translator

    for language in LANGUAGES:
        t = Translator(language)
        rendered = str(t("notfound.body", what=value))
        template = catalogue(language)["notfound.body"]
        assert rendered == template.replace("{what}", str(escape(value)))
        assert "<script" not in str(t("receipt.lede", order="<script>x</script>"))
