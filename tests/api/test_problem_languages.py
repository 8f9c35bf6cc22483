"""Problem+json in Chinese (issue 18 item 5): ``title`` AND ``detail`` for a request that
prefers Chinese, English otherwise; the ``type`` URI and the code unchanged.

Every problem code the app can raise is walked: its class raised through the real app (a
route added for the test: the one injection, since most of these have no request that
reaches them on purpose), and the answer read in both languages. The detail templates are
checked against the English the code is really raised with (the source's raise sites), and a
few real requests show a detail's values (ids, numbers) carried into the Chinese."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.languages import (
    CHINESE,
    ENGLISH,
    chinese_detail,
    detail_templates,
    localized_problem,
    problem_catalogue,
)
from api.principal import Unauthorized
from api.ratelimit import RateLimited
from registry.errors import TracemarkError
from registry.transferrequests import DoubleSale
from tests.api.conftest import KeyFactory, bearer
from tests.web.test_languages_catalogue import PACKAGES, _codes, _import_every_module

ROOT = Path(__file__).parents[2]
CJK = re.compile(r"[\u4e00-\u9fff]")
#: The codes the handlers send besides the error classes' own.
HANDLER_CODES = {"validation-error", "storage-unavailable", "internal-error"}
#: Starlette's own details (``http-<status>``), raised by no source of ours.
STARLETTE = {"Not Found", "Method Not Allowed"}
SAMPLE = "code 0x" + "ab" * 32


def _classes() -> dict[str, type[TracemarkError]]:
    _import_every_module()
    found: dict[str, type[TracemarkError]] = {}

    def walk(cls: type[TracemarkError]) -> None:
        for sub in cls.__subclasses__():
            if sub.__module__.split(".")[0] in PACKAGES:
                found.setdefault(sub.code, sub)
            walk(sub)

    walk(TracemarkError)
    return found


def _raised_texts() -> set[str]:
    """Every string literal of the project (raise sites, the handlers' fixed details),
    f-string values as ``{}``."""
    texts: set[str] = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    texts.add(node.value)
                elif isinstance(node, ast.JoinedStr):
                    texts.add(
                        "".join(
                            part.value if isinstance(part, ast.Constant) else "{}"
                            for part in node.values
                        )
                    )
    return texts


def _sample(english: str) -> str:
    """An English template with values put in: a good for ``{good}``, a token otherwise."""
    return re.sub(r"\{(\w+)\}", lambda m: SAMPLE if m.group(1) == "good" else "x7", english)


def test_every_code_the_app_raises_has_a_chinese_title_and_detail() -> None:
    codes = set(_classes()) | HANDLER_CODES
    assert codes == _codes(TracemarkError) | HANDLER_CODES  # the same walk as the titles'
    for code in sorted(codes):
        entry = problem_catalogue().get(code)
        assert entry is not None, code
        assert CJK.search(entry["title"]) and CJK.search(entry.get("detail", "")), code


def test_every_detail_template_is_english_the_code_is_raised_with() -> None:
    """A template that no raise site sends would never match (a reworded detail silently
    falls back to the code's generic text): each one names its raise site's exact words."""
    raised = _raised_texts() | STARLETTE
    for code, templates in detail_templates().items():
        assert code == "*" or code in problem_catalogue(), code
        for pattern, chinese in templates:
            english = pattern.pattern
            names = set(re.findall(r"\(\?P<(\w+)>", english))
            assert set(re.findall(r"\{(\w+)\}", chinese)) == names, (code, english)
            assert CJK.search(chinese), (code, chinese)
            literal = re.sub(r"\(\?P<\w+>(?:[^()]|\([^()]*\))*\)", "{}", english)
            assert re.sub(r"\\(.)", r"\1", literal) in raised, (code, english)


def test_a_template_carries_values_and_refuses_an_english_phrase_as_one() -> None:
    order = "0x" + "cd" * 16
    assert chinese_detail("not-found", f"no order {order} of yours") == f"贵平台没有订单 {order}"
    revoked = f"{SAMPLE} was revoked by its creator; it may not be sold"
    assert chinese_detail("revoked", revoked) == f"{SAMPLE} 已被创作者撤销；不能出售"
    # A value is one token: words in its place match no template, the generic text answers.
    generic = problem_catalogue()["not-found"]["detail"]
    assert chinese_detail("not-found", "no order of somebody else of yours") == generic
    assert localized_problem("not-found", "NotFound", "no job 12", ENGLISH) == (
        "NotFound",
        "no job 12",
    )
    assert localized_problem("no-such-code", "T", "d", CHINESE) == ("T", "d")


def _instance(cls: type[TracemarkError], detail: str) -> TracemarkError:
    """An error of ``cls`` with ``detail``, whatever its constructor asks besides."""
    exc = cls.__new__(cls)
    TracemarkError.__init__(exc, detail)
    if isinstance(exc, RateLimited):
        exc.retry_after, exc.bucket = 3, "verify"
    if isinstance(exc, Unauthorized):
        exc.error = "invalid_token"
    if isinstance(exc, DoubleSale):
        exc.earlier = None
    return exc


@pytest.fixture
def raising(app: FastAPI) -> TestClient:
    """The app with ``GET /raise/{code}`` raising that code's class (first template's words)."""
    classes = _classes()

    async def raise_it(code: str) -> None:
        templates = detail_templates().get(code)
        english = _sample(templates[0][0].pattern) if templates else f"what went wrong ({code})"
        raise _instance(classes[code], re.sub(r"\(\?P<\w+>.*?\)\)?", "x7", english))

    app.add_api_route("/raise/{code}", raise_it)
    return TestClient(app)


def test_every_code_through_the_app_in_both_languages(raising: TestClient) -> None:
    for code, cls in sorted(_classes().items()):
        english = raising.get(f"/raise/{code}", headers={"Accept-Language": "en-US,en;q=0.9"})
        chinese = raising.get(f"/raise/{code}", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
        assert english.status_code == chinese.status_code == cls.http_status, code
        en, zh = english.json(), chinese.json()
        assert en["type"] == zh["type"] == f"https://tracemark.dev/problems/{code}"
        assert zh["title"] == problem_catalogue()[code]["title"]
        assert CJK.search(zh["detail"]) and not CJK.search(en["detail"]), (code, zh, en)
        assert not CJK.search(en["title"]), code
        if cls.http_status < 500 or cls.http_status == 503:
            assert en["detail"] != zh["detail"] and en["title"] == cls.__name__, code
        else:  # a server error's detail is fixed, in either language
            assert en["detail"] == "the registry is misconfigured", code
            assert zh["detail"] == "登记处配置有误（已记入日志）", code


def test_real_requests_answer_chinese_details_with_their_values(
    client: TestClient, make_key: KeyFactory
) -> None:
    zh = {"Accept-Language": "zh-CN"}
    key = bearer(make_key("cardhub", "verify", "transfer"))
    # A request body that fails validation: the Chinese names the fields.
    bad = client.post("/v1/verify", json={"good_type": "code", "fingerprint": 7}, headers=zh)
    assert bad.status_code == 422 and bad.json()["detail"].startswith("请求中以下字段无效：")
    assert "body.fingerprint" in bad.json()["detail"]
    # Exactly one of fingerprint or code (InvalidInput, a fixed detail).
    both = client.post("/v1/verify", json={"good_type": "code"}, headers={**zh, **key})
    assert both.json()["detail"] == "指纹和卡密须且只须提供其中一个", both.json()
    # An id the detail carries is carried into the Chinese.
    order = client.get("/v1/orders/987654", headers={**zh, **key})
    assert order.status_code == 404, order.json()
    assert "987654" in order.json()["detail"] and CJK.search(order.json()["detail"])
    english = client.get("/v1/orders/987654", headers=key)
    assert english.json()["detail"] == "no order 987654 of yours"
    # Starlette's own 404.
    assert (
        client.get("/v1/no/such/route", headers=zh).json()["detail"] == "没有这个路径：请检查 URL"
    )
