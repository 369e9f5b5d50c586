"""observability/graphql.py: bounded operation-name labels for graphql_requests_total."""

from __future__ import annotations

from prometheus_client import REGISTRY

from observability.graphql import OTHER, GraphQLRequestCounter


def _value(operation_name: str, status: str) -> float:
    labels = {"operation_name": operation_name, "status": status}
    return REGISTRY.get_sample_value("graphql_requests_total", labels) or 0.0


def test_only_the_first_names_become_labels() -> None:
    counter = GraphQLRequestCounter(max_names=3)
    assert [counter.label(n) for n in ["A", "B", "A", "C", "D", "B"]] == [
        "A",
        "B",
        "A",
        "C",
        OTHER,
        "B",
    ]


def test_anonymous_and_malformed_names_share_other_and_take_no_slot() -> None:
    counter = GraphQLRequestCounter(max_names=1)
    for name in [None, "", "1abc", "has space", "x" * 65, "émoji"]:
        assert counter.label(name) == OTHER
    assert counter.label("x" * 64) == "x" * 64


def test_record_counts_success_and_error() -> None:
    counter = GraphQLRequestCounter()
    before = (_value("UnitOp", "success"), _value("UnitOp", "error"))
    counter.record("UnitOp", success=True)
    counter.record("UnitOp", success=True)
    counter.record("UnitOp", success=False)
    assert (_value("UnitOp", "success"), _value("UnitOp", "error")) == (
        before[0] + 2,
        before[1] + 1,
    )
