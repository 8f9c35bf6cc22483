"""Personal data the registry never accepts (实名制 without the real names, issue 18 item 4):
the detectors of mainland phone numbers and resident ID numbers, and of names where only an
opaque id belongs, and the error that refuses them.

What is detected, precisely (after Unicode NFKC, so full-width digits count as digits, with
invisible format characters such as zero-width spaces taken out and every Unicode dash read
as ``-``, so a number cannot hide behind them):

- a mainland mobile number: ``1[3-9]`` and nine more digits, optionally ``+86``/``86``
  before it and a space, dash or dot after the 3rd and 7th digits, not part of a longer run of
  letters or digits (so no hex fingerprint, signature or decimal amount is mistaken for one);
- a resident ID number (居民身份证号码, GB 11643-1999): 18 characters, a region code (of
  a province: ``_PROVINCES``), a real birth date 1900-2099, a sequence and the ISO 7064
  MOD 11-2 check character (a digit or X) that matches; or a first-generation 15-digit
  number with a province's region code and a real date (YYMMDD); either maybe split by a
  space or dash around its date. Not part of a longer run of letters or digits;
- in a *reference* (an opaque account id the registry hashes): any Chinese character (CJK
  ideographs), which is how a person's name would be written. An id is an ASCII token.

What is not: a person's name in free text (a Chinese product title is legitimate, and names
have no shape to tell them apart), a name in Latin letters, other countries' numbers, an ID
number with a wrong check digit or date (no real one has them). The limits are documented in
docs/ARCHITECTURE.md. Pure: no ORM, no web framework.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from typing import Final

from registry.errors import InvalidInput

_PHONE: Final = re.compile(
    r"(?<![0-9A-Za-z])(?:\+?86[ -]?)?1[3-9][0-9](?:[ .-]?[0-9]{4}){2}(?![0-9A-Za-z])"
)
# NOTE: an ID number written in groups (region, date, the rest) is as personal as one without.
_ID18: Final = re.compile(
    r"(?<![0-9A-Za-z])([1-9][0-9]{5})[ -]?([0-9]{8})[ -]?([0-9]{3})([0-9Xx])(?![0-9A-Za-z])"
)
_ID15: Final = re.compile(
    r"(?<![0-9A-Za-z])([1-9][0-9]{5})[ -]?([0-9]{6})[ -]?([0-9]{3})(?![0-9A-Za-z])"
)
_EIGHT_DIGITS: Final = re.compile(rb"[0-9]{4}[ .-]?[0-9]{4}")
_CANDIDATE: Final = re.compile(
    rb"(?<![0-9A-Za-z])(?:\+?86[ -]?)?1[3-9][0-9](?:[ .-]?[0-9]{4}){2}(?![0-9A-Za-z])"
    rb"|(?<![0-9A-Za-z])[1-9][0-9]{5}[ -]?[0-9]{6}(?:[0-9]{2}[ -]?[0-9]{3}[0-9Xx]|[ -]?[0-9]{3})"
    rb"(?![0-9A-Za-z])"
)
#: Unicode's format characters (category Cf: zero-width spaces and joiners, soft hyphen, BOM,
#: bidi controls, tags): invisible, so a number split by them reads as one to a person.
_FORMAT: Final = re.compile(
    "[\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u180e\u200b-\u200f"
    "\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd"
    "\U00013430-\U00013438\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001"
    "\U000e0020-\U000e007f]"
)
#: Unicode's dashes (category Pd) and the minus sign, read as ``-``.
_DASH: Final = re.compile(
    "[\u058a\u05be\u1400\u1806\u2010-\u2015\u2212\u2e17\u2e1a\u2e3a-\u2e3b\u2e40\u2e5d"
    "\u301c\u3030\u30a0\ufe31-\ufe32\ufe58\ufe63\uff0d\U00010ead]"
)
#: CJK Unified Ideographs, Extension A, Compatibility Ideographs, Extensions B-F (planes 2-3).
_HAN: Final = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]")
_ID_WEIGHTS: Final = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK: Final = "10X98765432"

MAX_SCANNED: Final = 64 * 1024
"""Longest text scanned (a JSON body is capped at this by the API): longer text is refused
rather than scanned, so a crafted body cannot make the scan cost more."""


class PersonalDataRefused(InvalidInput):
    """A request carried a person's phone number, ID number or name where the registry takes
    none: nothing was stored. Send an opaque account id instead (the platform's own user id)."""

    code = "personal-data-refused"
    http_status = 422
    diagnostics = "Remove the phone number, ID number or name; send an opaque account id."


def _valid_date(year: int, month: int, day: int) -> bool:
    try:
        date(year, month, day)
    except ValueError:
        return False
    return True


def id_check_character(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character of an 18-character ID's first 17 digits."""
    total = sum(int(digit) * weight for digit, weight in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


#: The first two digits of every region code an ID number can start with (GB/T 2260's
#: provinces, and 81-83 for Hong Kong, Macao and Taiwan residents' permits). A 15-digit
#: first-generation number has no check digit, so 3.65 % of random 15-digit ids (order
#: numbers, user ids) carry a real date; the province keeps ~39 % of those (red team).
_PROVINCES: Final = frozenset(
    {*map(str, range(11, 16)), *map(str, range(21, 24)), *map(str, range(31, 38))}
    | {*map(str, range(41, 47)), *map(str, range(50, 55)), *map(str, range(61, 66))}
    | {"71", "81", "82", "83"}
)


def _has_id_number(text: str) -> bool:
    for match in _ID18.finditer(text):
        region, birth, sequence, check = match.groups()
        year, month, day = int(birth[:4]), int(birth[4:6]), int(birth[6:])
        if (
            region[:2] in _PROVINCES
            and 1900 <= year <= 2099
            and _valid_date(year, month, day)
            and id_check_character(region + birth + sequence) == check.upper()
        ):
            return True
    for match in _ID15.finditer(text):
        region, birth = match.group(1), match.group(2)
        if region[:2] in _PROVINCES and _valid_date(
            1900 + int(birth[:2]), int(birth[2:4]), int(birth[4:])
        ):
            return True
    return False


def personal_data_in(text: str, *, reference: bool = False) -> str | None:
    """What personal data ``text`` carries ("a phone number", "an ID number", "a name"), or
    None. ``reference=True``: the text is an opaque id the registry hashes (a phone-shaped id
    is hashed like any other; an ID number or Chinese characters are refused)."""
    if len(text) > MAX_SCANNED:
        return "text too long to check"
    for normal in _readings(text):
        if _has_id_number(normal):
            return "an ID number"
        if reference:
            if _HAN.search(normal):
                return "a name"
        elif _PHONE.search(normal):
            return "a phone number"
    return None


def _readings(text: str) -> tuple[str, ...]:
    """``text`` as a person reads it: ASCII as it is; other text after NFKC, dashes as ``-``,
    and format characters both taken out (a number split by them) and read as a space (so
    taking them out cannot glue a number to a letter before it and hide it)."""
    if text.isascii():
        return (text,)
    normal = _DASH.sub("-", unicodedata.normalize("NFKC", text))
    if _FORMAT.search(normal) is None:
        return (normal,)
    return (_FORMAT.sub("", normal), _FORMAT.sub(" ", normal))


def might_hold_personal_data(raw: bytes) -> bool:
    """False only when no text inside ``raw`` (a JSON document's bytes) can be personal data:
    it is ASCII without ``\\u`` escapes (so no Chinese and no disguised digit) and has no run
    a phone or ID pattern could match. A field's text sits in ``raw`` between quotes, which
    bound a match as the field's own ends do, so this never misses what the field check finds.
    The per-field walk (tens of microseconds) is skipped for the usual request."""
    if not raw.isascii() or b"\\u" in raw:
        return True
    # Every phone and ID pattern holds 4 digits, maybe a space or dash, 4 digits: a cheap
    # search first (most bodies have no such run), the bounded patterns only after it.
    return _EIGHT_DIGITS.search(raw) is not None and _CANDIDATE.search(raw) is not None


def refuse_personal_data(text: str, where: str, *, reference: bool = False) -> None:
    """``PersonalDataRefused`` naming ``where`` and the kind found (never the value)."""
    found = personal_data_in(text, reference=reference)
    if found is not None:
        raise PersonalDataRefused(f"{where} holds {found}: the registry stores no personal data")


__all__ = [
    "MAX_SCANNED",
    "PersonalDataRefused",
    "id_check_character",
    "might_hold_personal_data",
    "personal_data_in",
    "refuse_personal_data",
]
