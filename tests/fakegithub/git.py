"""A small, deterministic git object model for the fake GitHub: commits, trees, merges.

A tree maps paths to contents (no directories, no modes); a commit has a tree, parents,
a message and an author. Shas are stable hashes: a tree's of its sorted items, a commit's
of its tree sha, parents and message, so the same history always gets the same shas
(an explicit sha, as a test may give, is kept as it is).

What GitHub computes from history is computed here from real ancestry: reachable sets,
a best common ancestor, a path-wise three-way merge that names its conflicting paths, and
compare's ahead/behind counts.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

__all__ = ["Commit", "Comparison", "Git", "MergeOutcome", "Tree", "UnknownCommit"]


def _sha1(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


class Tree(Mapping[str, str]):
    """An immutable path -> content mapping; equal contents have equal shas."""

    __slots__ = ("_items", "sha")

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        self._items: dict[str, str] = dict(items)
        for path, content in self._items.items():
            if not isinstance(path, str) or not isinstance(content, str):
                raise TypeError("a tree maps path strings to content strings")
        self.sha: str = _sha1("tree\0" + json.dumps(sorted(self._items.items())))

    def __getitem__(self, path: str) -> str:
        return self._items[path]

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Tree({dict(sorted(self._items.items()))!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Tree):
            return self.sha == other.sha
        return super().__eq__(other)

    def __hash__(self) -> int:
        return hash(self.sha)

    def changed(self, changes: Mapping[str, str | None]) -> Tree:
        """This tree with `changes` applied (a None content deletes the path)."""
        items = dict(self._items)
        for path, content in changes.items():
            if content is None:
                items.pop(path, None)
            else:
                items[path] = content
        return Tree(items)


@dataclass(frozen=True)
class Commit:
    sha: str
    tree: Tree
    parents: tuple[str, ...]
    message: str
    author: str = "Monalisa Octocat"

    @property
    def tree_sha(self) -> str:
        return self.tree.sha


def commit_sha(tree: Tree, parents: Iterable[str], message: str) -> str:
    return _sha1("commit\0" + tree.sha + "\0" + ",".join(parents) + "\0" + message)


@dataclass(frozen=True)
class MergeOutcome:
    """A three-way merge: the merged tree, or the paths that conflict (tree None)."""

    tree: Tree | None
    conflicts: tuple[str, ...]
    merge_base: str | None

    @property
    def clean(self) -> bool:
        return self.tree is not None


@dataclass(frozen=True)
class Comparison:
    """GitHub's compare of `base...head`."""

    status: str  # identical, ahead, behind or diverged
    ahead_by: int
    behind_by: int
    base_sha: str
    head_sha: str
    merge_base_sha: str
    commits: tuple[str, ...]  # the head's commits the base lacks, oldest first


class UnknownCommit(KeyError):
    """No commit with this sha."""


def merge_trees(
    base: Mapping[str, str], ours: Mapping[str, str], theirs: Mapping[str, str]
) -> tuple[dict[str, str], list[str]]:
    """Path-wise three-way merge: (merged items, conflicting paths).

    A path changed on one side only takes that side; changed on both sides to different
    contents, or deleted on one side and changed on the other, is a conflict.
    """
    merged: dict[str, str] = {}
    conflicts: list[str] = []
    for path in sorted(set(base) | set(ours) | set(theirs)):
        b, o, t = base.get(path), ours.get(path), theirs.get(path)
        if o == t or t == b:
            result = o
        elif o == b:
            result = t
        else:
            conflicts.append(path)
            continue
        if result is not None:
            merged[path] = result
    return merged, conflicts


