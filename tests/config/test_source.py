"""Reading YAML into located plain data: positions, duplicates, YAML 1.2 scalars, failures."""

from __future__ import annotations

from pathlib import Path

import pytest

from lynkr.config.source import Document, format_path, load_document, parse_yaml
from lynkr.errors import ConfigError, ConfigIssue


def parse(text: str) -> Document:
    document, issues = parse_yaml(text, "lynkr.yaml")
    assert issues == []
    return document


def unreadable(text: str) -> ConfigIssue:
    with pytest.raises(ConfigError) as caught:
        parse_yaml(text, "lynkr.yaml")
    assert caught.value.unreadable
    [issue] = caught.value.issues
    return issue


def test_positions_are_one_based_and_point_at_where_the_value_or_key_starts() -> None:
    document = parse("# comment\nserver:\n  port: 8080\nroutes:\n  - path: /v1\n    app: agent\n")
    assert document.data == {
        "server": {"port": 8080},
        "routes": [{"path": "/v1", "app": "agent"}],
    }
    assert document.locate(("server", "port")) == (3, 9)
    assert document.locate(("server", "port"), key=True) == (3, 3)
    assert document.locate(("routes", 0)) == (5, 5)
    assert document.locate(("routes", 0, "app"), key=True) == (6, 5)
    assert document.locate(("routes", 0, "app")) == (6, 10)


def test_flow_style_positions() -> None:
    document = parse("server: {host: 127.0.0.1, port: ten}\n")
    assert document.locate(("server", "port")) == (1, 33)
    assert document.locate(("server", "port"), key=True) == (1, 27)


def test_locate_falls_back_to_the_nearest_ancestor_then_to_the_start() -> None:
    document = parse("\n\nserver:\n  port: 1\n")
    assert document.locate(("server", "host")) == (4, 3)
    assert document.locate(("server", "host"), key=True) == (4, 3)
    assert document.locate(("server",), key=True) == (3, 1)
    assert document.locate(("nothing", 3)) == (3, 1)
    empty_positions = Document("f", {}, {}, {})
    assert empty_positions.locate(("a",)) == (1, 1)


def test_duplicate_keys_are_reported_at_the_second_key_and_the_first_wins() -> None:
    document, issues = parse_yaml("server:\n  host: a\n  port: 1\n  port: 2\n", "lynkr.yaml")
    assert document.data == {"server": {"host": "a", "port": 1}}
    assert [str(issue) for issue in issues] == [
        "lynkr.yaml:4:3: server: duplicate key 'port' (first defined at line 3)"
    ]


def test_duplicate_top_level_key_has_an_empty_path() -> None:
    _, issues = parse_yaml("version: 1\nversion: 2\n", "lynkr.yaml")
    assert [str(issue) for issue in issues] == [
        "lynkr.yaml:2:1: duplicate key 'version' (first defined at line 1)"
    ]


@pytest.mark.parametrize(
    ("written", "value"),
    [
        ("true", True),
        ("True", True),
        ("TRUE", True),
        ("false", False),
        ("FALSE", False),
        ("yes", "yes"),
        ("no", "no"),
        ("on", "on"),
        ("off", "off"),
        ("y", "y"),
        ("n", "n"),
        ("NO", "NO"),
        ("1:30", "1:30"),
        ("0o17", 15),
        ("0x1F", 31),
        ("017", 17),
        ("-5", -5),
        ("1.5", 1.5),
        ("1e3", 1000.0),
        ("null", None),
        ("~", None),
        ("", None),
        ("2024-01-01", "2024-01-01"),
        ('"true"', "true"),
        ("'8080'", "8080"),
        ("qwen2.5-coder:7b", "qwen2.5-coder:7b"),
    ],
)
def test_scalars_follow_the_yaml_1_2_core_schema(written: str, value: object) -> None:
    data = parse(f"key: {written}\n").data["key"]
    assert data == value
    assert type(data) is type(value)


def test_infinity_and_nan() -> None:
    data = parse("a: .inf\nb: -.Inf\nc: .NaN\n").data
    assert data["a"] == float("inf")
    assert data["b"] == float("-inf")
    assert data["c"] != data["c"]


def test_keys_are_read_as_written() -> None:
    assert parse("1: a\nyes: b\nnull: c\n").data == {"1": "a", "yes": "b", "null": "c"}


def test_anchors_and_aliases() -> None:
    document = parse("base: &b [1, 2]\ncopy: *b\n")
    assert document.data == {"base": [1, 2], "copy": [1, 2]}
    assert document.data["copy"] is not document.data["base"]
    assert document.locate(("copy", 1)) == (1, 14)  # aliases point at their anchor


def test_merge_keys_fill_what_the_mapping_does_not_set() -> None:
    text = (
        "defaults: &d {model: m, timeout: 5}\n"
        "extra: &e {timeout: 9, base_url: u}\n"
        "claude:\n"
        "  <<: [*d, *e]\n"
        "  model: own\n"
    )
    document = parse(text)
    assert document.data["claude"] == {"model": "own", "timeout": 5, "base_url": "u"}
    assert document.locate(("claude", "model")) == (5, 10)
    assert document.locate(("claude", "timeout")) == (1, 34)


