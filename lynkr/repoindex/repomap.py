"""`repo_map(db, tokens, focus)`: the ranked map of an index (the I/O around `rank`).

`focus` names files (paths relative to the root) or identifiers the conversation
mentions; each is taken as a file when the index has a file of that path, else
as a name.
"""

from __future__ import annotations

from collections.abc import Iterable

from lynkr.repoindex.rank import Definition, fit, ranked_definitions
from lynkr.repoindex.store import IndexDB

__all__ = ["repo_map"]


def repo_map(db: IndexDB, *, tokens: int = 1024, focus: Iterable[str] = ()) -> str:
    run = db.connection.execute
    definitions = [
        Definition(str(path), int(line), str(name), str(kind), str(signature))
        for path, line, name, kind, signature in run(
            "SELECT f.path, s.line, s.name, s.kind, s.signature FROM symbols s"
            " JOIN files f ON f.id = s.file_id"
        ).fetchall()
    ]
    references = [
        (str(path), str(name), int(count))
        for path, name, count in run(
            "SELECT f.path, r.name, count(*) FROM refs r JOIN files f ON f.id = r.file_id"
            " GROUP BY f.path, r.name"
        ).fetchall()
    ]
    paths = {d.path for d in definitions} | {path for path, _, _ in references}
    wanted = list(focus)
    files = [item for item in wanted if item in paths]
    names = [item for item in wanted if item not in paths]
    ranked = ranked_definitions(
        definitions, references, mentioned_files=files, mentioned_names=names
    )
    return fit(ranked, tokens)