@dataclass
class Git:
    """One repository's objects. Commits are immutable, so what is derived from them
    (ancestry, generation, merges of two commits) is computed once."""

    commits: dict[str, Commit] = field(default_factory=dict)
    _ancestors: dict[str, frozenset[str]] = field(default_factory=dict, repr=False)
    _generation: dict[str, int] = field(default_factory=dict, repr=False)
    _merges: dict[tuple[str, str], MergeOutcome] = field(default_factory=dict, repr=False)

    def __contains__(self, sha: object) -> bool:
        return sha in self.commits

    def get(self, sha: str) -> Commit:
        try:
            return self.commits[sha]
        except KeyError:
            raise UnknownCommit(sha) from None

    def resolve(self, sha: str) -> str | None:
        """The full sha of a commit named by its sha or an unambiguous prefix (7+)."""
        if sha in self.commits:
            return sha
        if len(sha) < 7 or len(sha) >= 40:
            return None
        found = [s for s in self.commits if s.startswith(sha)]
        return found[0] if len(found) == 1 else None

    def commit(
        self,
        *,
        tree: Mapping[str, str],
        parents: Iterable[str] = (),
        message: str,
        author: str = "Monalisa Octocat",
        sha: str | None = None,
    ) -> Commit:
        """Store a commit (an existing one with the same sha is returned as it is)."""
        parents = tuple(parents)
        for parent in parents:
            self.get(parent)
        tree = tree if isinstance(tree, Tree) else Tree(tree)
        sha = sha or commit_sha(tree, parents, message)
        existing = self.commits.get(sha)
        if existing is not None:
            return existing
        made = Commit(sha=sha, tree=tree, parents=parents, message=message, author=author)
        self.commits[sha] = made
        return made

    def ancestors(self, sha: str) -> frozenset[str]:
        """Every commit reachable from `sha`, itself included."""
        known = self._ancestors.get(sha)
        if known is not None:
            return known
        # Iteratively, parents first: histories can be longer than the recursion limit.
        stack = [sha]
        while stack:
            top = stack[-1]
            missing = [p for p in self.get(top).parents if p not in self._ancestors]
            if missing:
                stack.extend(missing)
                continue
            stack.pop()
            if top in self._ancestors:
                continue
            reach = {top}
            generation = 0
            for parent in self.commits[top].parents:
                reach |= self._ancestors[parent]
                generation = max(generation, self._generation[parent] + 1)
            self._ancestors[top] = frozenset(reach)
            self._generation[top] = generation
        return self._ancestors[sha]

    def generation(self, sha: str) -> int:
        """Length of the longest path to a root commit (roots are 0)."""
        self.ancestors(sha)
        return self._generation[sha]

    def is_ancestor(self, ancestor: str, sha: str) -> bool:
        """Whether `ancestor` is reachable from `sha` (a commit is its own ancestor)."""
        return ancestor in self.ancestors(sha)

    def merge_bases(self, a: str, b: str) -> list[str]:
        """The best common ancestors: common ancestors no other common ancestor descends
        from, deepest first."""
        common = self.ancestors(a) & self.ancestors(b)
        best: list[str] = []
        covered: set[str] = set()
        # A descendant is deeper than its ancestors: deepest first, each best one hides
        # the common ancestors below it.
        for c in sorted(common, key=lambda c: (-self.generation(c), c)):
            if c not in covered:
                best.append(c)
                covered |= self.ancestors(c)
        return best

    def merge_base(self, a: str, b: str) -> str | None:
        """A best common ancestor of `a` and `b` (None: unrelated histories)."""
        bases = self.merge_bases(a, b)
        return bases[0] if bases else None

    def merge(self, ours: str, theirs: str) -> MergeOutcome:
        """Three-way merge of two commits' trees over their merge base."""
        key = (ours, theirs)
        known = self._merges.get(key)
        if known is not None:
            return known
        base_sha = self.merge_base(ours, theirs)
        base: Mapping[str, str] = self.get(base_sha).tree if base_sha is not None else {}
        items, conflicts = merge_trees(base, self.get(ours).tree, self.get(theirs).tree)
        outcome = MergeOutcome(
            tree=None if conflicts else Tree(items),
            conflicts=tuple(conflicts),
            merge_base=base_sha,
        )
        self._merges[key] = outcome
        return outcome

    def compare(self, base: str, head: str) -> Comparison | None:
        """GitHub's compare of `base...head`; None when they share no history."""
        merge_base = self.merge_base(base, head)
        if merge_base is None:
            return None
        in_base, in_head = self.ancestors(base), self.ancestors(head)
        ahead = sorted(in_head - in_base, key=lambda c: (self.generation(c), c))
        behind = len(in_base - in_head)
        if not ahead and not behind:
            status = "identical"
        elif not ahead:
            status = "behind"
        elif not behind:
            status = "ahead"
        else:
            status = "diverged"
        return Comparison(status, len(ahead), behind, base, head, merge_base, tuple(ahead))
