"""What the API answers besides a decision: errors a program can act on, and reading a body safely."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import Response

from model.core.errors import LoanDeskError
from model.core.schema import FieldError
from model.scoring.rows import RowErrors

from .schemas import MAX_BODY_BYTES, ErrorBody

JSON = "application/json"


class ApiError(LoanDeskError):
    """An answer other than 200, with a body a program can use."""

    def __init__(self, status: int, error: str, message: str, errors: list[dict] | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.error, self.message = status, error, message
        self.errors, self.headers = errors or [], headers


async def read_body(request: Request) -> bytes:
    """The request body, refused with 413 as soon as it passes MAX_BODY_BYTES."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise ApiError(413, "too_large", f"the body is over {MAX_BODY_BYTES // 2**20} MiB")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ApiError(413, "too_large", f"the body is over {MAX_BODY_BYTES // 2**20} MiB")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)  # refuses NaN and Infinity, which JSON does not have
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "invalid_json", f"the body is not valid JSON: {exc}") from None


def problem(e: FieldError) -> dict[str, Any]:
    return {"field": e.field, "value": e.value, "why": e.why}  # as sent: orjson read it, orjson can write it


def summary(result: RowErrors) -> str:
    n = len(result.errors)
    return f"{n} invalid field{'s' if n != 1 else ''}: " + "; ".join(f"{e.field} {e.why}" for e in result.errors)


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    out: dict[int | str, dict[str, Any]] = {}
    for s in statuses:
        words, error, message, errors = ERRORS[s]
        example = {"error": error, "message": message, "errors": errors}
        out[s] = {"model": ErrorBody, "description": words, "content": {JSON: {"example": example}}}
    return out


ERRORS: dict[int, tuple[str, str, str, list]] = {  # status: what it means, and an example body
    400: ("the body is not JSON, or not an object or array", "invalid_json",
          "the body is not valid JSON: unexpected character: line 1 column 9 (char 8)", []),
    401: ("no valid API key", "unauthorized", "a valid API key is needed: send 'Authorization: Bearer KEY'", []),
    404: ("no decision with this id is on record", "not_found",
          "there is no decision '187b0f6f1c2a9e40c3d5a1f200000000' on record", []),
    409: ("the decision is not a rejection (approved, or referred and not yet decided)", "not_a_rejection",
          "decision 187b0f6f1c2a9e40c3d5a1f200000000 was approved: an adverse action notice is only for a rejection",
          []),
    413: ("the body or the array is too large", "too_large", "12,000 applicants in one request; at most 10,000", []),
    422: ("an applicant's fields are invalid (every one listed)", "invalid_applicant",
          "2 invalid fields: age must be at least 18; income is not a number",
          [{"field": "age", "value": 12, "why": "must be at least 18"},
           {"field": "income", "value": "lots", "why": "is not a number"}]),
    503: ("the model cannot be used", "unavailable",
          "the model cannot be used: pipeline.joblib does not match the checksum in its model card", []),
}


def json_response(content: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY), status, headers, media_type=JSON)
