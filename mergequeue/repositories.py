"""Saving repositories as GitHub describes them."""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from mergequeue.models import Repository
from mergequeue.upsert import upsert


async def save_repository(
    session: AsyncSession,
    *,
    id: int,
    owner: str,
    name: str,
    default_branch: str | None,
    installation_id: int | None,
) -> None:
    """Insert or update by GitHub's id; None values leave what is stored unchanged.

    A name can move to another id (a repository deleted and created again, or one renamed
    onto a name another used to have): the row still holding the name is GitHub's past,
    so it goes, with its pull requests and queue history.
    """
    await session.execute(
        delete(Repository).where(
            Repository.owner == owner, Repository.name == name, Repository.id != id
        )
    )
    columns = ["owner", "name"]
    if default_branch:
        columns.append("default_branch")
    if installation_id is not None:
        columns.append("installation_id")
    await upsert(
        session,
        Repository,
        {
            "id": id,
            "owner": owner,
            "name": name,
            "default_branch": default_branch or "main",
            "installation_id": installation_id,
        },
        conflict=["id"],
        update=columns,
    )
