"""The one settings object: every environment variable of docs/operations.md section 2.

Built once by each process's entry point (`api.main`, `jobs`, `migrations/env.py`) and
passed explicitly from there. Nothing else reads the environment.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from mergequeue.notifications.urls import check_webhook_url

_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


# The session cookie's key is derived from SESSION_SECRET: short ones are guessable.
MIN_SESSION_SECRET_LENGTH = 32


class MergeMethod(StrEnum):
    MERGE = "merge"
    SQUASH = "squash"
    REBASE = "rebase"


class CommandPermission(StrEnum):
    """The least repository permission that lets a user command the queue."""

    TRIAGE = "triage"
    WRITE = "write"
    MAINTAIN = "maintain"
    ADMIN = "admin"


class ConfigError(Exception):
    """Bad configuration, described in one line naming the variable(s)."""


def _strict_bool(value: object) -> object:
    # pydantic would also take "on", "t", "y"...; the contract promises exactly these six.
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ValueError(f"expected true/false/1/0/yes/no, got {value!r}")
    return value


def _comma_list(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def _port(value: int) -> int:
    if not 1 <= value <= 65535:
        raise ValueError(f"expected a TCP port 1-65535, got {value}")
    return value


def _within(value: int, low: int, high: int, unit: str) -> int:
    if not low <= value <= high:
        raise ValueError(f"expected {low}-{high} {unit}, got {value}")
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        case_sensitive=True, extra="ignore", frozen=True, validate_default=True
    )

    DATABASE_URL: str = "sqlite+aiosqlite:///./mergequeue.db"
    REDIS_URL: str = "redis://localhost:6379/0"

    SERVE_PROMETHEUS_ENDPOINT: bool = False
    PROMETHEUS_PORT: int = 8491
    ENABLE_DB_METRICS: bool = False
    WEB_PROMETHEUS_PORT: int | None = None
    PROMETHEUS_BASIC_AUTH_USERNAME: str | None = None
    PROMETHEUS_BASIC_AUTH_PASSWORD: SecretStr | None = None
    DEBUG_ALLOWED_NETWORKS: Annotated[list[IPNetwork], NoDecode] = Field(default_factory=list)
    PROMETHEUS_MULTIPROC_DIR: Path | None = None
    # Host names the web process answers to (`Host` header); `*` any, `*.example.com`
    # its subdomains. Anything else is a 400 before any route runs.
    ALLOWED_HOSTS: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["*"])

    GITHUB_API_URL: str = "https://api.github.com"
    GITHUB_APP_ID: int | None = None
    GITHUB_APP_PRIVATE_KEY: SecretStr | None = None
    GITHUB_APP_PRIVATE_KEY_PATH: Path | None = None
    GITHUB_TOKEN: SecretStr | None = None
    GITHUB_WEBHOOK_SECRET: SecretStr | None = None
    # The dashboard's sign-in with GitHub (the App's OAuth client) and the key of its
    # session cookies: all three or none. GITHUB_WEB_URL is where people sign in; unset,
    # it follows GITHUB_API_URL (api.github.com -> github.com, HOST/api/v3 -> HOST).
    GITHUB_OAUTH_CLIENT_ID: str | None = None
    GITHUB_OAUTH_CLIENT_SECRET: SecretStr | None = None
    SESSION_SECRET: SecretStr | None = None
    GITHUB_WEB_URL: str | None = None

    API_TOKENS: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    QUEUE_LABEL: str = "mergequeue"
    # A label that queues a pull request ahead of normal entries (same permission as the
    # queue's commands).
    QUEUE_PRIORITY_LABEL: str = "mergequeue:urgent"
    MERGE_METHOD: MergeMethod = MergeMethod.SQUASH
    # Who may use `/mergequeue merge|cancel`: anyone who can comment could otherwise get a
    # pull request merged by the App on a repository without required reviews.
    QUEUE_COMMAND_PERMISSION: CommandPermission = CommandPermission.WRITE
    # A queue no webhook has woken for this long is re-read by reconciliation.
    RECONCILE_QUIET_SECONDS: int = 60
    # Recovering webhooks GitHub failed to deliver (an App only; mergequeue.webhooks.
    # redelivery): how often, how far back (GitHub keeps deliveries 3 days), how many
    # redeliveries one run asks for, and how long before a guid may be asked for again.
    WEBHOOK_REDELIVERY_INTERVAL_SECONDS: int = 600
    WEBHOOK_REDELIVERY_HORIZON_SECONDS: int = 86400
    WEBHOOK_REDELIVERY_MAX_PER_RUN: int = 100
    WEBHOOK_REDELIVERY_REPEAT_AFTER_SECONDS: int = 3600

    # Notifications (mergequeue.notifications): a Slack-compatible incoming webhook that hears
    # of every repository's events (its path is a secret for Slack), and how long a pause
    # lasts before it is announced.
    NOTIFY_WEBHOOK_URL: SecretStr | None = None
    NOTIFY_PAUSED_AFTER_SECONDS: int = 3600

    # Not in the contract's table, but operators need to tune them; documented in the README.
    LOG_LEVEL: str = "INFO"
    LOG_FORMAT: str = "auto"
    # Off by default: the schema is no secret, but introspection helps probing clients.
    GRAPHQL_INTROSPECTION: bool = False

    @field_validator(
        "SERVE_PROMETHEUS_ENDPOINT", "ENABLE_DB_METRICS", "GRAPHQL_INTROSPECTION", mode="before"
    )
    @classmethod
    def _bools(cls, value: object) -> object:
        return _strict_bool(value)

    @field_validator("PROMETHEUS_PORT", "WEB_PROMETHEUS_PORT")
    @classmethod
    def _ports(cls, value: int | None) -> int | None:
        return None if value is None else _port(value)

    @field_validator(
        "WEB_PROMETHEUS_PORT",
        "GITHUB_APP_ID",
        "GITHUB_OAUTH_CLIENT_ID",
        "GITHUB_OAUTH_CLIENT_SECRET",
        "SESSION_SECRET",
        "GITHUB_WEB_URL",
        "NOTIFY_WEBHOOK_URL",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("API_TOKENS", mode="before")
    @classmethod
    def _tokens(cls, value: object) -> object:
        return _comma_list(value)

    @field_validator("ALLOWED_HOSTS", mode="before")
    @classmethod
    def _hosts(cls, value: object) -> object:
        items = _comma_list(value)
        if not isinstance(items, list):
            return items
        if not items:
            raise ValueError("expected * or a comma-separated list of host names")
        for item in items:
            name = str(item).removeprefix("*.")
            if item != "*" and not re.fullmatch(r"[A-Za-z0-9.\-\[\]:]+", name):
                raise ValueError(f"{item!r} is not a host name, *, or *.domain")
        return [str(item).lower() for item in items]

    @field_validator("DEBUG_ALLOWED_NETWORKS", mode="before")
    @classmethod
    def _networks(cls, value: object) -> object:
        items = _comma_list(value)
        if not isinstance(items, list):
            return items
        networks: list[IPNetwork] = []
        for item in items:
            try:
                networks.append(ipaddress.ip_network(str(item), strict=False))
            except ValueError:
                raise ValueError(f"{item!r} is not a CIDR network such as 10.0.0.0/8") from None
        return networks

    @field_validator("DATABASE_URL")
    @classmethod
    def _database_url(cls, value: str) -> str:
        drivers = ("sqlite+aiosqlite://", "postgresql+asyncpg://")
        if not value.startswith(drivers):
            raise ValueError(
                "expected an async SQLAlchemy URL starting with "
                "sqlite+aiosqlite:// or postgresql+asyncpg://"
            )
        return value

    @field_validator("REDIS_URL")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("expected a redis://, rediss:// or unix:// URL")
        return value

    @field_validator("GITHUB_API_URL")
    @classmethod
    def _github_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("expected an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("GITHUB_WEB_URL")
    @classmethod
    def _github_web_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("expected an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("NOTIFY_WEBHOOK_URL")
    @classmethod
    def _notify_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        return SecretStr(check_webhook_url(value.get_secret_value()))

    @field_validator("NOTIFY_PAUSED_AFTER_SECONDS")
    @classmethod
    def _paused_after(cls, value: int) -> int:
        return _within(value, 60, 7 * 86400, "seconds")

    @field_validator("SESSION_SECRET")
    @classmethod
    def _session_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_SESSION_SECRET_LENGTH:
            raise ValueError(
                f"must be at least {MIN_SESSION_SECRET_LENGTH} characters "
                "(e.g. `openssl rand -hex 32`)"
            )
        return value

    @field_validator("RECONCILE_QUIET_SECONDS")
    @classmethod
    def _quiet(cls, value: int) -> int:
        if not 1 <= value <= 3600:
            raise ValueError(f"expected 1-3600 seconds, got {value}")
        return value

    @field_validator("WEBHOOK_REDELIVERY_INTERVAL_SECONDS")
    @classmethod
    def _redelivery_interval(cls, value: int) -> int:
        return _within(value, 5, 3600, "seconds")

    @field_validator("WEBHOOK_REDELIVERY_HORIZON_SECONDS")
    @classmethod
    def _redelivery_horizon(cls, value: int) -> int:
        # GitHub keeps an App's deliveries for three days: older ones cannot be redelivered.
        return _within(value, 60, 3 * 86400, "seconds")

    @field_validator("WEBHOOK_REDELIVERY_MAX_PER_RUN")
    @classmethod
    def _redelivery_bound(cls, value: int) -> int:
        return _within(value, 1, 1000, "redeliveries")

    @field_validator("WEBHOOK_REDELIVERY_REPEAT_AFTER_SECONDS")
    @classmethod
    def _redelivery_repeat(cls, value: int) -> int:
        return _within(value, 1, 3 * 86400, "seconds")

    @field_validator("QUEUE_LABEL", "QUEUE_PRIORITY_LABEL")
    @classmethod
    def _label(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value.strip()

    @field_validator("LOG_FORMAT")
    @classmethod
    def _log_format(cls, value: str) -> str:
        if value.lower() not in {"auto", "json", "text"}:
            raise ValueError("expected auto, json or text")
        return value.lower()

    @field_validator("LOG_LEVEL")
    @classmethod
    def _log_level(cls, value: str) -> str:
        if value.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("expected DEBUG, INFO, WARNING or ERROR")
        return value.upper()

    @model_validator(mode="after")
    def _pairs(self) -> Settings:
        user, password = self.PROMETHEUS_BASIC_AUTH_USERNAME, self.PROMETHEUS_BASIC_AUTH_PASSWORD
        if bool(user) != bool(password and password.get_secret_value()):
            raise ValueError(
                "PROMETHEUS_BASIC_AUTH_USERNAME and PROMETHEUS_BASIC_AUTH_PASSWORD "
                "must be set together (or neither)"
            )
        if self.GITHUB_APP_PRIVATE_KEY and self.GITHUB_APP_PRIVATE_KEY_PATH:
            raise ValueError("set GITHUB_APP_PRIVATE_KEY or GITHUB_APP_PRIVATE_KEY_PATH, not both")
        has_key = bool(self.GITHUB_APP_PRIVATE_KEY or self.GITHUB_APP_PRIVATE_KEY_PATH)
        if self.GITHUB_APP_ID is not None and not has_key:
            raise ValueError(
                "GITHUB_APP_ID is set but neither GITHUB_APP_PRIVATE_KEY "
                "nor GITHUB_APP_PRIVATE_KEY_PATH is"
            )
        if has_key and self.GITHUB_APP_ID is None:
            raise ValueError("a GitHub App private key is set but GITHUB_APP_ID is not")
        sign_in = {
            "GITHUB_OAUTH_CLIENT_ID": self.GITHUB_OAUTH_CLIENT_ID,
            "GITHUB_OAUTH_CLIENT_SECRET": self.GITHUB_OAUTH_CLIENT_SECRET,
            "SESSION_SECRET": self.SESSION_SECRET,
        }
        missing = [name for name, value in sign_in.items() if value is None]
        if 0 < len(missing) < len(sign_in):
            raise ValueError(
                "the dashboard's sign-in needs GITHUB_OAUTH_CLIENT_ID, "
                "GITHUB_OAUTH_CLIENT_SECRET and SESSION_SECRET together (or none): "
                f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set"
            )
        path = self.GITHUB_APP_PRIVATE_KEY_PATH
        if path is not None and not path.is_file():
            raise ValueError(f"GITHUB_APP_PRIVATE_KEY_PATH: no readable file at {path}")
        return self

    # -- derived views -----------------------------------------------------------------

    @property
    def basic_auth(self) -> tuple[str, str] | None:
        if self.PROMETHEUS_BASIC_AUTH_USERNAME and self.PROMETHEUS_BASIC_AUTH_PASSWORD:
            return (
                self.PROMETHEUS_BASIC_AUTH_USERNAME,
                self.PROMETHEUS_BASIC_AUTH_PASSWORD.get_secret_value(),
            )
        return None

    @property
    def api_tokens(self) -> frozenset[str]:
        return frozenset(token.get_secret_value() for token in self.API_TOKENS)

    @property
    def web_metrics_on_main_port(self) -> bool:
        # A separate port takes over: the contract says "instead of the main port".
        return self.SERVE_PROMETHEUS_ENDPOINT and self.WEB_PROMETHEUS_PORT is None

    @property
    def sign_in_configured(self) -> bool:
        """The dashboard's sign-in with GitHub is set up (the validator makes it all or
        nothing)."""
        return self.GITHUB_OAUTH_CLIENT_ID is not None

    @property
    def github_web_url(self) -> str:
        """Where people sign in: GITHUB_WEB_URL, else derived from GITHUB_API_URL."""
        if self.GITHUB_WEB_URL is not None:
            return self.GITHUB_WEB_URL
        api = self.GITHUB_API_URL
        if api == "https://api.github.com":
            return "https://github.com"
        return api.removesuffix("/api/v3")

    @property
    def notify_webhook_url(self) -> str | None:
        """The global notifications URL (None: not set)."""
        url = self.NOTIFY_WEBHOOK_URL
        return url.get_secret_value() if url is not None else None

    def github_private_key(self) -> str | None:
        if self.GITHUB_APP_PRIVATE_KEY is not None:
            return self.GITHUB_APP_PRIVATE_KEY.get_secret_value()
        if self.GITHUB_APP_PRIVATE_KEY_PATH is not None:
            return self.GITHUB_APP_PRIVATE_KEY_PATH.read_text()
        return None


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build settings from `environ` (the process environment when None).

    Raises ConfigError with one line naming every bad variable.
    """
    try:
        if environ is None:
            return Settings()
        # Passing values as init kwargs runs the same validators as the environment does.
        known = {name: environ[name] for name in Settings.model_fields if name in environ}
        return Settings(**known)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    problems: list[str] = []
    for error in exc.errors():
        location = ".".join(str(part) for part in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        given: Any = error.get("input")
        if location:
            detail = message
            if not isinstance(given, dict) and "got" not in message and given is not None:
                detail = f"{message} (got {_redact(location, given)!r})"
            problems.append(f"{location}: {detail}")
        else:
            problems.append(message)
    return "; ".join(problems)


def _redact(variable: str, value: object) -> object:
    secretish = (
        "PASSWORD",
        "SECRET",
        "TOKEN",
        "KEY",
        "DATABASE_URL",
        "REDIS_URL",
        "WEBHOOK_URL",
    )
    return "<redacted>" if any(word in variable for word in secretish) else value
