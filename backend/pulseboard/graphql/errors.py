"""Every GraphQL error carries a code in `extensions`; unexpected ones are logged and masked."""

from collections.abc import Iterator

from graphql import GraphQLError, GraphQLSyntaxError
from strawberry.extensions import SchemaExtension

from pulseboard.core.errors import NotAuthenticated, PulseboardError

INTERNAL = "INTERNAL_SERVER_ERROR"


def is_unexpected(error: GraphQLError) -> bool:
    """True for a failure of ours rather than of the request: the only errors worth logging."""
    original = error.original_error
    # Without a path the error came before execution: the document or its variables were bad.
    return (
        error.path is not None
        and original is not None
        and not isinstance(original, PulseboardError)
    )


def code_of(exc: PulseboardError) -> str:
    # GraphQL clients look for UNAUTHENTICATED whichever token problem it was.
    return "UNAUTHENTICATED" if isinstance(exc, NotAuthenticated) else exc.code.upper()


def coded(error: GraphQLError) -> GraphQLError:
    original = error.original_error
    if isinstance(original, PulseboardError):
        message, code = original.detail, code_of(original)
    elif is_unexpected(error):
        message, code = "Internal server error", INTERNAL
    elif error.extensions and "code" in error.extensions:
        return error
    elif isinstance(error, GraphQLSyntaxError):
        message, code = error.message, "GRAPHQL_PARSE_FAILED"
    else:
        message, code = error.message, "GRAPHQL_VALIDATION_FAILED"
    return GraphQLError(
        message,
        error.nodes,
        error.source,
        error.positions,
        error.path,
        extensions={**(error.extensions or {}), "code": code},
    )


class ErrorCodes(SchemaExtension):
    """Rewrites the errors of each result, after `Schema.process_errors` has logged them."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is not None and result.errors:
            result.errors = [coded(error) for error in result.errors]
