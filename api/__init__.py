"""The HTTP edge: routes, GraphQL and the webhook receiver. `api.main:app` is the ASGI app."""
