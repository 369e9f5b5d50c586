"""Fuzzing target: the webhook parser and the interpretation of every event.

Hypothesis mutates GitHub's captured payloads (tests/fixtures/webhooks) for every event
the queue handles, plus unknown ones: a random subtree is replaced by a hostile value
(NUL, lone surrogates, integers past 64 bits, NaN/Infinity, wrong types, deep nesting),
deleted, or the body's bytes are cut and flipped. The pipeline a delivery goes through,
bytes as the web process checks them, then `load_payload` and `interpret` as the worker
runs them, must end in a list of changes or in one of the documented refusals
(`UnprocessablePayload`, `UnusableDelivery`): never another exception, which would be a
500 on the web side or a retried, traceback-logging job on the worker's.

Bounded for CI (a few seconds); MQ_FUZZ_EXAMPLES=100000 runs it longer locally.
"""

from __future__ import annotations

import json
import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mergequeue.webhooks.events import KNOWN_EVENTS, UnusableDelivery, interpret
from mergequeue.webhooks.inbox import UnprocessablePayload, load_payload
from tests.support import webhooks

EXAMPLES = int(os.environ.get("MQ_FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FIXTURES = {name: webhooks.fixture(name) for name in webhooks.fixture_names()}
EVENTS = sorted({*KNOWN_EVENTS, *(webhooks.event_of(n) for n in FIXTURES), "unknown_event"})

hostile_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.sampled_from([0, -1, 2**63 - 1, 2**63, -(2**63) - 1, 10**30]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(st.characters(codec=None, exclude_categories=()), max_size=30),
    st.sampled_from(["", "\x00", "\ud800", "a/b/c", "/", "x" * 10_000, "2026-13-45T99:99:99Z"]),
)
hostile_values = st.recursive(
    hostile_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def _mutate(data: st.DataObject, payload: Any) -> Any:
    """`payload` with one random subtree replaced, deleted or nested deeply."""
    if not isinstance(payload, dict | list) or not payload or data.draw(st.integers(0, 3)) == 0:
        choice = data.draw(st.integers(0, 2))
        if choice == 0:
            return data.draw(hostile_values)
        if choice == 1:
            nested: Any = data.draw(hostile_scalars)
            # Deep, within what the encoder can write (deeper: the corrupted bodies' test).
            for _ in range(data.draw(st.integers(1, 600))):
                nested = [nested]
            return nested
        return payload
    if isinstance(payload, dict):
        key = data.draw(st.sampled_from(sorted(payload)))
        copy = dict(payload)
        if data.draw(st.integers(0, 5)) == 0:
            del copy[key]
        else:
            copy[key] = _mutate(data, payload[key])
        return copy
    index = data.draw(st.integers(0, len(payload) - 1))
    return [*payload[:index], _mutate(data, payload[index]), *payload[index + 1 :]]


def _pipeline(event: str, body: bytes) -> None:
    """What happens to a signed delivery: the web's checks, then the worker's."""
    try:
        text = body.decode("utf-8")
        json.loads(text)  # the web refuses what this refuses (400), stores the rest
    except (UnicodeDecodeError, ValueError, RecursionError):
        return
    try:
        payload = load_payload(text)
        if not isinstance(payload, dict):
            return  # the web answers 400 to a non-object
        changes = interpret(event, payload)
    except (UnprocessablePayload, UnusableDelivery):
        return  # parked at once, with the error
    assert isinstance(changes, list)


@FUZZ
@given(data=st.data(), event=st.sampled_from(EVENTS), name=st.sampled_from(sorted(FIXTURES)))
def test_mutated_payloads_are_interpreted_or_refused(
    data: st.DataObject, event: str, name: str
) -> None:
    payload = _mutate(data, FIXTURES[name])
    for _ in range(data.draw(st.integers(0, 2))):
        payload = _mutate(data, payload)
    body = json.dumps(payload, ensure_ascii=data.draw(st.booleans()), allow_nan=True)
    _pipeline(event, body.encode("utf-8", "surrogatepass"))


@FUZZ
@given(
    name=st.sampled_from(sorted(FIXTURES)),
    cut=st.floats(min_value=0, max_value=1),
    flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), max_size=4),
    depth=st.sampled_from([0, 0, 0, 900, 1500, 100_000]),
)
def test_corrupted_bodies_are_interpreted_or_refused(
    name: str, cut: float, flips: list[tuple[float, int]], depth: int
) -> None:
    body = bytearray(json.dumps(FIXTURES[name]).encode())
    for where, byte in flips:
        body[int(where * (len(body) - 1))] = byte
    body = body[: max(1, int(cut * len(body)))] if cut < 0.9 else body
    if depth:  # a field nested around and past the parser's recursion limit
        body = body.replace(b"{", b'{"deep": ' + b"[" * depth + b"]" * depth + b", ", 1)
    _pipeline(webhooks.event_of(name), bytes(body))
