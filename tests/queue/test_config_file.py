"""`.github/mergequeue.yml`: parsed and checked by the API's own rules, applied to the
columns the API writes, its errors told once per commit; how a push says it changed, and
how the worker reads it from GitHub (the fake, in process). One test per promise."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import select

from jobs.config_file import read_config_file
from mergequeue.db import Database, create_database
from mergequeue.github import GitHubClient, StaticTokenAuth
from mergequeue.models import Notice, Repository
from mergequeue.queue import commands
from mergequeue.queue.config_file import (
    CONFIG_PATH,
    FILE_KEYS,
    MAX_CONFIG_BYTES,
    ConfigFileRead,
    InvalidConfigFile,
    apply_config_file,
    notice_key,
    parse_config_file,
)
from mergequeue.webhooks.events import ConfigFileChanged, interpret
from tests.fakegithub import FakeGitHub

FULL_NAME = "octo/hello"
TOKEN = "ghp_static"


def errors_of(content: bytes) -> list[tuple[str | None, str]]:
    with pytest.raises(InvalidConfigFile) as caught:
        parse_config_file(content)
    return [(e.key, e.message) for e in caught.value.errors]


# -- the file --------------------------------------------------------------------------


def test_a_valid_file_gives_the_values_the_api_would_store() -> None:
    content = b"""
