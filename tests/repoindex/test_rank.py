"""The repo map's ranking and fitting, on plain data: golden order, focus, determinism, budget."""

from __future__ import annotations

from lynkr.repoindex.rank import (
    Definition,
    estimate_tokens,
    fit,
    identifier_weight,
    is_test,
    pagerank,
    ranked_definitions,
    render,
)

DEFS = [
    Definition("core/db.py", 3, "open_database", "function", "def open_database(path):"),
    Definition("core/db.py", 9, "Database", "class", "class Database:"),
    Definition("web/views.py", 4, "checkout_view", "function", "def checkout_view(request):"),
    Definition("web/urls.py", 1, "routes", "constant", "routes = [...]"),
    Definition("tests/test_db.py", 2, "test_open", "function", "def test_open():"),
    Definition("billing/tax.py", 5, "vat_for", "function", "def vat_for(country):"),
]
REFS = [
    ("web/views.py", "open_database", 3),
    ("web/views.py", "Database", 1),
    ("web/urls.py", "checkout_view", 1),
    ("tests/test_db.py", "open_database", 2),
    ("billing/tax.py", "Database", 1),
    ("web/views.py", "vat_for", 1),
]


def test_weights_follow_the_rules() -> None:
    assert identifier_weight("open_database", set(), 1) == 10  # long snake_case
    assert identifier_weight("get", set(), 1) == 1
    assert identifier_weight("get", {"get"}, 1) == 10
    assert identifier_weight("_private", set(), 1) == 0.1
    assert identifier_weight("run", set(), 6) == 0.1  # defined in more than five files
    assert is_test("tests/test_db.py") and is_test("web/cart.test.ts") and is_test("x_test.go")
    assert not is_test("core/testing_tools.py")


def test_the_most_used_definitions_come_first_and_focus_moves_them() -> None:
    order = [d.name for d in ranked_definitions(DEFS, REFS)]
    assert order[:2] == ["open_database", "Database"]
    focused = [d.name for d in ranked_definitions(DEFS, REFS, mentioned_names=["vat_for"])]
    assert focused[0] == "vat_for"
    by_file = ranked_definitions(DEFS, REFS, mentioned_files=["web/urls.py"])
    assert by_file[0].name == "checkout_view"  # what the mentioned file uses


def test_pagerank_sums_to_one_and_follows_personalisation() -> None:
    nodes = ["a", "b", "c"]
    rank = pagerank(nodes, {("a", "b"): 1.0, ("b", "c"): 1.0}, {})
    assert abs(sum(rank.values()) - 1) < 1e-9 and rank["c"] > rank["a"]
    personal = pagerank(nodes, {("a", "b"): 1.0, ("b", "c"): 1.0}, {"a": 1.0})
    assert personal["a"] > rank["a"]


def test_the_map_is_deterministic_and_fits_its_budget() -> None:
    ranked = ranked_definitions(DEFS, REFS)
    assert fit(ranked, 4096) == render(ranked) == fit(ranked_definitions(DEFS[::-1], REFS), 4096)
    assert render(ranked).startswith("billing/tax.py:\n      5│ def vat_for(country):\n")
    for budget in (10, 30, 60):
        text = fit(ranked, budget)
        assert estimate_tokens(text) <= budget
    assert fit(ranked, 0) == ""
    assert fit(ranked, 30).count("│") < fit(ranked, 60).count("│")
