"""The page's languages (issue 18 item 5): English and Simplified Chinese, from message
catalogues.

Every text the page shows lives in ``api/messages/<language>.json`` (one key per text), not in
the templates or the scripts: templates call ``t("key")``, and each page embeds the ``js.*``
keys of its language as a JSON data block (``<script type="application/json">``, never run, so
the CSP's ``default-src 'self'`` still holds) that ``tm.js`` reads. Problem+json titles (and
the fixed details) in Chinese come from ``api/messages/problems.zh-Hans.json``, keyed by the
problem's code; the ``type`` URI and the code never change.

Which language: ``?lang=`` (the switch's links; it also sets the cookie), then the
``tm_lang`` cookie (the remembered choice), then ``Accept-Language``, then English. The cookie
holds only ``en`` or ``zh-Hans``: SameSite=Lax, a year, nothing else in it.
"""

from __future__ import annotations

import json
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
        """The ``js.*`` texts, for the page's scripts (embedded as JSON)."""
        return {k: v for k, v in self.texts.items() if k.startswith("js.")}


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


def localized_problem(code: str, title: str, detail: str, language: str) -> tuple[str, str]:
    """``title`` and ``detail`` in ``language``: Chinese from the problem catalogue by code
    (the detail only where the catalogue has a fixed one), else as given."""
    if language != CHINESE:
        return title, detail
    entry = problem_catalogue().get(code)
    if entry is None:
        return title, detail
    return entry["title"], entry.get("detail", detail)


__all__ = [
    "AUTONYMS",
    "CHINESE",
    "COOKIE",
    "ENGLISH",
    "LANGUAGES",
    "Translator",
    "catalogue",
    "from_accept_language",
    "localized_problem",
    "page_language",
    "problem_catalogue",
    "problem_language",
    "remember",
    "switch_links",
]
