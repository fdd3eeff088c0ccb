"""The executable GraphQL schema: openapi/schema.graphql with its resolvers bound by name."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from ariadne import load_schema_from_path, make_executable_schema
from graphql import GraphQLSchema

import openapi
from handlers.graphql_resolvers import BINDABLES

SDL_PATH = Path(openapi.__file__).parent / "schema.graphql"


@cache
def executable_schema() -> GraphQLSchema:
    """The schema, built once per process (names in camelCase, Python's in snake_case)."""
    return make_executable_schema(load_schema_from_path(str(SDL_PATH)), *BINDABLES,
                                  convert_names_case=True)
