"""Building the GitHub client the settings describe (an App, a token, or none)."""

from __future__ import annotations

from mergequeue.github import AppAuth, GitHubClient, StaticTokenAuth
from mergequeue.github.queue_adapter import RestRepositoryGitHub
from mergequeue.github.transport import CallObserver, RateLimitObserver
from mergequeue.settings import Settings


def github_client(
    settings: Settings,
    *,
    observe_call: CallObserver | None = None,
    observe_rate_limit: RateLimitObserver | None = None,
) -> GitHubClient | None:
    """The configured client; None when neither an App nor a token is configured."""
    key = settings.github_private_key()
    if settings.GITHUB_APP_ID is not None and key is not None:
        auth: AppAuth | StaticTokenAuth = AppAuth(app_id=settings.GITHUB_APP_ID, private_key=key)
    elif settings.GITHUB_TOKEN is not None:
        auth = StaticTokenAuth(settings.GITHUB_TOKEN.get_secret_value())
    else:
        return None
    return GitHubClient(
        auth=auth,
        base_url=settings.GITHUB_API_URL,
        observe_call=observe_call,
        observe_rate_limit=observe_rate_limit,
    )


def installation_client(client: GitHubClient, installation_id: int | None) -> GitHubClient:
    """The client to use for one installation (a token client serves every installation)."""
    if installation_id is None or not client.authenticates_as_app:
        return client
    return client.for_installation(installation_id)


def repository_github(
    client: GitHubClient, *, installation_id: int | None, owner: str, name: str
) -> RestRepositoryGitHub:
    """The queue engine's view of one repository, through its installation."""
    return RestRepositoryGitHub(
        installation_client(client, installation_id), owner=owner, repo=name
    )
