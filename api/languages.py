"""The page's languages (issue 18 item 5): English and Simplified Chinese, from message
catalogues.

Every text the page shows lives in ``api/messages/<language>.json`` (one key per text), not in
the templates or the scripts: templates call ``t("key")``, and each page embeds the ``js.*``
keys of its language as a JSON data block (``<script type="application/json">``, never run, so
the CSP's ``default-src 'self'`` still holds) that ``tm.js`` reads. Problem+json titles (and
their details) in Chinese come from ``api/messages/problems.zh-Hans.json``, keyed by the
problem's code: each code's own detail, and ``problems.details.zh-Hans.json``'s templates for
the English details the code is raised with (their ids and numbers carried over as
parameters); the ``type`` URI and the code never change.

Which language: ``?lang=`` (the switch's links; it also sets the cookie), then the
``tm_lang`` cookie (the remembered choice), then ``Accept-Language``, then English. The cookie
holds only ``en`` or ``zh-Hans``: SameSite=Lax, a year, nothing else in it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any, Final

from markupsafe import Markup, escape
from starlette.requests import Request
from starlette.responses import Response

MESSAGES: Final = Path(__file__).parent / "messages"
ENGLISH: Final = "en"
CHINESE: Final = "zh-Hans"
LANGUAGES: Final = (ENGLISH, CHINESE)
#: What the switch shows for each language, in that language.
AUTONYMS: Final = {ENGLISH: "English", CHINESE: "简体中文"}
COOKIE: Final = "tm_lang"
COOKIE_AGE: Final = 365 * 24 * 3600
#: Traditional-script Chinese: Simplified is not what such a reader asked for, so these tags
#: are skipped (the next preference, or English, answers).
_TRADITIONAL: Final = ("zh-hant", "zh-tw", "zh-hk", "zh-mo")


@cache
def catalogue(language: str) -> dict[str, str]:
    """The page's texts in ``language`` (``en`` or ``zh-Hans``), key to text."""
    with (MESSAGES / f"{language}.json").open(encoding="utf-8") as file:
        texts: dict[str, str] = json.load(file)
    return texts


@cache
def signal_titles() -> dict[str, tuple[str, str]]:
    """Each signal code's title in English and in Chinese (the compliance CSV's columns)."""
    english, chinese = catalogue(ENGLISH), catalogue(CHINESE)
    return {
        key.split(".")[1]: (text, chinese[key])
        for key, text in english.items()
        if key.startswith("signal.") and key.endswith(".title")
    }


@cache
def problem_catalogue() -> dict[str, dict[str, str]]:
    """Problem code to its Chinese ``title`` (and ``detail`` where the detail is fixed)."""
    with (MESSAGES / "problems.zh-Hans.json").open(encoding="utf-8") as file:
        texts: dict[str, dict[str, str]] = json.load(file)
    return texts


def _supported(tag: str) -> str | None:
    tag = tag.strip().lower()
    if tag == "zh" or tag.startswith("zh-"):
        return None if tag.startswith(_TRADITIONAL) else CHINESE
    if tag == "en" or tag.startswith("en-") or tag == "*":
        return ENGLISH
    return None


def from_accept_language(header: str | None) -> str:
    """The best of our languages for an ``Accept-Language`` header (RFC 9110 §12.5.4):
    highest q first, header order among equals; ``q=0`` refuses; English when none fits."""
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate((header or "").split(",")):
        tag, _, params = item.partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        language = _supported(tag)
        if language is not None and quality > 0:
            ranked.append((-quality, position, language))
    return min(ranked)[2] if ranked else ENGLISH


def _valid(value: str | None) -> str | None:
    return value if value in LANGUAGES else None


def page_language(request: Request) -> str:
    """The page's language: the switch's ``?lang=``, the cookie, the header, English."""
    return (
        _valid(request.query_params.get("lang"))
        or _valid(request.cookies.get(COOKIE))
        or from_accept_language(request.headers.get("accept-language"))
    )


def remember(request: Request, response: Response) -> None:
    """Set the cookie when the switch's ``?lang=`` chose a language."""
    chosen = _valid(request.query_params.get("lang"))
    if chosen is not None and request.cookies.get(COOKIE) != chosen:
        response.set_cookie(
            COOKIE, chosen, max_age=COOKIE_AGE, path="/", samesite="lax", httponly=True
        )


