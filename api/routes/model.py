"""The served model's card, as much of it as a client may know."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from model.core.protected import allowed_in_card
from model.scoring.predictor import LoanModel

from ..answers import documented, json_response
from ..deps import CallerDep, ModelDep

router = APIRouter(prefix="/v1", tags=["model"])


@router.get("/model", summary="The served model's card: schema, metrics, version", responses=documented(401, 503))
async def model_card(_: CallerDep, model: ModelDep) -> Response:
    return json_response(public_card(model))


def public_card(model: LoanModel) -> dict[str, Any]:
    """What a client may know of the model: no training rows, no hold-out, no drift bins."""
    card = model.card.raw
    keep = ("name", "version", "created_at", "model_kind", "target", "positive_label", "label_meaning", "threshold",
            "schema", "metrics", "versions", "pipeline_sha256", "reference", "imported", "directions", "protected")
    out = {k: card[k] for k in keep if k in card}
    # A prohibited basis the model uses by --allow is said at the top, where no client can miss it.
    out["prohibited_bases_used"] = allowed_in_card(card)
    data = model.card.data
    out["data"] = {k: data[k] for k in ("rows", "fingerprint", "approval_rate") if k in data}
    return out
