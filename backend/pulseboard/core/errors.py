"""Domain errors, each with an HTTP status and a stable code, mapped to responses in one place."""

from typing import Any, ClassVar

from fastapi import FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException


class PulseboardError(Exception):
    status_code: int = status.HTTP_400_BAD_REQUEST
    code: str = "bad_request"
    detail: str = "Bad request"
    headers: ClassVar[dict[str, str] | None] = None
    # True when the work done before the refusal must be committed all the same.
    keeps_changes: bool = False

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        if detail is not None:
            self.detail = detail
        # More fields for the response body, such as the per-item errors of a refused batch.
        self.extra = extra
        super().__init__(self.detail)


class NotAuthenticated(PulseboardError):
    status_code = status.HTTP_401_UNAUTHORIZED
    code = "not_authenticated"
    detail = "Not authenticated"
    headers: ClassVar[dict[str, str] | None] = {"WWW-Authenticate": "Bearer"}


class InvalidCredentials(NotAuthenticated):
    code = "invalid_credentials"
    detail = "Incorrect email or password"


class InvalidToken(NotAuthenticated):
    code = "invalid_token"
    detail = "The token is invalid, expired or revoked"


class Forbidden(PulseboardError):
    status_code = status.HTTP_403_FORBIDDEN
    code = "forbidden"
    detail = "Your role does not allow this"


class NotFound(PulseboardError):
    status_code = status.HTTP_404_NOT_FOUND
    code = "not_found"
    detail = "Not found"


class Conflict(PulseboardError):
    status_code = status.HTTP_409_CONFLICT
    code = "conflict"
    detail = "Conflict"


class ServiceUnavailable(PulseboardError):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    code = "unavailable"
    detail = "The service cannot take this request now; retry shortly"
    headers: ClassVar[dict[str, str] | None] = {"Retry-After": "1"}


class Unprocessable(PulseboardError):
    status_code = status.HTTP_422_UNPROCESSABLE_CONTENT
    code = "unprocessable"
    detail = "The request could not be processed"


def error_body(detail: Any, code: str) -> dict[str, Any]:
    return {"detail": detail, "code": code}


async def _domain_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, PulseboardError)
    body = {**error_body(exc.detail, exc.code), **jsonable_encoder(exc.extra)}
    return JSONResponse(body, exc.status_code, headers=exc.headers)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in exc.errors()]
    return JSONResponse(
        error_body(jsonable_encoder(errors), "validation_error"),
        status.HTTP_422_UNPROCESSABLE_CONTENT,
    )


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {
        404: "not_found",
        405: "method_not_allowed",
        413: "payload_too_large",
        415: "unsupported_media_type",
    }.get(exc.status_code, "http_error")
    return JSONResponse(
        error_body(exc.detail, code), exc.status_code, headers=getattr(exc, "headers", None)
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(PulseboardError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
