"""What every route may depend on, declared once: the services on app.state, the served model, the caller.

Dependencies are `async` so that FastAPI calls them on the event loop (a sync dependency would
cost a thread hop per request).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from model.core.errors import ModelIntegrityError
from model.records.log import DecisionLog
from model.records.writer import LogWriter
from model.scoring.predictor import LoanModel

from .answers import ApiError, unavailable
from .keys import KeyStore, KeysUnavailable, bearer
from .readiness import Readiness
from .registry import ActiveModel


@dataclass
class Services:
    """The long-lived parts of one API instance; the writer and the readiness check exist only while
    the app is running."""

    active: ActiveModel
    decision_log: DecisionLog
    keys: KeyStore
    writer: LogWriter | None = None
    readiness: Readiness | None = None


def services_of(request: Request) -> Services:
    return request.app.state.services


async def services(request: Request) -> Services:
    return services_of(request)


async def served_model(request: Request) -> LoanModel:
    """The verified active model, or 503 saying why it cannot be used."""
    try:
        return services_of(request).active.get()
    except ModelIntegrityError as exc:
        raise unavailable(f"the model cannot be used: {exc}") from exc


async def caller(request: Request) -> str:
    """The name of the API key the request carries, or 401 (503 when the key table cannot be read)."""
    try:
        name = services_of(request).keys.name_for(bearer(request.headers.get("authorization")))
    except KeysUnavailable as exc:
        raise unavailable(str(exc)) from exc
    if name is None:
        raise ApiError(401, "unauthorized", "a valid API key is needed: send 'Authorization: Bearer KEY'",
                       headers={"WWW-Authenticate": "Bearer"})
    return name


ServicesDep = Annotated[Services, Depends(services)]
ModelDep = Annotated[LoanModel, Depends(served_model)]
CallerDep = Annotated[str, Depends(caller)]
