"""`lynkr_git_release_notes`: the facts for release notes, never the prose.

lynkr gathers the facts between two refs (commits, authors, files changed) as
JSON; the model writes the prose.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from typing import Any

from dulwich.diff_tree import tree_changes
from dulwich.objects import Commit
from dulwich.repo import Repo

from lynkr.agent.tools.base import ToolContext, object_schema
from lynkr.agent.tools.git.repository import REF_DESCRIPTION, GitTool, commit_of, short_date

__all__ = ["ReleaseNotesTool"]


def _release_facts(repo: Repo, since: str, until: str, limit: int) -> str:
    start, end = commit_of(repo, since), commit_of(repo, until)
    commits = [e.commit for e in repo.get_walker(include=[end.id], exclude=[start.id])]
    authors = Counter(c.author.decode("utf-8", "replace") for c in commits)
    changes = tree_changes(repo.object_store, start.tree, end.tree)
    files: dict[str, str] = {}
    for change in changes:
        old = change.old.path if change.old else None
        new = change.new.path if change.new else None
        path = (new or old or b"").decode("utf-8", "replace")
        files[path] = change.type
    facts = {
        "from": {"ref": since, "sha": start.id.decode()},
        "to": {"ref": until, "sha": end.id.decode()},
        "commit_count": len(commits),
        "commits": [_commit_facts(c) for c in commits[:limit]],
        "authors": [{"author": a, "commits": n} for a, n in authors.most_common()],
        "files_changed": [{"path": p, "change": t} for p, t in sorted(files.items())],
    }
    return json.dumps(facts, indent=1, ensure_ascii=False)


def _commit_facts(commit: Commit) -> dict[str, Any]:
    message = commit.message.decode("utf-8", "replace").strip()
    subject, _, body = message.partition("\n")
    return {
        "sha": commit.id.decode()[:12],
        "date": short_date(commit.commit_time),
        "author": commit.author.decode("utf-8", "replace"),
        "subject": subject,
        "body": body.strip()[:1000],
        "merge": len(commit.parents) > 1,
    }


class ReleaseNotesTool(GitTool):
    """`lynkr_git_release_notes`."""

    def __init__(self) -> None:
        super().__init__(
            "release_notes",
            "Gather the facts for release notes or a changelog between two revisions: the "
            "commits (sha, date, author, subject, body), authors with commit counts and the "
            "files changed, as JSON. Write the prose from these facts.",
            object_schema(
                {
                    "since": {"type": "string", "minLength": 1, "description": REF_DESCRIPTION},
                    "until": {"type": "string", "minLength": 1, "description": REF_DESCRIPTION},
                    "max_commits": {"type": "integer", "minimum": 1, "maximum": 1000},
                },
                ("since",),
            ),
        )

    def work(self, arguments: dict[str, Any], context: ToolContext) -> Callable[[Repo], str]:
        since, until = arguments["since"], arguments.get("until", "HEAD")
        limit = int(arguments.get("max_commits", 200))
        return lambda repo: _release_facts(repo, since, until, limit)
