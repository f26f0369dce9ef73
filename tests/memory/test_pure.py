"""The pure parts of memory, table-driven: words, surprise factors, verdicts, ranking, decay."""

from __future__ import annotations

import pytest

from lynkr.memory.decay import DAY, PruneRow, decayed, prune_plan, recency
from lynkr.memory.model import Candidate, Memory
from lynkr.memory.rank import RankWeights, coverage, rank, skill_confidence
from lynkr.memory.surprise import (
    Neighbour,
    context_switch,
    contradiction,
    emphasis,
    judge,
    novelty,
    specificity,
    surprise,
)
from lynkr.memory.text import entities, fts_query, keywords, normalized

NOW = 1_800_000_000.0


def memory(memory_id: int, content: str, **fields: object) -> Memory:
    values: dict[str, object] = {
        "type": "fact",
        "workspace": "/ws",
        "owner": None,
        "importance": 0.6,
        "surprise": 0.5,
        "created": NOW,
        "updated": NOW,
    }
    values.update(fields)
    return Memory(memory_id, content, **values)  # type: ignore[arg-type]


# Words ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Which test runner do we use?", ["test", "runner"]),
        ("The DB listens on port 5433.", ["listens", "port", "5433"]),
        ("use `pyproject.toml`, not setup.py", ["pyproject.toml", "setup.py"]),
        ("the the THE", []),
    ],
)
def test_keywords(text: str, expected: list[str]) -> None:
    assert keywords(text) == expected


@pytest.mark.parametrize(
    ("terms", "expected"),
    [
        (["pytest", "runner"], '"pytest" OR "runner"'),
        (['say "hi"', "NEAR(a b)"], '"say  hi" OR "NEAR(a b)"'),
        (["AND", "OR", "col:umn"], '"AND" OR "OR" OR "col:umn"'),
        ([], None),
        (['"'], None),
    ],
)
def test_fts_query_quotes_every_term(terms: list[str], expected: str | None) -> None:
    assert fts_query(terms) == expected


def test_normalized_and_entities() -> None:
    assert normalized("  We ALWAYS run `pytest -x`! ") == "we always run pytest x"
    assert {"pytest -x", "getuser", "user_id", "postgres"} <= entities(
        "Run `pytest -x`; call getUser with user_id on Postgres."
    )


# Surprise factors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "stored", "similarity", "expected"),
    [
        ("we deploy with ArgoCD", [], None, 1.0),
        ("we deploy with ArgoCD", ["we deploy with ArgoCD"], None, 0.0),
        ("we deploy with ArgoCD", ["the cat sat on a mat"], None, 1.0),
        ("we deploy with ArgoCD", ["the cat sat on a mat"], 0.75, 0.25),
        ("deploy staging ArgoCD weekly", ["deploy staging nightly"], None, 0.5),
    ],
)
def test_novelty(text: str, stored: list[str], similarity: float | None, expected: float) -> None:
    neighbours = [Neighbour(memory(i, s), similarity) for i, s in enumerate(stored)]
    assert novelty(text, neighbours) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("text", "stored", "expected"),
    [
        (
            "The staging database listens on port 5434",
            "The staging database listens on port 5433",
            0.7,
        ),
        ("Do not run the integration tests locally", "Run the integration tests locally", 0.8),
        (
            "We switched to uv for the project dependencies",
            "We manage project dependencies with poetry",
            0.7,
        ),
        ("Always squash commits when merging", "Never squash commits when merging", 0.8),
        ("Use tabs for indentation in Makefiles", "Use spaces for indentation in Makefiles", 0.6),
        ("The staging database listens on port 5433", "Prefer tabs in Makefiles", 0.0),
        (
            "The staging database listens on port 5433",
            "The staging database listens on port 5433",
            0.0,
        ),
    ],
)
def test_contradiction(text: str, stored: str, expected: float) -> None:
    score, target = contradiction(text, [Neighbour(memory(7, stored))])
    assert score == pytest.approx(expected)
    assert target == (7 if expected else None)


