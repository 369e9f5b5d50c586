"""`POST /graphql`: exactly this path (a mount would answer 307), behind the API tokens.

The handler parses the request itself rather than using ariadne's ASGI app: it has to
know the operation name and the outcome of every request, malformed ones included, to
count `graphql_requests_total` (ariadne's extensions see neither). `GET /graphql` is not
served (405): there is no bundled explorer; any GraphQL client with a bearer token works,
and with GRAPHQL_INTROSPECTION=true it can read the schema.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from ariadne import graphql
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from graphql import DocumentNode, GraphQLError, OperationDefinitionNode, parse

from api.body import BodyTooLarge, read_capped
from api.deps import SessionDep, SettingsDep, require_api_token
from api.graphql.rules import document_refusal, validation_rules
from api.graphql.schema import Context, build_schema, format_error
from api.inputs import depth, first_unstorable
from api.routes.queue import TasksDep
from observability.graphql import GraphQLRequestCounter

PATH = "/graphql"
MAX_BODY_BYTES = 256 * 1024
# Bounds parsing (and the validation that follows) whatever a client sends; the
# standard introspection query is 163 tokens.
MAX_TOKENS = 5000
# Variables and extensions are flat in any real request; a deeply nested value would only
# recurse through graphql-core's coercion.
MAX_JSON_DEPTH = 16

router = APIRouter(tags=["graphql"])
schema = build_schema()
# The operation-name bound is per process, like the counter it guards.
counter = GraphQLRequestCounter()


class _ClientErrorLog(logging.LoggerAdapter[logging.Logger]):
    """ariadne logs every error in a response at ERROR with a traceback, a client's typo
    included. Unexpected failures are logged by `format_error`; the rest is DEBUG."""

    def error(self, msg: object, *args: object, **kwargs: Any) -> None:
        self.logger.debug("GraphQL error in a response: %s", msg)


_client_errors = _ClientErrorLog(logging.getLogger("mergequeue.graphql"))


@router.post(PATH, include_in_schema=False, dependencies=[Depends(require_api_token)])
async def graphql_endpoint(
    request: Request, session: SessionDep, settings: SettingsDep, tasks: TasksDep
) -> JSONResponse:
    try:
        body = await read_capped(request, MAX_BODY_BYTES)
    except BodyTooLarge:
        return _malformed(f"request body over {MAX_BODY_BYTES} bytes", status=413)
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError included; nesting past the limit
        return _malformed("request body is not JSON")
    if not isinstance(data, dict):
        return _malformed("request body must be a JSON object (batches are not supported)")
    if depth(data) > MAX_JSON_DEPTH:
        return _malformed(f"request body nests deeper than {MAX_JSON_DEPTH} levels")
    query = data.get("query")
    if not isinstance(query, str) or not query.strip():
        return _malformed("the request has no query string")
    reason = first_unstorable(data)
    if reason is not None:
        return _malformed(f"a string in the request {reason}")
    try:
        document = parse(query, max_tokens=MAX_TOKENS)
    except GraphQLError as error:
        return _malformed(error)
    refusal = document_refusal(document)
    if refusal is not None:
        return _malformed(refusal)

    operation_name = _operation_name(document, data.get("operationName"))
    try:
        _, result = await graphql(
            schema,
            data,
            context_value=Context(session=session, tasks=tasks, settings=settings),
            query_document=document,
            validation_rules=_rules,
            introspection=settings.GRAPHQL_INTROSPECTION,
            error_formatter=format_error,
            logger=_client_errors,
        )
    except BaseException:
        counter.record(operation_name, success=False)
        raise
    counter.record(operation_name, success="errors" not in result)
    return JSONResponse(result, status_code=_status_code(result))


def _rules(_context: Any, _document: DocumentNode, data: dict[str, Any]) -> list[Any]:
    variables = data.get("variables")
    return validation_rules(variables if isinstance(variables, dict) else None)


def _status_code(result: dict[str, Any]) -> int:
    """200 once execution started (field errors are in the body); 400 for a request
    rejected before: validation (depth, cost, introspection), unknown operation, bad
    variables. Those errors carry no `path`, and no data."""
    if result.get("data") is None and not any("path" in e for e in result.get("errors", [])):
        return 400
    return 200


def _malformed(error: str | GraphQLError, *, status: int = 400) -> JSONResponse:
    counter.record(None, success=False)
    formatted = error.formatted if isinstance(error, GraphQLError) else {"message": error}
    return JSONResponse({"errors": [formatted]}, status_code=status)


def _operation_name(document: DocumentNode, requested: Any) -> str | None:
    """The name of the operation that was run, as written in the document; None when it is
    anonymous or absent (so a name a client sends only in `operationName` never
    becomes a label unless the document defines it)."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if isinstance(requested, str):
        named = [op for op in operations if op.name and op.name.value == requested]
        operations = named
    if len(operations) != 1 or operations[0].name is None:
        return None
    return operations[0].name.value
