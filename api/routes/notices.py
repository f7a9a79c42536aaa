"""The adverse action notice of a rejection, as a PDF, recorded in the log as produced by the caller."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from model.core.errors import DecisionLogError, DecisionNotFound, NotARejection, TemplateError
from model.notices.produce import Notice, notice_for_decision, schemas_from
from model.notices.template import load_template
from model.scoring.predictor import LoanModel

from ..answers import ApiError, documented, unavailable
from ..deps import CallerDep, ModelDep, Services, ServicesDep

log = logging.getLogger("loandesk.api")
router = APIRouter(prefix="/v1", tags=["decisions"])
PDF = "application/pdf"


@router.get(
    "/decisions/{decision_id}/notice", summary="The adverse action notice of a rejection, as a PDF",
    response_class=Response,
    responses={200: {"content": {PDF: {}}, "description": "the notice (PDF), recorded in the decision log as "
                                                          "produced by this key"},
               **documented(401, 404, 409, 503)},
)
async def notice(decision_id: str, name: CallerDep, services: ServicesDep, model: ModelDep,
                 key_factors: str | None = Query(None, max_length=2000, description=(
                     "the key factors that adversely affected the applicant's credit score, as the consumer "
                     "reporting agency gave them, separated by ';' (printed in the credit score disclosure)"))
                 ) -> Response:
    """The notice for a decision whose final decision is a rejection (the model's, or an officer's
    override): the creditor, the action taken and its date, the principal reasons with their codes,
    the credit score disclosure when the model uses a credit score, and the ECOA notice."""
    made = await run_in_threadpool(_make, services, model, decision_id, "api:" + name, key_factors)
    return Response(made.pdf, 200, {"Content-Disposition": f'attachment; filename="{made.file_name}"'},
                    media_type=PDF)


def _make(services: Services, model: LoanModel, decision_id: str, caller: str, key_factors: str | None) -> Notice:
    """A decision is on record before its id is handed out, so there is no writer to wait for."""
    try:
        return notice_for_decision(services.decision_log, decision_id, template=load_template(),
                                   schemas=schemas_from(services.active.model_dir, model), produced_by=caller,
                                   source="api", key_factors=key_factors)
    except DecisionNotFound as exc:
        writer = services.writer
        if writer is not None and writer.journal.find(decision_id) is not None:
            raise unavailable(f"decision {decision_id} is on record in this server's journal and goes into the "
                              "decision log as soon as the log takes writes again; ask for its notice then") from exc
        raise ApiError(404, "not_found", str(exc)) from exc
    except NotARejection as exc:
        raise ApiError(409, "not_a_rejection", str(exc)) from exc
    except TemplateError as exc:
        log.error("the notice template cannot be used: %s", exc)
        raise ApiError(503, "unavailable", f"the notice template cannot be used: {exc}") from exc
    except DecisionLogError as exc:
        raise ApiError(503, "unavailable", str(exc)) from exc
