"""Refusals before execution: depth, aliases, tokens, and an estimate of the work asked for.

Only fields that run queries cost anything: each analytics answer or metrics query costs
`ANSWER_COST`, a project lookup 1. A list multiplies what is asked of each item by the number of
items it is assumed to have, since the count is not known before the query runs.
"""

from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationRule,
    get_named_type,
)
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)

MAX_DEPTH = 10
MAX_ALIASES = 20
MAX_TOKENS = 2000
MAX_COST = 200
MAX_EXPANDED = 10_000
ANSWER_COST = 10
ANSWERS = ("overview", "timeseries", "topEvents", "breakdown", "sessions")
COSTS: dict[tuple[str, str], int] = {
    ("Query", "projects"): 1,
    ("Query", "project"): 1,
    ("Query", "metricsQuery"): ANSWER_COST,
    **{("Project", name): ANSWER_COST for name in ANSWERS},
}
# How many items a list is taken to hold when its children are priced.
LIST_SIZES: dict[tuple[str, str], int] = {("Query", "projects"): 10}


class CostLimit(ValidationRule):
    """Refuses an operation whose estimated cost passes `MAX_COST`."""

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        # A fragment's cost does not depend on where it is spread, so each is priced once.
        self._fragments: dict[str, int] = {}

    def enter_operation_definition(self, node: OperationDefinitionNode, *_args: Any) -> None:
        root = self.context.schema.get_root_type(node.operation)
        cost = self._cost(node.selection_set, root, frozenset())
        if cost > MAX_COST:
            self.report_error(
                GraphQLError(
                    f"The query would cost {cost}, over the limit of {MAX_COST}: each analytics "
                    f"answer costs {ANSWER_COST}; ask for fewer in one request",
                    node,
                    extensions={"code": "QUERY_TOO_COSTLY", "cost": cost, "limit": MAX_COST},
                )
            )

    def _cost(
        self,
        selections: SelectionSetNode | None,
        parent: GraphQLNamedType | None,
        spreading: frozenset[str],
    ) -> int:
        if selections is None or not isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
            return 0
        total = 0
        for selection in selections.selections:
            if isinstance(selection, FieldNode):
                field = parent.fields.get(selection.name.value)
                if field is None:  # reported by the spec's own rules
                    continue
                key = (parent.name, selection.name.value)
                inner = self._cost(selection.selection_set, get_named_type(field.type), spreading)
                total += COSTS.get(key, 0) + LIST_SIZES.get(key, 1) * inner
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                scope = self.context.schema.get_type(condition.name.value) if condition else parent
                total += self._cost(selection.selection_set, scope, spreading)
            elif isinstance(selection, FragmentSpreadNode):
                total += self._fragment_cost(selection.name.value, spreading)
        return total

    def _fragment_cost(self, name: str, spreading: frozenset[str]) -> int:
        if name in self._fragments:
            return self._fragments[name]
        fragment = self.context.get_fragment(name)
        if fragment is None or name in spreading:  # unknown or cyclic: the spec's rules say so
            return 0
        scope = self.context.schema.get_type(fragment.type_condition.name.value)
        cost = self._cost(fragment.selection_set, scope, spreading | {name})
        self._fragments[name] = cost
        return cost


def expanded_size(document: DocumentNode) -> int:
    """How many selections the document holds once every fragment spread is written out:
    each fragment counted once and multiplied, so a linear walk."""
    fragments = {
        node.name.value: node
        for node in document.definitions
        if isinstance(node, FragmentDefinitionNode)
    }
    sizes: dict[str, int] = {}

    def size(selections: SelectionSetNode | None, spreading: frozenset[str]) -> int:
        total = 0
        for selection in selections.selections if selections else ():
            if isinstance(selection, FieldNode):
                total += 1 + size(selection.selection_set, spreading)
            elif isinstance(selection, InlineFragmentNode):
                total += size(selection.selection_set, spreading)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name not in sizes:
                    fragment = fragments.get(name)
                    if fragment is None or name in spreading:  # the spec's rules report these
                        continue
                    sizes[name] = size(fragment.selection_set, spreading | {name})
                total += sizes[name]
        return total

    return sum(
        size(node.selection_set, frozenset())
        for node in document.definitions
        if isinstance(node, OperationDefinitionNode)
    )


class ExpansionLimit(SchemaExtension):
    """Refuses a document past `MAX_EXPANDED` selections once its fragments are spread, before
    the depth and alias limiters see it: they follow every spread path, and fragments that each
    spread the next one twice make 2^n paths (23 of them held the server for 17 s)."""

    def on_validate(self) -> Iterator[None]:
        document = self.execution_context.graphql_document
        if document is not None and expanded_size(document) > MAX_EXPANDED:
            # Only this refusal is checked; the other rules would walk the paths.
            self.execution_context.validation_rules = (_TooLarge,)
        yield


class _TooLarge(ValidationRule):
    def enter_document(self, node: DocumentNode, *_args: Any) -> None:
        self.report_error(
            GraphQLError(
                f"The document holds more than {MAX_EXPANDED} selections once its fragments "
                "are spread",
                node,
            )
        )


def limits() -> list[Callable[[], SchemaExtension]]:
    """The limiting extensions, as factories: strawberry makes a fresh set per request.
    `ExpansionLimit` comes last, so that it sees (and may drop) every rule the others add."""
    return [
        partial(QueryDepthLimiter, max_depth=MAX_DEPTH),
        partial(MaxAliasesLimiter, max_alias_count=MAX_ALIASES),
        partial(MaxTokensLimiter, max_token_count=MAX_TOKENS),
        partial(AddValidationRules, [CostLimit]),
        ExpansionLimit,
    ]
