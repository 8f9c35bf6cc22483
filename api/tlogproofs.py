"""A ``c2sp.org/tlog-proof@v1`` proof on the wire: the proof and receipt routes' text answer."""

from __future__ import annotations

from fastapi import Response

from verifier.tlogproof import FILE_EXTENSION, MEDIA_TYPE, TlogProof


def tlog_proof_response(proof: TlogProof, name: str) -> Response:
    """The proof as a text file to save (``name`` + ``.tlog-proof``, the spec's extension)."""
    return Response(
        proof.to_bytes(),
        media_type=MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{name}{FILE_EXTENSION}"'},
    )


__all__ = ["tlog_proof_response"]
