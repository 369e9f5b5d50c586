"""The GraphQL API at `POST /graphql`: schema, resolvers, validation rules and the route."""