def test_a_merged_key_is_not_a_duplicate_but_duplicates_in_the_anchor_are_reported_once() -> None:
    _, issues = parse_yaml("d: &d {a: 1, a: 2}\nx:\n  <<: *d\n  a: 3\n", "f.yaml")
    assert [str(issue) for issue in issues] == [
        "f.yaml:1:14: d: duplicate key 'a' (first defined at line 1)"
    ]


def test_merging_a_scalar_is_an_issue() -> None:
    _, issues = parse_yaml("s: &s 1\nx:\n  <<: *s\n", "f.yaml")
    assert [issue.message for issue in issues] == ["'<<' merges only mappings (write <<: *name)"]


def test_recursive_alias_is_an_issue_not_a_hang() -> None:
    document, issues = parse_yaml("a: &a [1, *a]\n", "f.yaml")
    assert document.data == {"a": [1, None]}
    assert [str(issue) for issue in issues] == [
        "f.yaml:1:4: a[1]: an alias refers to the value that contains it"
    ]


def test_alias_bombs_are_unreadable() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 7)]
    issue = unreadable("\n".join(lines) + "\n")
    assert issue.message.startswith("too many values")


def test_non_scalar_key_and_unknown_tags_are_issues() -> None:
    _, issues = parse_yaml("? [a]\n: 1\nb: !custom x\nc: !!int nope\n", "f.yaml")
    assert [str(issue) for issue in issues] == [
        "f.yaml:1:3: a key must be a plain string, not a list or mapping",
        "f.yaml:3:4: b: unsupported tag '!custom'; lynkr reads plain YAML values",
        "f.yaml:4:4: c: cannot read 'nope' as int",
    ]


def test_explicit_str_tag_keeps_a_string() -> None:
    assert parse("a: !!str 123\n").data == {"a": "123"}


def test_syntax_error_uses_the_problem_mark() -> None:
    issue = unreadable("server:\n  host: a\n port: 1\n")
    assert str(issue) == (
        "lynkr.yaml:3:2: invalid YAML: expected <block end>, but found '<block mapping start>'"
        " (while parsing a block mapping that starts at line 1; check the indentation)"
    )


def test_syntax_error_without_context() -> None:
    issue = unreadable("a: b: c\n")
    assert str(issue) == "lynkr.yaml:1:5: invalid YAML: mapping values are not allowed here"


def test_several_documents_are_unreadable() -> None:
    issue = unreadable("a: 1\n---\nb: 2\n")
    assert str(issue) == (
        "lynkr.yaml:2:1: invalid YAML: expected a single document in the stream,"
        " but found another document"
    )


def test_undefined_alias() -> None:
    assert (
        str(unreadable("a: *nope\n"))
        == "lynkr.yaml:1:4: invalid YAML: found undefined alias 'nope'"
    )


def test_control_characters_are_located() -> None:
    assert str(unreadable("a: 1\nb: x\x01\n")) == (
        "lynkr.yaml:2:5: invalid YAML: control character U+0001 is not allowed"
    )


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_empty_file_is_unreadable(text: str) -> None:
    assert (
        str(unreadable(text)) == "lynkr.yaml:1:1: file is empty; see lynkr.example.yaml for a start"
    )


@pytest.mark.parametrize(
    ("text", "got"), [("- a\n", "a list"), ("just text\n", "'just text'"), ("3\n", "'3'")]
)
def test_top_level_must_be_a_mapping(text: str, got: str) -> None:
    assert unreadable(text).message == (
        f"the top level must be a mapping of settings (key: value), got {got}"
    )


def test_load_document_names_the_file_as_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("lynkr.yaml").write_text("\ufeffversion: 1\n", encoding="utf-8")
    document, issues = load_document("lynkr.yaml")
    assert (document.file, document.data, issues) == ("lynkr.yaml", {"version": 1}, [])
    assert document.locate(("version",)) == (1, 10)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda path: None, "file not found"),
        (lambda path: path.mkdir(), "is a directory, not a file"),
    ],
)
def test_load_document_unreadable_files(tmp_path: Path, make: object, message: str) -> None:
    path = tmp_path / "lynkr.yaml"
    make(path)  # type: ignore[operator]
    with pytest.raises(ConfigError) as caught:
        load_document(path)
    assert caught.value.unreadable
    assert [str(issue) for issue in caught.value.issues] == [f"{path}:1:1: {message}"]


def test_load_document_not_utf8_is_located(tmp_path: Path) -> None:
    path = tmp_path / "lynkr.yaml"
    path.write_bytes("a: 1\nname: caf\u00e9 \xff\n".encode("utf-8").replace(b"\xc3\xbf", b"\xff"))
    with pytest.raises(ConfigError) as caught:
        load_document(path)
    assert caught.value.unreadable
    assert [issue.message for issue in caught.value.issues] == [
        "not UTF-8 text (byte 0xff); save the file as UTF-8"
    ]
    assert (caught.value.issues[0].line, caught.value.issues[0].column) == (2, 12)


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ((), ""),
        (("server",), "server"),
        (("routes", 0, "middleware", 2, "ttl_seconds"), "routes[0].middleware[2].ttl_seconds"),
        (("providers", "claude-2", "headers", "x-foo"), 'providers["claude-2"].headers["x-foo"]'),
        (("x-y", 0), '["x-y"][0]'),
        (("a", 'say "hi"'), 'a["say \\"hi\\""]'),
        ((0,), "[0]"),
    ],
)
def test_format_path(path: tuple[str | int, ...], text: str) -> None:
    assert format_path(path) == text
