"""Reading `.github/mergequeue.yml` from GitHub, and telling what came of it.

Reads happen outside the database transaction that applies them (a rate limit defers the
job, nothing half-applied): on a push to the default branch that changed the file (the
delivery's processing), and for every repository at the hourly discovery and `mergequeue
sync` (one conditional request each: free while the file is unchanged). Parsing,
validation and applying are `mergequeue.queue.config_file`'s.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from mergequeue.github import GitHubClient, GitHubError, RateLimited, Unavailable
from mergequeue.queue.config_file import (
    CONFIG_PATH,
    MAX_CONFIG_BYTES,
    ConfigError,
    ConfigFileRead,
    InvalidConfigFile,
    parse_config_file,
)
from observability.metrics import CONFIG_FILE_ERRORS

log = logging.getLogger("mergequeue.config_file")


async def read_config_file(
    client: GitHubClient,
    *,
    repository_id: int,
    owner: str,
    name: str,
    branch: str,
    ref: str,
    commits: Sequence[str] = (),
) -> ConfigFileRead:
    """The file at `ref` (a sha, or the default branch `branch`), parsed and checked.

    When it is invalid, the pull request that brought it is looked for among the pull
    requests of `commits` (the pushed commits that touched it, newest first): the first
    merged into `branch`. `RateLimited` and `Unavailable` propagate (the caller defers)."""
    found = await client.get_file_contents(owner=owner, repo=name, path=CONFIG_PATH, ref=ref)
    if found is None:
        return ConfigFileRead(repository_id, ref, absent=True)
    try:
        if found.type != "file":
            raise InvalidConfigFile([ConfigError(None, f"{CONFIG_PATH} is a {found.type}")])
        if found.content is None or found.size > MAX_CONFIG_BYTES:
            raise InvalidConfigFile(
                [ConfigError(None, f"the file is {found.size} bytes; at most {MAX_CONFIG_BYTES}")]
            )
        settings = parse_config_file(found.content)
    except InvalidConfigFile as exc:
        commit, number = await _pull_that_brought(client, owner, name, branch, commits)
        return ConfigFileRead(
            repository_id, ref, errors=exc.errors, commit_sha=commit, pull_number=number
        )
    return ConfigFileRead(repository_id, ref, settings=settings)


async def _pull_that_brought(
    client: GitHubClient, owner: str, name: str, branch: str, commits: Sequence[str]
) -> tuple[str | None, int | None]:
    """(commit, pull request number) for the newest of `commits` a pull request merged
    into `branch` brought; (newest commit, None) when none did."""
    for sha in commits:
        try:
            pulls = await client.list_commit_pulls(owner=owner, repo=name, sha=sha)
        except (RateLimited, Unavailable):
            raise
        except GitHubError as exc:
            log.info("no pull requests for a commit", extra={"commit": sha, "why": str(exc)})
            continue
        for pull in pulls:
            if pull.merged and pull.base_ref == branch:
                return sha, pull.number
    return (commits[0] if commits else None), None


def report(full_name: str, read: ConfigFileRead, *, changed: bool, source: str) -> None:
    """One log line for what a read came to; an invalid file also counts in
    `mergequeue_config_file_errors_total`."""
    where = {"repository": full_name, "ref": read.ref, "source": source}
    if read.errors:
        CONFIG_FILE_ERRORS.labels(full_name).inc()
        errors = [str(e) for e in read.errors]
        if read.pull_number is None:
            log.warning(
                "settings file invalid; no pull request found to tell",
                extra={**where, "commit": read.commit_sha, "errors": errors},
            )
        else:
            log.warning(
                "settings file invalid; settings kept",
                extra={
                    **where,
                    "commit": read.commit_sha,
                    "pr": read.pull_number,
                    "errors": errors,
                },
            )
    elif read.settings is not None and changed:
        log.info("settings file applied", extra={**where, "keys": sorted(read.settings)})
