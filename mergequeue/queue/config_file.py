"""`.github/mergequeue.yml`: a repository's queue settings, versioned with its code.

The file holds the keys of the per-repository settings API (`PATCH /api/v1/repos/...`),
checked by the same rules (`commands.check_setting`); a valid file's values are written
with `commands.update_settings`, into the same columns the API writes. A key absent from
the file is left as it is; `null` resets a key to its default, as in the API. `paused` is
operational (the API's pause and resume) and not a file key.

An invalid file (unknown key, wrong type or value, YAML error, too large) changes nothing;
its errors are told to the pull request that brought it, once per commit, through the
notice outbox. Reading the file from GitHub is the worker's (`jobs/config_file.py`).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import yaml
from sqlalchemy.ext.asyncio import AsyncSession

from mergequeue.models import Repository
from mergequeue.queue import notices
from mergequeue.queue.commands import (
    SETTING_CHECKS,
    InvalidSettings,
    check_setting,
    update_settings,
)

CONFIG_PATH: Final = ".github/mergequeue.yml"
# A settings file is a few hundred bytes; anything this large is not one.
MAX_CONFIG_BYTES: Final = 16 * 1024
FILE_KEYS: Final = tuple(SETTING_CHECKS)
# Keys of the API that the file may not set, and why.
NOT_FILE_KEYS: Final = {
    "paused": "paused is operational, not versioned: use the API's pause and resume",
}
# At most this many errors are listed (one per key at most, so a real file never has more).
MAX_ERRORS: Final = 20


@dataclass(frozen=True)
class ConfigError:
    """One thing wrong with the file; `key` names the setting (None: the file as a whole)."""

    key: str | None
    message: str

    def __str__(self) -> str:
        return self.message if self.key is None else f"{self.key}: {self.message}"


class InvalidConfigFile(ValueError):
    """The file cannot be applied; `errors` says every reason found."""

    def __init__(self, errors: Sequence[ConfigError]) -> None:
        self.errors = tuple(errors)
        super().__init__("; ".join(str(e) for e in self.errors))


class _DuplicateKey(yaml.constructor.ConstructorError):
    def __init__(self, key: object, line: int) -> None:
        super().__init__(problem=f"found the key {key!r} twice")
        self.key, self.line = key, line


class _Loader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice (PyYAML keeps the last silently)."""

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, Hashable) and key in seen:
                raise _DuplicateKey(key, key_node.start_mark.line + 1)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _yaml_error(exc: yaml.YAMLError) -> ConfigError:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return ConfigError(None, f"not valid YAML{where}: {problem}")


def parse_config_file(content: bytes) -> dict[str, object]:
    """The settings the file sets, checked by the API's rules (a None value: the default).

    Raises `InvalidConfigFile` with every error found: too large, not UTF-8, not YAML, not
    a mapping, unknown keys, values the API would refuse. An empty file sets nothing.
    """
    if len(content) > MAX_CONFIG_BYTES:
        raise InvalidConfigFile(
            [ConfigError(None, f"the file is {len(content)} bytes; at most {MAX_CONFIG_BYTES}")]
        )
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidConfigFile([ConfigError(None, f"not UTF-8 text (byte {exc.start})")]) from None
    try:
        document = yaml.load(text, Loader=_Loader)
    except _DuplicateKey as exc:
        name = exc.key if isinstance(exc.key, str) else _short(exc.key)
        raise InvalidConfigFile(
            [ConfigError(name, f"set more than once (again at line {exc.line})")]
        ) from None
    except yaml.YAMLError as exc:
        raise InvalidConfigFile([_yaml_error(exc)]) from None
    except RecursionError:
        raise InvalidConfigFile([ConfigError(None, "not valid YAML: nested too deeply")]) from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise InvalidConfigFile(
            [
                ConfigError(
                    None,
                    f"the file must be a mapping of settings (key: value), "
                    f"not a {type(document).__name__}",
                )
            ]
        )
    settings: dict[str, object] = {}
    errors: list[ConfigError] = []
    for key, value in document.items():
        if not isinstance(key, str) or key not in SETTING_CHECKS:
            name = key if isinstance(key, str) else _short(key)
            why = NOT_FILE_KEYS.get(name) or (
                f"unknown key {_short(key)}; the keys are {', '.join(FILE_KEYS)}"
            )
            errors.append(ConfigError(name, why))
            continue
        try:
            settings[key] = check_setting(key, value)
        except InvalidSettings as exc:
            errors.append(ConfigError(key, str(exc)))
    if errors:
        raise InvalidConfigFile(errors[:MAX_ERRORS])
    return settings


# -- applying what the worker read -----------------------------------------------------


@dataclass(frozen=True)
class ConfigFileRead:
    """The file as the worker read it from GitHub for one repository, before the
    transaction that applies it: its settings (valid) or its errors (invalid)."""

    repository_id: int
    # Where it was read: a commit sha or the default branch's name.
    ref: str
    settings: dict[str, object] | None = None
    errors: tuple[ConfigError, ...] = ()
    # The commit that brought the invalid file, and the pull request that brought the
    # commit (None: no pull request was found).
    commit_sha: str | None = None
    pull_number: int | None = None
    # The file is not there (404) or was removed: settings are kept.
    absent: bool = False

    @property
    def valid(self) -> bool:
        return self.settings is not None


def notice_key(repository_id: int, commit_sha: str) -> str:
    return f"config-file:{repository_id}:{commit_sha}"


def error_comment(*, branch: str, commit_sha: str, errors: Sequence[ConfigError]) -> str:
    lines = [
        f"`{CONFIG_PATH}` on `{branch}` is invalid as of {commit_sha[:12]}, so the merge "
        "queue kept its settings as they were:",
        "",
        *(f"- {'`' + e.key + '`: ' if e.key else ''}{e.message}" for e in errors),
        "",
        f"The keys it may set: {', '.join(f'`{k}`' for k in FILE_KEYS)} "
        "(the values the settings API accepts). Fix the file and push again.",
    ]
    return "\n".join(lines)


async def apply_config_file(
    session: AsyncSession, repository: Repository, read: ConfigFileRead
) -> bool:
    """Write a valid file's settings, or store the comment that tells an invalid file's
    pull request why (once per commit). True when something new was written: a setting
    changed, or a comment stored for the first time."""
    if read.absent:
        return False
    if read.settings is not None:
        before = {key: getattr(repository, key) for key in read.settings}
        await update_settings(session=session, repository=repository, changes=read.settings)
        return any(getattr(repository, key) != value for key, value in before.items())
    if read.pull_number is None or read.commit_sha is None:
        return False
    return await notices.add(
        session,
        notices.comment(
            key=notice_key(repository.id, read.commit_sha),
            repository_id=repository.id,
            number=read.pull_number,
            body=error_comment(
                branch=repository.default_branch,
                commit_sha=read.commit_sha,
                errors=read.errors,
            ),
        ),
    )
