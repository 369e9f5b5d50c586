"""docs/operations.md 2: every variable, its default, and one clear error for bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from mergequeue.settings import ConfigError, MergeMethod, load_settings


def test_defaults_match_the_contract() -> None:
    s = load_settings({})
    assert s.DATABASE_URL == "sqlite+aiosqlite:///./mergequeue.db"
    assert s.REDIS_URL == "redis://localhost:6379/0"
    assert s.SERVE_PROMETHEUS_ENDPOINT is False
    assert s.PROMETHEUS_PORT == 8491
    assert s.ENABLE_DB_METRICS is False
    assert s.WEB_PROMETHEUS_PORT is None
    assert s.basic_auth is None
    assert s.DEBUG_ALLOWED_NETWORKS == []
    assert s.PROMETHEUS_MULTIPROC_DIR is None
    assert s.GITHUB_API_URL == "https://api.github.com"
    assert s.GITHUB_APP_ID is None and s.GITHUB_TOKEN is None
    assert s.GITHUB_WEBHOOK_SECRET is None
    assert s.api_tokens == frozenset()
    assert s.QUEUE_LABEL == "mergequeue"
    assert s.MERGE_METHOD is MergeMethod.SQUASH


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("true", True),
        ("TRUE", True),
        ("1", True),
        ("Yes", True),
        ("false", False),
        ("False", False),
        ("0", False),
        ("NO", False),
    ],
)
def test_booleans_accept_true_false_1_0_yes_no_in_any_case(raw: str, expected: bool) -> None:
    s = load_settings({"SERVE_PROMETHEUS_ENDPOINT": raw, "ENABLE_DB_METRICS": raw})
    assert s.SERVE_PROMETHEUS_ENDPOINT is expected and s.ENABLE_DB_METRICS is expected


@pytest.mark.parametrize("raw", ["on", "off", "t", "y", "2", "", "maybe"])
def test_any_other_boolean_is_an_error_naming_the_variable(raw: str) -> None:
    with pytest.raises(ConfigError, match=r"^SERVE_PROMETHEUS_ENDPOINT: expected true/false"):
        load_settings({"SERVE_PROMETHEUS_ENDPOINT": raw})


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"PROMETHEUS_PORT": "http"}, "PROMETHEUS_PORT"),
        ({"PROMETHEUS_PORT": "70000"}, "PROMETHEUS_PORT"),
        ({"WEB_PROMETHEUS_PORT": "0"}, "WEB_PROMETHEUS_PORT"),
        ({"DATABASE_URL": "postgresql://u:pw@db/x"}, "DATABASE_URL"),
        ({"REDIS_URL": "localhost:6379"}, "REDIS_URL"),
        ({"GITHUB_API_URL": "api.github.com"}, "GITHUB_API_URL"),
        ({"MERGE_METHOD": "fast-forward"}, "MERGE_METHOD"),
        ({"DEBUG_ALLOWED_NETWORKS": "10.0.0.0/8,not-a-net"}, "DEBUG_ALLOWED_NETWORKS"),
        ({"GITHUB_APP_ID": "abc"}, "GITHUB_APP_ID"),
        ({"QUEUE_LABEL": "  "}, "QUEUE_LABEL"),
    ],
)
def test_bad_value_is_one_line_naming_the_variable(environ: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ)
    message = str(caught.value)
    assert message.startswith(f"{variable}: ")
    assert "\n" not in message


def test_secrets_are_not_echoed_in_configuration_errors() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"DATABASE_URL": "mysql://admin:hunter2@db/x"})
    assert "hunter2" not in str(caught.value)


def test_basic_auth_needs_both_username_and_password() -> None:
    with pytest.raises(
        ConfigError, match="PROMETHEUS_BASIC_AUTH_USERNAME and PROMETHEUS_BASIC_AUTH_PASSWORD"
    ):
        load_settings({"PROMETHEUS_BASIC_AUTH_USERNAME": "prom"})
    with pytest.raises(ConfigError, match="must be set together"):
        load_settings({"PROMETHEUS_BASIC_AUTH_PASSWORD": "secret"})
    both = load_settings(
        {"PROMETHEUS_BASIC_AUTH_USERNAME": "prom", "PROMETHEUS_BASIC_AUTH_PASSWORD": "s3cret"}
    )
    assert both.basic_auth == ("prom", "s3cret")


def test_github_app_needs_id_and_exactly_one_key(tmp_path: Path) -> None:
    key = tmp_path / "app.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\n...\n")
    with pytest.raises(ConfigError, match="GITHUB_APP_ID is set but neither"):
        load_settings({"GITHUB_APP_ID": "42"})
    with pytest.raises(ConfigError, match="not both"):
        load_settings(
            {
                "GITHUB_APP_ID": "42",
                "GITHUB_APP_PRIVATE_KEY": "x",
                "GITHUB_APP_PRIVATE_KEY_PATH": str(key),
            }
        )
    with pytest.raises(ConfigError, match="GITHUB_APP_ID is not"):
        load_settings({"GITHUB_APP_PRIVATE_KEY": "x"})
    with pytest.raises(ConfigError, match="no readable file"):
        load_settings(
            {"GITHUB_APP_ID": "42", "GITHUB_APP_PRIVATE_KEY_PATH": str(tmp_path / "nope.pem")}
        )
    s = load_settings({"GITHUB_APP_ID": "42", "GITHUB_APP_PRIVATE_KEY_PATH": str(key)})
    assert s.github_private_key() == key.read_text()


def test_lists_are_comma_separated() -> None:
    s = load_settings({"API_TOKENS": "a1, b2,,c3", "DEBUG_ALLOWED_NETWORKS": "10.0.0.0/8, ::1/128"})
    assert s.api_tokens == {"a1", "b2", "c3"}
    assert [str(n) for n in s.DEBUG_ALLOWED_NETWORKS] == ["10.0.0.0/8", "::1/128"]


def test_separate_port_takes_metrics_off_the_main_port() -> None:
    s = load_settings({"SERVE_PROMETHEUS_ENDPOINT": "true", "WEB_PROMETHEUS_PORT": "9100"})
    assert s.web_metrics_on_main_port is False
    assert load_settings({"SERVE_PROMETHEUS_ENDPOINT": "true"}).web_metrics_on_main_port


def test_every_setting_is_documented_in_the_readme_and_the_operations_doc() -> None:
    from mergequeue.settings import Settings

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    operations = (root / "docs" / "operations.md").read_text()
    for name in Settings.model_fields:
        assert f"`{name}`" in readme, name
        assert f"`{name}`" in operations, name


def test_redelivery_settings_are_bounded_by_githubs_retention() -> None:
    assert load_settings({}).WEBHOOK_REDELIVERY_HORIZON_SECONDS == 86400
    with pytest.raises(ConfigError, match="WEBHOOK_REDELIVERY_HORIZON_SECONDS"):
        load_settings({"WEBHOOK_REDELIVERY_HORIZON_SECONDS": str(4 * 86400)})
    with pytest.raises(ConfigError, match="WEBHOOK_REDELIVERY_INTERVAL_SECONDS"):
        load_settings({"WEBHOOK_REDELIVERY_INTERVAL_SECONDS": "1"})


def test_the_dashboards_sign_in_needs_all_three_settings_or_none() -> None:
    secret = "s" * 32
    full = {
        "GITHUB_OAUTH_CLIENT_ID": "Iv1.abc",
        "GITHUB_OAUTH_CLIENT_SECRET": "oauth-secret",
        "SESSION_SECRET": secret,
    }
    assert load_settings(full).sign_in_configured
    assert not load_settings({}).sign_in_configured
    for left_out in full:
        partial = {k: v for k, v in full.items() if k != left_out}
        with pytest.raises(ConfigError, match=f"{left_out} is not set") as caught:
            load_settings(partial)
        assert "\n" not in str(caught.value) and "oauth-secret" not in str(caught.value)
    with pytest.raises(ConfigError, match="SESSION_SECRET: must be at least 32") as caught:
        load_settings({**full, "SESSION_SECRET": "short"})
    assert "short" not in str(caught.value)


def test_where_people_sign_in_follows_the_api_url() -> None:
    assert load_settings({}).github_web_url == "https://github.com"
    ghes = load_settings({"GITHUB_API_URL": "https://ghe.example.com/api/v3"})
    assert ghes.github_web_url == "https://ghe.example.com"
    own = load_settings({"GITHUB_WEB_URL": "https://sso.example.com/"})
    assert own.github_web_url == "https://sso.example.com"
