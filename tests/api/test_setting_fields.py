"""The queue settings are listed once, in `commands.SETTING_CHECKS`; the REST and GraphQL
inputs and answers spell them out for their clients, so these hold each of them to the
table: a new setting cannot be forgotten in one of them. One test per promise."""

from __future__ import annotations

from ariadne import convert_camel_case_to_snake
from graphql import GraphQLInputObjectType, GraphQLObjectType

from api.graphql.route import schema
from api.schemas import RepositoryOut, RepositorySettingsIn
from mergequeue.queue.commands import SETTING_CHECKS


def test_the_rest_settings_body_takes_every_setting_and_nothing_else() -> None:
    assert set(RepositorySettingsIn.model_fields) == set(SETTING_CHECKS)


def test_the_graphql_settings_input_takes_every_setting_and_nothing_else() -> None:
    settings_input = schema.type_map["RepositorySettingsInput"]
    assert isinstance(settings_input, GraphQLInputObjectType)
    # The resolver receives each field under its out_name (snake_case).
    assert {field.out_name for field in settings_input.fields.values()} == set(SETTING_CHECKS)


def test_the_rest_repository_shows_every_setting() -> None:
    assert set(SETTING_CHECKS) <= set(RepositoryOut.model_fields)


def test_the_graphql_repository_shows_every_setting() -> None:
    repository = schema.type_map["Repository"]
    assert isinstance(repository, GraphQLObjectType)
    assert set(SETTING_CHECKS) <= {convert_camel_case_to_snake(name) for name in repository.fields}
