"""The repo index: every supported file's symbols, references and imports in SQLite.

* `languages` — file names → grammar wheels → tags queries;
* `tags` — one file's symbols, references and imports (pure);
* `walk` — which files of a tree are read (`.gitignore`, size, binary, vendored);
* `resolve` — which indexed file an import names (pure);
* `store` — the database: schema, per-file writes, lookups;
* `build` — the incremental build: stat sweep, hashes, parses, a pool when cold.

This layer may import only `lynkr.stores` (the connection factory).
"""

from lynkr.repoindex.build import DEFAULT_INDEX, BuildReport, build, index_path
from lynkr.repoindex.store import IndexDB, RefHit, SymbolHit

__all__ = ["DEFAULT_INDEX", "BuildReport", "IndexDB", "RefHit", "SymbolHit", "build", "index_path"]