@pytest.mark.parametrize(
    ("text", "low", "high"),
    [
        ("ok", 0.0, 0.0),
        # a proper noun, a number, a code reference, an identifier: 4 × 0.15-0.2
        ("The API server reads `config/app.yaml` on port 8080 via load_config", 0.65, 0.65),
        ("The API server reads `config/app.yaml` on port 8080 via load_config daily", 0.8, 0.8),
        ("we like short functions", 0.0, 0.0),
    ],
)
def test_specificity(text: str, low: float, high: float) -> None:
    assert low - 1e-9 <= specificity(text) <= high + 1e-9


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tabs in makefiles", 0.0),
        ("Remember: tabs in makefiles!", 0.35),
        ("you MUST ALWAYS use tabs!!", 0.4 + 0.3 + 0.2),
        ("very very important", 0.2 + 0.15),
    ],
)
def test_emphasis(text: str, expected: float) -> None:
    assert emphasis(text) == pytest.approx(min(1.0, expected))


def test_context_switch() -> None:
    recent = [memory(1, "the build uses make and docker")]
    assert context_switch("docker build images", []) == 0.0
    assert context_switch("the build uses docker", recent) == 0.0
    assert context_switch("payments retry with backoff", recent) == 1.0


def test_surprise_weighs_the_factors() -> None:
    candidate = Candidate("The staging database listens on port 5434", "fact", "user", 0.5)
    stored = [Neighbour(memory(3, "The staging database listens on port 5433"))]
    scored = surprise(candidate, stored)
    f = scored.factors
    expected = (
        0.3 * f["novelty"]
        + 0.4 * f["contradiction"]
        + 0.15 * f["specificity"]
        + 0.1 * f["emphasis"]
        + 0.05 * f["context_switch"]
    )
    assert scored.score == pytest.approx(expected)
    assert f["contradiction"] == pytest.approx(0.7) and scored.contradicts == 3


# Verdicts ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "source", "stored", "similarity", "action"),
    [
        ("We deploy with ArgoCD every Friday", "user", [], None, "store"),
        (
            "we deploy with argocd every friday!",
            "user",
            ["We deploy with ArgoCD every Friday"],
            None,
            "merge",
        ),
        (
            "We deploy with ArgoCD every Thursday",
            "user",
            ["We deploy with ArgoCD every Friday"],
            0.97,
            "merge",
        ),
        (
            "The staging DB listens on port 5434",
            "user",
            ["The staging DB listens on port 5433"],
            0.95,
            "supersede",
        ),
        ("ok thanks", "user", ["ok thanks a lot for this"], 0.5, "skip"),
        ("ok thanks", "explicit", ["ok thanks a lot for this"], 0.5, "store"),
    ],
)
def test_judge(
    content: str, source: str, stored: list[str], similarity: float | None, action: str
) -> None:
    neighbours = [Neighbour(memory(i + 1, s), similarity) for i, s in enumerate(stored)]
    verdict = judge(Candidate(content, "fact", source), neighbours, threshold=0.3)
    assert verdict.action == action, verdict
    assert (verdict.target is not None) == (action in ("merge", "supersede"))


# Ranking -------------------------------------------------------------------------------------


def test_rank_formula_golden() -> None:
    memories = {
        1: memory(1, "We run the tests with pytest -x", importance=0.8),
        2: memory(2, "The deploy runs on Fridays", importance=0.6, updated=NOW - 30 * DAY),
    }
    hits = rank(
        "how do we run the tests",
        memories,
        keyword_ids=[1, 2],
        vector_hits=[(1, 0.86), (2, 0.44)],
        now=NOW,
        half_life_days=30,
        limit=5,
    )
    assert [hit.memory.id for hit in hits] == [1, 2]
    first = hits[0]
    # fused: rank 1 in both lists = the best possible; relevance: max(coverage 2/2, cosine)
    assert first.reasons["fused"] == pytest.approx(1.0)
    assert first.relevance == pytest.approx(1.0)
    assert first.score == pytest.approx(0.6 * 1.0 + 0.25 * 0.8 + 0.15 * 1.0)
    second = hits[1]
    fused = (1 / 62 + 1 / 62) / (2 / 61)
    relevance = max(coverage(["run", "tests"], memories[2].content), (0.44 - 0.05) / 0.95)
    assert second.score == pytest.approx(
        0.6 * (fused + relevance) / 2 + 0.25 * 0.6 * 0.5 + 0.15 * 0.5
    )