queue_mode: parallel
max_parallel_builds: 8
batch_size: 3
batch_wait_seconds: 0
merge_method: rebase
required_checks: [build, build, lint]
ci_timeout_seconds: 1800
queue_label: "  ship-it "
failure_depth: 2
status_comments: false
"""
    assert parse_config_file(content) == {
        "failure_depth": 2,
        "status_comments": False,
        "queue_mode": "parallel",
        "max_parallel_builds": 8,
        "batch_size": 3,
        "batch_wait_seconds": 0,
        "merge_method": "rebase",
        "required_checks": ["build", "lint"],  # the API drops repeats too
        "ci_timeout_seconds": 1800,
        "queue_label": "ship-it",  # and trims, as GitHub does label names
    }


def test_the_file_keys_are_exactly_the_apis_settings_without_paused() -> None:
    # What update_settings takes; the APIs' inputs are held to the same table
    # (tests/api/test_setting_fields.py).
    assert set(FILE_KEYS) == set(commands.SETTING_CHECKS)
    assert "paused" not in FILE_KEYS


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("batch_size", 21),
        ("max_parallel_builds", 0),
        ("ci_timeout_seconds", 59),
        ("batch_wait_seconds", 3601),
        ("queue_mode", "fast"),
        ("merge_method", "octopus"),
        ("required_checks", []),
        ("queue_label", "x" * 101),
        ("failure_depth", 9),
        ("failure_depth", -1),
    ],
)
def test_values_are_checked_by_the_apis_own_rules(key: str, value: object) -> None:
    with pytest.raises(commands.InvalidSettings) as api:
        commands.check_setting(key, value)
    line = f"{key}: {value!r}\n".encode()
    assert errors_of(line) == [(key, str(api.value))]


def test_an_unknown_key_is_an_error_naming_it() -> None:
    [(key, message)] = errors_of(b"batch_sise: 2\n")
    assert key == "batch_sise"
    assert "unknown key 'batch_sise'" in message
    assert "batch_size" in message  # the keys it could have meant


def test_paused_is_not_a_file_key() -> None:
    [(key, message)] = errors_of(b"paused: true\n")
    assert key == "paused"
    assert "operational" in message


@pytest.mark.parametrize(
    ("line", "key", "words"),
    [
        (b"batch_size: '2'\n", "batch_size", "whole number"),
        (b"max_parallel_builds: 4.0\n", "max_parallel_builds", "whole number"),
        (b"batch_size: true\n", "batch_size", "whole number"),
        (b"required_checks: build\n", "required_checks", "list"),
        (b"required_checks: [build, 7]\n", "required_checks", "non-empty check names"),
        (b"queue_mode: yes\n", "queue_mode", "one of serial, parallel"),
        (b"queue_label: [a]\n", "queue_label", "string"),
        (b"failure_depth: '2'\n", "failure_depth", "whole number"),
        (b"failure_depth: true\n", "failure_depth", "whole number"),
        (b"status_comments: 'no'\n", "status_comments", "true or false"),
        (b"status_comments: 1\n", "status_comments", "true or false"),
    ],
)
def test_a_wrong_type_is_an_error_naming_the_key(line: bytes, key: str, words: str) -> None:
    [(named, message)] = errors_of(line)
    assert named == key
    assert words in message


def test_a_yaml_syntax_error_says_where() -> None:
    [(key, message)] = errors_of(b"queue_mode: parallel\nbatch_size: [2\n")
    assert key is None
    assert message.startswith("not valid YAML at line 3")


def test_a_key_given_twice_is_an_error_naming_it() -> None:
    assert errors_of(b"batch_size: 2\nbatch_size: 3\n") == [
        ("batch_size", "set more than once (again at line 2)")
    ]


def test_a_file_over_16_kib_is_refused_unparsed() -> None:
    content = b"# padding\n" * (MAX_CONFIG_BYTES // 10 + 1)
    assert errors_of(content) == [(None, f"the file is {len(content)} bytes; at most 16384")]
    assert parse_config_file(content[: MAX_CONFIG_BYTES - 10]) == {}


@pytest.mark.parametrize("content", [b"- batch_size: 2\n", b"parallel\n", b"3\n"])
def test_a_file_that_is_not_a_mapping_is_an_error(content: bytes) -> None:
    [(key, message)] = errors_of(content)
    assert key is None
    assert "must be a mapping" in message


def test_a_file_that_is_not_utf8_is_an_error() -> None:
    assert errors_of(b"queue_label: \xff\n")[0][0] is None


def test_python_tags_are_refused_not_run() -> None:
    [(key, message)] = errors_of(b"batch_size: !!python/object/apply:os.getpid []\n")
    assert key is None
    assert "not valid YAML" in message


def test_an_empty_file_sets_nothing() -> None:
    assert parse_config_file(b"") == {}
    assert parse_config_file(b"# settings come later\n") == {}


def test_null_resets_a_key_to_its_default_as_in_the_api() -> None:
    assert parse_config_file(b"batch_size: null\nqueue_label:\n") == {
        "batch_size": None,
        "queue_label": None,
    }


def test_every_error_is_reported_at_once() -> None:
    keys = [key for key, _ in errors_of(b"nope: 1\nbatch_size: 0\nqueue_mode: fast\n")]
    assert keys == ["nope", "batch_size", "queue_mode"]


# -- applying it -----------------------------------------------------------------------


@pytest.fixture
async def database(sqlite_url: str) -> AsyncIterator[Database]:
    database = create_database(sqlite_url)
    async with database.sessions() as session, session.begin():
        session.add(Repository(id=7, owner="octo", name="hello", default_branch="main"))
    yield database
    await database.dispose()


async def test_a_valid_file_writes_the_apis_columns_and_leaves_absent_keys(
    database: Database,
) -> None:
    async with database.sessions() as session, session.begin():
        repository = await session.get(Repository, 7)
        assert repository is not None
        await commands.update_settings(
            session=session,
            repository=repository,
            changes={"ci_timeout_seconds": 600, "batch_size": 5},
        )
    read = ConfigFileRead(7, "abc", settings=parse_config_file(b"queue_mode: parallel\n"))
    async with database.sessions() as session, session.begin():
        repository = await session.get(Repository, 7)
        assert repository is not None
        assert await apply_config_file(session, repository, read) is True
    async with database.sessions() as session:
        repository = await session.get(Repository, 7)
        assert repository is not None
        assert repository.queue_mode == "parallel"
        # Not in the file: as the API set them.
        assert (repository.ci_timeout_seconds, repository.batch_size) == (600, 5)
    async with database.sessions() as session, session.begin():
        repository = await session.get(Repository, 7)
        assert repository is not None
        # The same file again changes nothing.
        assert await apply_config_file(session, repository, read) is False


async def test_an_invalid_file_changes_nothing_and_is_commented_once_per_commit(
    database: Database,
) -> None:
    with pytest.raises(InvalidConfigFile) as caught:
        parse_config_file(b"queue_mode: parallel\nbatch_size: 99\n")
    read = ConfigFileRead(7, "c1", errors=caught.value.errors, commit_sha="c1" * 20, pull_number=3)
    for expected in (True, False):
        async with database.sessions() as session, session.begin():
            repository = await session.get(Repository, 7)
            assert repository is not None
            assert await apply_config_file(session, repository, read) is expected
    async with database.sessions() as session:
        repository = await session.get(Repository, 7)
        assert repository is not None
        assert repository.queue_mode is None  # the valid key of an invalid file: not applied
        [notice] = (await session.scalars(select(Notice))).all()
    assert notice.key == notice_key(7, "c1" * 20)
    assert notice.number == 3
    assert "`batch_size`: batch_size must be between 1 and 20" in notice.text
    assert CONFIG_PATH in notice.text


# -- a push that changed it ------------------------------------------------------------


def push(
    *, ref: str = "refs/heads/main", commits: list[dict[str, object]], default: str = "main"
) -> dict[str, object]:
    return {
        "ref": ref,
        "before": "a" * 40,
        "after": "f" * 40,
        "deleted": False,
        "commits": commits,
        "repository": {"id": 7, "full_name": FULL_NAME, "default_branch": default},
        "installation": {"id": 5},
    }


def commit(
    sha: str,
    added: tuple[str, ...] = (),
    modified: tuple[str, ...] = (),
    removed: tuple[str, ...] = (),
) -> dict[str, object]:
    return {"id": sha, "added": list(added), "modified": list(modified), "removed": list(removed)}


def config_changes(payload: dict[str, object]) -> list[ConfigFileChanged]:
    return [c for c in interpret("push", payload) if isinstance(c, ConfigFileChanged)]


def test_a_push_to_the_default_branch_changing_the_file_has_it_read_at_the_pushed_head() -> None:
    payload = push(
        commits=[
            commit("1", added=(CONFIG_PATH,)),
            commit("2"),
            commit("3", modified=(CONFIG_PATH,)),
        ]
    )
    assert config_changes(payload) == [ConfigFileChanged(7, "f" * 40, ("3", "1"), removed=False)]


def test_a_push_that_does_not_touch_the_file_reads_nothing() -> None:
    assert config_changes(push(commits=[commit("1", modified=("README.md",))])) == []


def test_a_push_to_another_branch_reads_nothing() -> None:
    payload = push(ref="refs/heads/feature", commits=[commit("1", added=(CONFIG_PATH,))])
    assert config_changes(payload) == []


def test_a_removal_keeps_the_settings() -> None:
    payload = push(
        commits=[commit("1", modified=(CONFIG_PATH,)), commit("2", removed=(CONFIG_PATH,))]
    )
    [change] = config_changes(payload)
    assert change.removed is True


def test_a_push_listing_20_commits_may_hide_a_change_so_the_file_is_read() -> None:
    payload = push(commits=[commit(str(i)) for i in range(20)])
    assert config_changes(payload) == [ConfigFileChanged(7, "f" * 40, (), removed=False)]


def test_a_push_still_wakes_the_queue_whatever_its_commits() -> None:
    changes = interpret("push", {"ref": "refs/heads/main", **push(commits=[])})
    assert [type(c).__name__ for c in changes] == ["UpsertRepository", "WakeQueue"]


# -- reading it from GitHub ------------------------------------------------------------


@pytest.fixture
def fake() -> FakeGitHub:
    fake = FakeGitHub()
    fake.add_repo(full_name=FULL_NAME)
    fake.add_token(token=TOKEN)
    return fake


@pytest.fixture
async def client(fake: FakeGitHub) -> AsyncIterator[GitHubClient]:
    async with GitHubClient(
        auth=StaticTokenAuth(TOKEN), transport=httpx.ASGITransport(app=fake.asgi)
    ) as client:
        yield client


async def read(client: GitHubClient, ref: str, commits: tuple[str, ...] = ()) -> ConfigFileRead:
    return await read_config_file(
        client,
        repository_id=7,
        owner="octo",
        name="hello",
        branch="main",
        ref=ref,
        commits=commits,
    )


async def test_no_file_is_absent_and_changes_nothing(client: GitHubClient) -> None:
    found = await read(client, "main")
    assert found.absent and found.settings is None and found.errors == ()


async def test_the_file_is_read_at_the_pushed_commit(
    fake: FakeGitHub, client: GitHubClient
) -> None:
    first = fake.push(full_name=FULL_NAME, branch="main", files={CONFIG_PATH: "batch_size: 2\n"})
    fake.push(full_name=FULL_NAME, branch="main", files={CONFIG_PATH: "batch_size: 3\n"})
    assert (await read(client, first)).settings == {"batch_size": 2}
    assert (await read(client, "main")).settings == {"batch_size": 3}


async def test_rereading_an_unchanged_file_is_a_free_conditional_request(
    fake: FakeGitHub, client: GitHubClient
) -> None:
    fake.push(full_name=FULL_NAME, branch="main", files={CONFIG_PATH: "batch_size: 2\n"})
    await read(client, "main")
    fake.clear_calls()
    assert (await read(client, "main")).settings == {"batch_size": 2}
    [call] = fake.calls
    assert call.route == "/repos/{owner}/{repo}/contents/{path}"
    assert call.status == 304 and call.counted is False


async def test_an_invalid_file_is_blamed_on_the_pull_request_that_merged_it(
    fake: FakeGitHub, client: GitHubClient
) -> None:
    pr = fake.add_pull(full_name=FULL_NAME, files={CONFIG_PATH: "batch_size: 0\n"})
    fake.add_pull(full_name=FULL_NAME)  # another, open: not to blame
    fake.push(full_name=FULL_NAME, branch="main", sha=pr["head_sha"])  # merged
    found = await read(client, pr["head_sha"], commits=(pr["head_sha"],))
    assert [str(e) for e in found.errors] == ["batch_size: batch_size must be between 1 and 20"]
    assert (found.commit_sha, found.pull_number) == (pr["head_sha"], pr["number"])


async def test_an_invalid_file_pushed_without_a_pull_request_blames_nobody(
    fake: FakeGitHub, client: GitHubClient
) -> None:
    sha = fake.push(full_name=FULL_NAME, branch="main", files={CONFIG_PATH: "paused: true\n"})
    found = await read(client, sha, commits=(sha,))
    assert found.errors and found.pull_number is None and found.commit_sha == sha
