"""The `/api/graphql` route: POST (or GET) a query with the same bearer token as the REST API."""

from typing import Any

from cross_web import HTTPException
from fastapi.responses import JSONResponse
from strawberry.fastapi import GraphQLRouter
from strawberry.types.unset import UNSET

from pulseboard.core.errors import error_body
from pulseboard.graphql.context import Context, get_context
from pulseboard.graphql.schema import schema

PATH = "/api/graphql"
_CODES = {400: "malformed_body", 405: "method_not_allowed", 415: "unsupported_media_type"}


class Router(GraphQLRouter[Context, None]):
    """Strawberry's router, refusing a request it cannot read in the API's JSON error shape."""

    # Typed loosely: the parent's `run` is overloaded for HTTP and WebSocket requests.
    async def run(self, request: Any, context: Any = UNSET, root_value: Any = UNSET) -> Any:
        try:
            return await super().run(request, context, root_value)
        except HTTPException as exc:
            return JSONResponse(
                error_body(exc.reason, _CODES.get(exc.status_code, "bad_request")),
                exc.status_code,
            )
        except (UnicodeDecodeError, RecursionError) as exc:
            # Strawberry reads the body with json.loads, which raises these past its checks: a
            # body that is not UTF-8, or nested past Python's recursion limit.
            reason = "not UTF-8" if isinstance(exc, UnicodeDecodeError) else "nested too deep"
            return JSONResponse(error_body(f"The body is {reason}", "malformed_body"), 400)


def graphql_router() -> GraphQLRouter[Context, None]:
    """A router per app: strawberry's router keeps per-app state and is not shared."""
    # No subscriptions: live data has its own WebSocket (`/api/v1/ws/events/{project}`).
    return Router(
        schema,
        path=PATH,
        # A generator: FastAPI runs it as a dependency and closes the session after the answer
        # (strawberry's annotation names plain functions only).
        context_getter=get_context,  # type: ignore[arg-type]
        subscription_protocols=(),
        tags=["graphql"],
    )
