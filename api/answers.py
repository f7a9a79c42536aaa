"""What the API answers besides a decision: errors a program can act on, and reading a body safely."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import Response

from model.core.errors import LoanDeskError
from model.core.schema import FieldError
from model.scoring.rows import RowErrors

from .schemas import MAX_BODY_BYTES, ErrorBody

JSON = "application/json"
BODY_SECONDS = 10.0  # the whole body must arrive within this: a slow client is dropped, not waited for
RETRY_AFTER_SECONDS = 2  # what a 503 tells the client to wait before trying again


class ApiError(LoanDeskError):
    """An answer other than 200, with a body a program can use."""

    def __init__(self, status: int, error: str, message: str, errors: list[dict] | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.error, self.message = status, error, message
        self.errors, self.headers = errors or [], headers


def unavailable(message: str) -> ApiError:
    """503 with Retry-After: the server cannot take this request now, and may shortly."""
    return ApiError(503, "unavailable", message, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def require_json(request: Request) -> None:
    """415 unless the body is declared `application/json` (or a `+json` type): a form post or
    text/plain from a browser page is never decided."""
    declared = request.headers.get("content-type", "")
    kind = declared.split(";", 1)[0].strip().lower()
    if kind != JSON and not (kind.startswith("application/") and kind.endswith("+json")):
        shown = repr(declared) if declared else "none"
        raise ApiError(415, "unsupported_media_type",
                       f"the body must be sent as Content-Type: application/json (it was {shown})")


async def read_body(request: Request) -> bytes:
    """The request body, refused with 413 as soon as it passes MAX_BODY_BYTES and with 408 when it
    takes longer than BODY_SECONDS to arrive (the connection is then closed)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise ApiError(413, "too_large", f"the body is over {MAX_BODY_BYTES // 2**20} MiB")
    chunks, size = [], 0
    try:
        async with asyncio.timeout(BODY_SECONDS):
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise ApiError(413, "too_large", f"the body is over {MAX_BODY_BYTES // 2**20} MiB",
                                   headers={"Connection": "close"})
                chunks.append(chunk)
    except TimeoutError:
        raise ApiError(408, "timeout", f"the body did not arrive within {BODY_SECONDS:g} s",
                       headers={"Connection": "close"}) from None
    return b"".join(chunks)


def _no_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        counts: dict[str, int] = {}
        for k, _ in pairs:
            counts[k] = counts.get(k, 0) + 1
        repeated = next(k for k, n in counts.items() if n > 1)
        raise ApiError(400, "duplicate_key", f"the key {repeated!r} appears more than once in one object; "
                                             "send each field once")
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    number = float(text)
    if number - number != 0:  # inf: the number is too large for a float
        raise ValueError(f"the number {text[:40]} is out of range")
    return number


_DECODER = json.JSONDecoder(object_pairs_hook=_no_repeats, parse_constant=_no_constant, parse_float=_finite)


def parse_json(body: bytes) -> Any:
    """The body as JSON. Refuses what JSON does not have (NaN, Infinity) and objects that repeat a
    key: `{"age": 200, "age": 35}` would otherwise be read as whichever came last."""
    try:
        text = body.decode("utf-8")
        return _DECODER.decode(text.removeprefix("\ufeff"))
    except UnicodeDecodeError as exc:
        raise ApiError(400, "invalid_json", f"the body is not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    except ValueError as exc:  # json.JSONDecodeError, and _no_constant's
        raise ApiError(400, "invalid_json", f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise ApiError(400, "invalid_json", "the body is not valid JSON: nested too deeply") from None


def problem(e: FieldError) -> dict[str, Any]:
    return {"field": e.field, "value": _echo(e.value), "why": e.why}  # the value as sent


def _echo(value: Any) -> Any:
    """A value as JSON can carry it back: an integer past 64 bits as its digits, wherever it is."""
    if type(value) is int:
        return value if -(2**63) <= value < 2**64 else str(value)
    if isinstance(value, list):
        return [_echo(v) for v in value]
    if isinstance(value, dict):
        return {k: _echo(v) for k, v in value.items()}
    return value


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
    400: ("the body is not JSON (or repeats a key in an object), or not an object or array", "invalid_json",
          "the body is not valid JSON: unexpected character: line 1 column 9 (char 8)", []),
    401: ("no valid API key", "unauthorized", "a valid API key is needed: send 'Authorization: Bearer KEY'", []),
    404: ("no decision with this id is on record", "not_found",
          "there is no decision '187b0f6f1c2a9e40c3d5a1f200000000' on record", []),
    409: ("the decision is not a rejection (approved, or referred and not yet decided)", "not_a_rejection",
          "decision 187b0f6f1c2a9e40c3d5a1f200000000 was approved: an adverse action notice is only for a rejection",
          []),
    408: ("the body did not arrive in time", "timeout", "the body did not arrive within 10 s", []),
    413: ("the body or the array is too large", "too_large", "12,000 applicants in one request; at most 10,000", []),
    415: ("the body is not sent as application/json", "unsupported_media_type",
          "the body must be sent as Content-Type: application/json (it was 'text/plain')", []),
    422: ("an applicant's fields are invalid (every one listed)", "invalid_applicant",
          "2 invalid fields: age must be at least 18; income is not a number",
          [{"field": "age", "value": 12, "why": "must be at least 18"},
           {"field": "income", "value": "lots", "why": "is not a number"}]),
    503: ("the model cannot be used, or the decision cannot be put on record now (see Retry-After)", "unavailable",
          "the decision could not be put on record; try again shortly", []),
}


def json_response(content: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY), status, headers, media_type=JSON)
