"""Creators: a product's face value (issue 18 item 2), which the ``below-face-value``
laundering rule compares resale prices with. Set, changed or cleared with the creator's
signed-in session, as its distribution policy and rebate policy are."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Path, Response
from fastapi.responses import JSONResponse

from api.deps import Context, Creator
from api.errors import problem_response
from registry.eip712 import address_bytes
from registry.facevalue import MAX_FACE_HISTORY, FaceValue, face_value_history, set_face_value
from verifier.schemas import FaceValueHistoryOut, FaceValueIn, FaceValueOut

router = APIRouter(tags=["creators"])
logger = logging.getLogger("tracemark.api.facevalue")

#: A product's slug (as ``api.routes.rebates``': routes take nothing from one another).
ProductSlug = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]
_NO_PRODUCT = problem_response("The creator has no such product")
_PATH = "/v1/creators/me/products/{product}/face-value"


@router.get(
    _PATH,
    operation_id="get_my_face_value",
    response_model=FaceValueHistoryOut,
    summary="The face value of one of your products (null: none given), with when each value "
    f"was set or cleared (its newest {MAX_FACE_HISTORY:,} settings, oldest first).",
    responses={404: _NO_PRODUCT},
)
def get_my_face_value(product: ProductSlug, ctx: Context, creator: Creator) -> Response:
    assert creator.creator is not None
    found = face_value_history(ctx.registry.engine, address_bytes(creator.creator), product)
    return JSONResponse(found.as_dict())


@router.put(
    _PATH,
    operation_id="set_my_face_value",
    response_model=FaceValueOut,
    summary="Set the face value printed on your product's cards (minor units of its currency): "
    "resales far below it raise the below-face-value signal.",
    responses={404: _NO_PRODUCT},
)
def set_my_face_value(
    product: ProductSlug, body: FaceValueIn, ctx: Context, creator: Creator
) -> Response:
    assert creator.creator is not None
    face = FaceValue(int(body.face_value), body.currency)
    found = set_face_value(
        ctx.registry.engine,
        address_bytes(creator.creator),
        product,
        face,
        now=ctx.registry.clock(),
    )
    logger.info("creator %s set the face value of %s", creator.creator, product)
    return JSONResponse(found.as_dict())


@router.delete(
    _PATH,
    operation_id="remove_my_face_value",
    response_model=FaceValueOut,
    summary="Clear your product's face value (the below-face-value rule then ignores it).",
    responses={404: _NO_PRODUCT},
)
def remove_my_face_value(product: ProductSlug, ctx: Context, creator: Creator) -> Response:
    assert creator.creator is not None
    found = set_face_value(
        ctx.registry.engine, address_bytes(creator.creator), product, None, now=ctx.registry.clock()
    )
    return JSONResponse(found.as_dict())


__all__ = ["router"]
