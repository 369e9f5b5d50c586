"""api/graphql/rules.py: the depth and cost limits, checked in process against the schema."""

from __future__ import annotations

import time

from graphql import get_introspection_query, parse, validate
from graphql.validation import specified_rules

from api.graphql.route import schema
from api.graphql.rules import MAX_DEPTH, validation_rules


def _errors(query: str, variables: dict[str, object] | None = None) -> list[str]:
    rules = (*specified_rules, *validation_rules(variables))
    return [e.message for e in validate(schema, parse(query), rules)]


def _nested(levels: int) -> str:
    """A query `levels` deep: repository > queue > repository > ... > a leaf field."""
    chain = ['repository(owner: "a", name: "b")'] + ["queue", "repository"] * levels
    chain = chain[: levels - 1]
    body = "name" if len(chain) % 2 else "number"
    for field in reversed(chain):
        body = f"{field} {{ {body} }}"
    return f"{{ {body} }}"


def test_queries_up_to_the_depth_limit_pass_and_deeper_ones_fail() -> None:
    assert _errors(_nested(MAX_DEPTH)) == []
    too_deep = MAX_DEPTH + 1
    assert _errors(_nested(too_deep)) == [
        f"the anonymous operation nests {too_deep} levels deep; at most {MAX_DEPTH} are allowed"
    ]


def test_fragment_cycles_are_rejected_without_hanging() -> None:
    query = (
        "{ repositories { ...A } } "
        "fragment A on Repository { queue { repository { ...B } } } "
        "fragment B on Repository { queue { repository { ...A } } }"
    )
    # ariadne's cost validator recurses into the cycle until graphql-core aborts the
    # validation: still a rejection, with a vaguer message than the spec rule's alone.
    assert _errors(query) in (
        ["Validation aborted."],
        ["Cannot spread fragment 'A' within itself via 'B'."],
    )


def test_many_nested_fragment_spreads_are_measured_in_linear_time() -> None:
    # Each fragment spreads the next one twice: 2^40 paths if walked naively.
    fragments = [
        f"fragment F{i} on Repository {{ a: queue {{ number }} ...F{i + 1} ...F{i + 1} }}"
        for i in range(40)
    ]
    fragments.append("fragment F40 on Repository { name }")
    query = "{ repositories { ...F0 } } " + " ".join(fragments)
    started = time.monotonic()
    _errors(query)
    assert time.monotonic() - started < 2


def test_the_standard_introspection_query_fits_the_limits() -> None:
    assert _errors(get_introspection_query()) == []


def test_arguments_given_as_variables_are_costed_not_rejected() -> None:
    query = 'query($n: Int!) { pullRequestStatus(owner: "a", name: "b", number: $n) { number } }'
    assert _errors(query, {"n": 3}) == []


def test_wide_queries_exceed_the_cost_limit() -> None:
    fields = " ".join(f"r{i}: repositories {{ queue {{ number }} }}" for i in range(10))
    [error] = _errors(f"{{ {fields} }}")
    assert error.startswith("The query exceeds the maximum cost of 200.")
