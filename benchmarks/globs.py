"""Micro benchmark: CPU per match of the policy's path and name globs (`lynkr/policy/globs.py`).

    .venv/bin/python benchmarks/globs.py            # ≈ 20 s

Every tool call the policy judges matches its paths against `files.deny` (and
`deny_write`, `read_outside`) and its name against `tools.allow`/`deny`; a
request matches its model and tool names. Printed: µs of CPU per (pattern,
subject) pair — a call of `glob_matches`/`name_matches` over N patterns,
divided by N — the minimum of 5 batches of ~0.3 s (`micro.cpu_per_call`); then
one call with a pattern of nine `*` against a run of `a`s that it does not
match, the case a backtracking translation makes explode.

Measured 2026-12-07 on this 2-core machine (Python 3.11.7), before (the
hand-written glob → regex translation, stdlib fnmatch for names) → after
(wcmatch 12.0 translations, compiled once and cached), µs per match::

    files.deny (9 names) vs src/lynkr/policy/paths.py               0.53 → 0.25
    files.deny + deny_write (the default policy's 10) vs src/app.py 0.55 → 0.30
    files.deny hit: config/.env (first pattern)                     0.64 → 0.66
    .git/** vs .git/hooks/x                                         0.32 → 1.20
    src/**/*.py vs src/a/b/c.py                                     0.41 → 1.17
    /etc/** vs /usr/x (a miss: both checks)                         0.55 → 0.65
    name: mcp.github.* vs mcp.github.create_issue                   0.47 → 0.47
    name: 9 misses vs claude-x                                      0.30 → 0.21
    *a*a*a*a*a*a*a*a*a*b vs 16 a's                                  510 → 0.9
    *a*a*a*a*a*a*a*a*a*b vs 20 a's                                 4480 → 0.9
    *a*a*a*a*a*a*a*a*a*b vs 24 a's                                27783 → 1.0

A name pattern is cheaper than before (the last name is taken once per call,
not once per pattern); a `**` that matches costs more, since wcmatch's
expression checks at every character that no `.`/`..` segment is crossed;
the policy's usual check (the first two rows) is about twice as fast.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lynkr.policy.globs import glob_matches, name_matches

sys.path.insert(0, str(Path(__file__).resolve().parent))
from micro import cpu_per_call

DENY = (".env", ".env.*", "*.pem", "*.key", "id_rsa*", "id_ed25519*", ".netrc", ".npmrc", ".pypirc")
STARS = "*a*a*a*a*a*a*a*a*a*b"

CASES: list[tuple[str, Callable[[], Any], int]] = [
    (
        "files.deny (9 names) vs src/lynkr/policy/paths.py",
        lambda: glob_matches(DENY, "src/lynkr/policy/paths.py"),
        len(DENY),
    ),
    (
        "files.deny + deny_write (the default policy's 10) vs src/app.py",
        lambda: (glob_matches(DENY, "src/app.py"), glob_matches([".git/**"], "src/app.py")),
        len(DENY) + 1,
    ),
    ("files.deny hit: config/.env (first pattern)", lambda: glob_matches(DENY, "config/.env"), 1),
    (".git/** vs .git/hooks/x", lambda: glob_matches([".git/**"], ".git/hooks/x"), 1),
    ("src/**/*.py vs src/a/b/c.py", lambda: glob_matches(["src/**/*.py"], "src/a/b/c.py"), 1),
    ("/etc/** vs /usr/x (a miss: both checks)", lambda: glob_matches(["/etc/**"], "/usr/x"), 1),
    (
        "name: mcp.github.* vs mcp.github.create_issue",
        lambda: name_matches(["mcp.github.*"], "mcp.github.create_issue"),
        1,
    ),
    ("name: 9 misses vs claude-x", lambda: name_matches(["gpt-*"] * 9, "claude-x"), 9),
]


def main() -> None:
    for label, once, patterns in CASES:
        per_match = cpu_per_call(once, seconds=0.3, repeats=5) / patterns
        print(f"{per_match * 1e6:8.2f} µs  {label}")
    for size in (16, 20, 24):
        text = "a" * size
        spent = cpu_per_call(lambda t=text: glob_matches([STARS], t), seconds=0.3, repeats=3)
        print(f"{spent * 1e6:8.1f} µs  {STARS} vs {size} a's")


if __name__ == "__main__":
    main()
