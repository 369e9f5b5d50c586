"""Notifications to a chat's incoming webhook (Slack-compatible): what is decided
(`outbox`, `watch`), and how it is sent (`sender`)."""