def test_rank_drops_what_is_under_the_floor_and_unknown_ids() -> None:
    memories = {1: memory(1, "Prefer tabs in Makefiles")}
    hits = rank(
        "what port does postgres use",
        memories,
        [1, 99],
        [(1, 0.1)],
        now=NOW,
        half_life_days=30,
        limit=5,
    )
    assert hits == []
    loose = RankWeights(floor=0.0)
    hits = rank(
        "what port does postgres use",
        memories,
        [1],
        [],
        now=NOW,
        half_life_days=30,
        limit=5,
        weights=loose,
    )
    assert [hit.memory.id for hit in hits] == [1]


def test_rank_limit_and_skill_confidence() -> None:
    skill = memory(5, "pytest tests fixed by rerunning", type="skill", successes=3, failures=1)
    assert skill_confidence(skill) == pytest.approx(4 / 6)
    memories = {i: memory(i, f"pytest tests note {i}") for i in range(1, 9)}
    hits = rank("pytest tests", memories, list(memories), [], now=NOW, half_life_days=30, limit=3)
    assert len(hits) == 3


# Decay and pruning ---------------------------------------------------------------------------


@pytest.mark.parametrize(("days", "expected"), [(0, 1.0), (30, 0.5), (60, 0.25), (-5, 1.0)])
def test_half_life(days: float, expected: float) -> None:
    assert recency(NOW - days * DAY, NOW, 30) == pytest.approx(expected)
    assert decayed(0.8, NOW - days * DAY, NOW, 30) == pytest.approx(0.8 * expected)


def test_prune_plan_age_then_value() -> None:
    rows = [
        PruneRow(1, 0.9, NOW - 100 * DAY),  # too old, whatever its importance
        PruneRow(2, 0.9, NOW - 1 * DAY),
        PruneRow(3, 0.9, NOW - 1 * DAY, superseded=True),  # superseded: least valuable
        PruneRow(4, 0.2, NOW - 1 * DAY),
        PruneRow(5, 0.9, NOW - 60 * DAY),  # decayed to 0.225
        PruneRow(6, 0.5, NOW),
    ]
    plan = prune_plan(rows, now=NOW, max_age_days=90, max_count=3, half_life_days=30)
    assert plan == [1, 3, 4]
    plan = prune_plan(rows, now=NOW, max_age_days=90, max_count=2, half_life_days=30)
    assert plan == [1, 3, 4, 5]
    assert prune_plan(rows, now=NOW, max_age_days=365, max_count=100, half_life_days=30) == []


# The Reflector -------------------------------------------------------------------------------


def test_a_run_becomes_a_skill_sentence() -> None:
    from lynkr.memory.reflect import ToolStep, reflect, same_skill

    steps = [
        ToolStep("lynkr_file_grep", True),
        ToolStep("lynkr_tests_run", False, "2 failed: test_login, test_logout\nmore"),
        ToolStep("lynkr_file_edit", True),
        ToolStep("lynkr_tests_run", True),
    ]
    found = reflect("Fix the failing login tests please", steps, finished=True)
    assert found is not None
    assert found.candidate.type == "skill" and found.candidate.source == "reflection"
    assert found.candidate.content == (
        "Skill for tasks like “fix failing login tests”: file_grep → tests_run → file_edit → "
        "tests_run worked; tests_run failed on the way (2 failed: test_login, test_logout more)."
    )
    assert found.succeeded
    assert same_skill(found, found.candidate.content)
    again = reflect("fix the login tests", steps, finished=True)
    assert again is not None and same_skill(again, found.candidate.content)
    other = reflect("fix the login tests", steps[:2], finished=True)
    assert other is not None and not same_skill(other, found.candidate.content)
    unfinished = reflect("fix the login tests", steps, finished=False)
    assert unfinished is not None and not unfinished.succeeded
    assert "did not finish the task" in unfinished.candidate.content


@pytest.mark.parametrize(("task", "count"), [("fix the login tests", 1), ("ok", 3), ("the the", 3)])
def test_short_runs_and_empty_tasks_teach_nothing(task: str, count: int) -> None:
    from lynkr.memory.reflect import ToolStep, reflect

    assert reflect(task, [ToolStep("lynkr_file_read", True)] * count, True) is None