class Translator:
    """``t("key", name=value)``: the catalogue's text (trusted markup, the catalogue is ours)
    with each value escaped into it. A missing key raises: the catalogue test finds it first."""

    def __init__(self, language: str) -> None:
        self.language = language
        self.texts = catalogue(language)

    def __call__(self, key: str, **values: Any) -> Markup:
        # The catalogue is this repository's own file (reviewed like a template), never input.
        text = Markup(self.texts[key])  # noqa: S704
        return text.format(**{k: escape(v) for k, v in values.items()}) if values else text

    def script_texts(self) -> dict[str, str]:
        """The ``js.*`` texts, for the page's scripts (embedded as JSON), the signals'
        ``signal.<code>.title``/``.meaning``: the scripts name a signal they were given, and
        the verdict signals' ``verdict.<code>.detail`` templates a verify answer names."""
        return {k: v for k, v in self.texts.items() if k.startswith(("js.", "signal.", "verdict."))}


def switch_links(request: Request) -> list[dict[str, str]]:
    """The switch: this page's URL with ``lang`` set to each language (other query kept)."""
    links = []
    for lang in LANGUAGES:
        url = request.url.include_query_params(lang=lang)
        links.append({"lang": lang, "name": AUTONYMS[lang], "href": f"{url.path}?{url.query}"})
    return links


def problem_language(request: Request) -> str:
    """A problem's language: the request's ``Accept-Language`` only (API clients and the
    page's scripts, which send the page's language in it)."""
    return from_accept_language(request.headers.get("accept-language"))


#: A detail template's parameter: ``{name}`` in both languages' texts.
_PARAMETER: Final = re.compile(r"\{(\w+)\}")
#: What a parameter may match in an English detail: one token (an id, a number, a hex
#: string), never a run of words, so no English phrase is carried into a Chinese detail; a
#: good is its type's wire name and its fingerprint (``registry.transfers``' ``good``).
_VALUES: Final = {"good": r"(?:file|code|item) 0x[0-9a-f]{64}"}
_ONE_WORD: Final = r"[^\s]+"


def _pattern(template: str) -> re.Pattern[str]:
    parts = _PARAMETER.split(template)
    return re.compile(
        "".join(
            re.escape(part) if i % 2 == 0 else f"(?P<{part}>{_VALUES.get(part, _ONE_WORD)})"
            for i, part in enumerate(parts)
        )
    )


@cache
def detail_templates() -> dict[str, list[tuple[re.Pattern[str], str]]]:
    """Problem code to its detail templates: an English detail's pattern (its parameters
    captured) and the Chinese text they go into (``problems.details.zh-Hans.json``)."""
    with (MESSAGES / "problems.details.zh-Hans.json").open(encoding="utf-8") as file:
        texts: dict[str, dict[str, str]] = json.load(file)
    return {
        code: [(_pattern(english), chinese) for english, chinese in templates.items()]
        for code, templates in texts.items()
    }


def chinese_detail(code: str, detail: str, params: Mapping[str, str] | None = None) -> str | None:
    """The Chinese of an English ``detail``: the first template of its code (then of any
    code, ``*``) that matches it whole, with the values it carries (ids, numbers); else the
    code's own detail (what the problem means and what to do; its values, if any, from
    ``params``); None for a code the catalogue does not know."""
    templates = detail_templates()
    # "*": details sent under any code (a server error's fixed one).
    candidates: list[tuple[re.Pattern[str], str]] = [
        *templates.get(code, []),
        *templates.get("*", []),
    ]
    for pattern, text in candidates:
        match = pattern.fullmatch(detail)
        if match is not None:
            return text.format(**match.groupdict())
    entry = problem_catalogue().get(code)
    if entry is None or "detail" not in entry:
        return None
    return entry["detail"].format(**params) if params else entry["detail"]


def localized_problem(
    code: str,
    title: str,
    detail: str,
    language: str,
    params: Mapping[str, str] | None = None,
) -> tuple[str, str]:
    """``title`` and ``detail`` in ``language``: Chinese from the problem catalogues by code
    (``chinese_detail``), else as given."""
    if language != CHINESE:
        return title, detail
    entry = problem_catalogue().get(code)
    if entry is None:
        return title, detail
    chinese = chinese_detail(code, detail, params)
    return entry["title"], detail if chinese is None else chinese


__all__ = [
    "AUTONYMS",
    "CHINESE",
    "COOKIE",
    "ENGLISH",
    "LANGUAGES",
    "Translator",
    "catalogue",
    "chinese_detail",
    "detail_templates",
    "from_accept_language",
    "localized_problem",
    "page_language",
    "problem_catalogue",
    "problem_language",
    "remember",
    "switch_links",
]
