"""Validation rules that reject expensive queries before anything executes."""

from __future__ import annotations

from typing import Any

from ariadne.validation import cost_validator
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    Node,
    OperationDefinitionNode,
    SelectionSetNode,
    StringValueNode,
)
from graphql.validation import ASTValidationRule, ValidationContext, ValidationRule

from api.inputs import unstorable

MAX_DEPTH = 8
MAX_COST = 200
# Every field costs 1; a list of objects costs 10 more, since its size is the data's.
_LIST_COST = {"complexity": 10}
COST_MAP = {
    "Query": {"repositories": _LIST_COST},
    "Repository": {"queue": _LIST_COST},
}


# graphql-core's validation (OverlappingFieldsCanBeMergedRule above all) grows with the
# square of the selections in a document: 800 conflicting aliases took ~0.9 s of the
# event loop. Bounding the selections bounds its worst case to ~15 ms; the
# largest query a client needs (the standard introspection query) has 75.
MAX_SELECTIONS = 100


def document_refusal(document: DocumentNode) -> str | None:
    """Why a parsed document is refused before validation runs, or None.

    Counts every selection (fields, fragment spreads, inline fragments, fragment
    definitions' included) without recursion, and refuses string literals the database
    could not store (`"\\u0000"`, lone surrogates)."""
    selections = 0
    pending: list[Node] = list(document.definitions)
    while pending:
        node = pending.pop()
        if isinstance(node, FieldNode | FragmentSpreadNode | InlineFragmentNode):
            selections += 1
            if selections > MAX_SELECTIONS:
                return f"the document has more than {MAX_SELECTIONS} selections"
        if isinstance(node, StringValueNode):
            reason = unstorable(node.value)
            if reason is not None:
                return f"a string literal {reason}"
        for key in node.keys:
            child = getattr(node, key, None)
            if isinstance(child, Node):
                pending.append(child)
            elif isinstance(child, tuple | list):
                pending.extend(c for c in child if isinstance(c, Node))
    return None


def depth_limit(max_depth: int) -> type[ASTValidationRule]:
    """Reject operations whose fields nest deeper than `max_depth`.

    Introspection fields (`__schema`, `__type`) are left to graphql-core's own
    MaxIntrospectionDepthRule: the standard introspection query is deeper than any of ours.
    """

    class DepthLimit(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            # Fragment depths, computed once each: nested spreads must not cost exponential time.
            self._fragment_depths: dict[str, int] = {}

        def enter_operation_definition(self, node: OperationDefinitionNode, *_args: Any) -> None:
            depth = self._depth(node.selection_set, frozenset())
            if depth > max_depth:
                name = f"'{node.name.value}'" if node.name else "the anonymous operation"
                self.report_error(
                    GraphQLError(
                        f"{name} nests {depth} levels deep; at most {max_depth} are allowed",
                        node,
                        extensions={"code": "QUERY_TOO_DEEP"},
                    )
                )

        def _depth(self, selection_set: SelectionSetNode | None, seen: frozenset[str]) -> int:
            if selection_set is None:
                return 0
            deepest = 0
            for selection in selection_set.selections:
                if isinstance(selection, FieldNode):
                    if selection.name.value.startswith("__"):
                        continue
                    depth = 1 + self._depth(selection.selection_set, seen)
                elif isinstance(selection, InlineFragmentNode):
                    depth = self._depth(selection.selection_set, seen)
                elif isinstance(selection, FragmentSpreadNode):
                    depth = self._fragment_depth(selection.name.value, seen)
                else:  # pragma: no cover - no other selection kinds exist
                    continue
                deepest = max(deepest, depth)
            return deepest

        def _fragment_depth(self, name: str, seen: frozenset[str]) -> int:
            if name in seen:
                return 0  # a cycle: NoFragmentCyclesRule reports it
            if name not in self._fragment_depths:
                fragment = self.context.get_fragment(name)
                if fragment is None:
                    return 0  # unknown: KnownFragmentNamesRule reports it
                self._fragment_depths[name] = self._depth(fragment.selection_set, seen | {name})
            return self._fragment_depths[name]

    return DepthLimit


_DEPTH_LIMIT = depth_limit(MAX_DEPTH)


def validation_rules(variables: dict[str, Any] | None) -> list[type[ASTValidationRule]]:
    """The rules for one request: the cost validator reads field arguments, so it needs
    the request's variables (without them every `$variable` argument is an error)."""
    cost = cost_validator(
        maximum_cost=MAX_COST, default_cost=1, cost_map=COST_MAP, variables=variables
    )
    return [_DEPTH_LIMIT, cost]
