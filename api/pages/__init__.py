"""The web dashboard: server-rendered pages with sign-in with GitHub (see `routes`)."""
