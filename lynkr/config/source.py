"""Read a config file into plain data, remembering where every key and value was written.

JSON Schema only sees plain data, but a user needs `lynkr.yaml:14:18`, so the
parser keeps a side table from each path (`("routes", 2, "policy")`) to the
1-based line and column of its value and of its key. PyYAML composes the node
graph; we build the data ourselves from it, which also lets us:

- reject duplicate keys (PyYAML silently keeps the last one);
- read scalars with YAML 1.2 core-schema rules, so `yes`, `no`, `on`, `off`
  stay strings, `NO` (Norway) stays a string and `1:30` is not 5400.

A file that cannot be turned into a mapping at all (missing, not UTF-8, not
YAML, empty) raises `ConfigError(unreadable=True)`; everything else found
while reading (duplicate keys, unsupported tags) is returned as issues so that
`lynkr validate` can report it together with the schema errors.
"""

from __future__ import annotations

import os
import pathlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from lynkr.errors import ConfigError, ConfigIssue

__all__ = ["Document", "Path", "format_path", "load_document", "parse_yaml"]

Path = tuple[str | int, ...]
Position = tuple[int, int]
_Pair = tuple[yaml.Node, yaml.Node]

# Aliases can make a small file expand into a huge tree ("billion laughs");
# no sane lynkr.yaml comes near this many nodes.
_MAX_NODES = 100_000

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

_NULL = "tag:yaml.org,2002:null"
_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_STR = "tag:yaml.org,2002:str"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"
_MERGE = "tag:yaml.org,2002:merge"


@dataclass(frozen=True)
class Document:
    """Parsed config data plus where each value (and each mapping key) starts in `file`."""

    file: str
    data: Any
    value_pos: Mapping[Path, Position]
    key_pos: Mapping[Path, Position]

    def locate(self, path: Path, *, key: bool = False) -> Position:
        """The (line, column) of the value at `path`, or of its key with `key=True`.

        Paths that do not exist (a missing required key, a value built by a
        default) fall back to their nearest existing ancestor, then to 1:1.
        """
        if key and path in self.key_pos:
            return self.key_pos[path]
        for end in range(len(path), -1, -1):
            position = self.value_pos.get(path[:end])
            if position is not None:
                return position
        return (1, 1)

    def issue(self, path: Path, message: str, *, key: bool = False) -> ConfigIssue:
        """A `ConfigIssue` located at `path` (its key with `key=True`) in this document."""
        line, column = self.locate(path, key=key)
        return ConfigIssue(self.file, line, column, format_path(path), message)


def format_path(path: Path) -> str:
    """`routes[0].middleware[2].ttl_seconds`; keys that are not identifiers as `["x-foo"]`."""
    parts: list[str] = []
    for step in path:
        if isinstance(step, int):
            parts.append(f"[{step}]")
        elif _IDENTIFIER.match(step):
            parts.append(f".{step}" if parts else step)
        else:
            parts.append('["' + step.replace("\\", "\\\\").replace('"', '\\"') + '"]')
    return "".join(parts)


class _Yaml12Loader(yaml.SafeLoader):
    """SafeLoader resolving plain scalars by the YAML 1.2 core schema instead of YAML 1.1."""

    # PyYAML's own per-class table, emptied here and refilled below.
    yaml_implicit_resolvers: dict[Any, Any] = {}  # noqa: RUF012


for _tag, _regexp, _first in [
    (_NULL, r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    (_BOOL, r"^(?:true|True|TRUE|false|False|FALSE)$", list("tTfF")),
    (_INT, r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", list("-+0123456789")),
    (
        _FLOAT,
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        list("-+.0123456789"),
    ),
    (_MERGE, r"^<<$", ["<"]),
]:
    _Yaml12Loader.add_implicit_resolver(_tag, re.compile(_regexp), _first)


def load_document(path: str | os.PathLike[str]) -> tuple[Document, list[ConfigIssue]]:
    """Read and parse the config file at `path`; issues name the file as it was given."""
    file = os.fspath(path)
    try:
        raw = pathlib.Path(file).read_bytes()
    except FileNotFoundError as exc:
        raise _unreadable(file, (1, 1), "file not found") from exc
    except IsADirectoryError as exc:
        raise _unreadable(file, (1, 1), "is a directory, not a file") from exc
    except OSError as exc:
        raise _unreadable(file, (1, 1), f"cannot read file: {exc.strerror}") from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        where = _position_after(raw[: exc.start].decode("utf-8-sig"))
        message = f"not UTF-8 text (byte 0x{raw[exc.start]:02x}); save the file as UTF-8"
        raise _unreadable(file, where, message) from exc
    return parse_yaml(text, file)


def parse_yaml(text: str, file: str) -> tuple[Document, list[ConfigIssue]]:
    """Parse YAML `text` (named `file` in issues) into a `Document` and reading issues."""
    try:
        root = yaml.compose(text, Loader=_Yaml12Loader)
    except yaml.MarkedYAMLError as exc:
        raise _unreadable(file, _mark_position(exc), _syntax_message(exc)) from exc
    except yaml.reader.ReaderError as exc:
        message = f"invalid YAML: control character U+{exc.character:04X} is not allowed"
        raise _unreadable(file, _position_after(text[: exc.position]), message) from exc
    if root is None:
        raise _unreadable(file, (1, 1), "file is empty; see lynkr.example.yaml for a start")
    if not isinstance(root, yaml.MappingNode):
        kind = "a list" if isinstance(root, yaml.SequenceNode) else f"{root.value!r}"
        message = f"the top level must be a mapping of settings (key: value), got {kind}"
        raise _unreadable(file, _start(root), message)
    builder = _Builder(file)
    data = builder.build(root, ())
    document = Document(file, data, builder.value_pos, builder.key_pos)
    return document, builder.issues


def _unreadable(file: str, where: Position, message: str) -> ConfigError:
    return ConfigError([ConfigIssue(file, where[0], where[1], "", message)], unreadable=True)


def _start(node: yaml.Node) -> Position:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


def _position_after(before: str) -> Position:
    """The position just after the text `before`."""
    return (before.count("\n") + 1, len(before) - before.rfind("\n"))


def _mark_position(exc: yaml.MarkedYAMLError) -> Position:
    mark = exc.problem_mark or exc.context_mark
    return (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)


def _syntax_message(exc: yaml.MarkedYAMLError) -> str:
    """PyYAML's problem text, with its context ("while parsing a block mapping") as a hint."""
    problem, context = exc.problem or "", exc.context or ""
    if not (problem and context):
        return f"invalid YAML: {problem or context}"
    if problem.startswith("but "):  # "expected a single document …, but found another"
        return f"invalid YAML: {context}, {problem}"
    if exc.context_mark is not None:
        context += f" that starts at line {exc.context_mark.line + 1}"
    if "<block end>" in problem:  # PyYAML's way of saying a line is indented wrong
        context += "; check the indentation"
    return f"invalid YAML: {problem} ({context})"


class _Builder:
    """Turns a composed node graph into plain data, recording positions and issues."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.value_pos: dict[Path, Position] = {}
        self.key_pos: dict[Path, Position] = {}
        self.issues: list[ConfigIssue] = []
        self._open: set[int] = set()  # ids of the nodes being built, to catch `&a [*a]`
        self._count = 0

    def build(self, node: yaml.Node, path: Path) -> Any:
        self._count += 1
        if self._count > _MAX_NODES:
            message = f"too many values (over {_MAX_NODES}); is an alias expanding recursively?"
            raise _unreadable(self.file, _start(node), message)
        if id(node) in self._open:
            self._add(node, path, "an alias refers to the value that contains it")
            return None
        self.value_pos[path] = _start(node)
        self._open.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path)
            if isinstance(node, yaml.SequenceNode):
                return [self.build(item, (*path, index)) for index, item in enumerate(node.value)]
            return self._scalar(node, path)
        finally:
            self._open.discard(id(node))

    def _mapping(self, node: yaml.MappingNode, path: Path) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, (key_node, value_node) in self._entries(node, path, report=True).items():
            self.key_pos[(*path, key)] = _start(key_node)
            result[key] = self.build(value_node, (*path, key))
        return result

    def _entries(self, node: yaml.MappingNode, path: Path, *, report: bool) -> dict[str, _Pair]:
        """Own keys, first-defined-wins (duplicates reported once, where they are written),
        then keys from `<<: *base` or `<<: [*a, *b]` merges that the mapping does not set."""
        entries: dict[str, _Pair] = {}
        merges: list[yaml.Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                merges.append(value_node)
                continue
            key = self._key(key_node, path, report=report)
            if key is not None and key in entries and report:
                line = entries[key][0].start_mark.line + 1
                self._add(key_node, path, f"duplicate key {key!r} (first defined at line {line})")
            elif key is not None and key not in entries:
                entries[key] = (key_node, value_node)
        for source in merges:
            for key, pair in self._merged(source, path).items():
                entries.setdefault(key, pair)
        return entries

    def _merged(self, source: yaml.Node, path: Path) -> dict[str, _Pair]:
        """The entries a `<<` value contributes; earlier mappings in a list win."""
        entries: dict[str, _Pair] = {}
        for item in source.value if isinstance(source, yaml.SequenceNode) else [source]:
            if not isinstance(item, yaml.MappingNode):
                self._add(item, path, "'<<' merges only mappings (write <<: *name)")
            elif id(item) in self._open:
                self._add(item, path, "an alias refers to the value that contains it")
            else:
                self._open.add(id(item))
                try:
                    for key, pair in self._entries(item, path, report=False).items():
                        entries.setdefault(key, pair)
                finally:
                    self._open.discard(id(item))
        return entries

    def _key(self, node: yaml.Node, path: Path, *, report: bool) -> str | None:
        """Keys are read as written: `1:` and `yes:` are the keys '1' and 'yes'."""
        if isinstance(node, yaml.ScalarNode):
            return str(node.value)
        if report:
            self._add(node, path, "a key must be a plain string, not a list or mapping")
        return None

    def _scalar(self, node: yaml.Node, path: Path) -> Any:
        value: str = node.value
        try:
            return _SCALARS[node.tag](value) if node.tag in _SCALARS else self._unknown(node, path)
        except ValueError:
            self._add(node, path, f"cannot read {value!r} as {node.tag.rsplit(':', 1)[-1]}")
            return value

    def _unknown(self, node: yaml.Node, path: Path) -> str:
        self._add(node, path, f"unsupported tag {node.tag!r}; lynkr reads plain YAML values")
        return str(node.value)

    def _add(self, node: yaml.Node, path: Path, message: str) -> None:
        line, column = _start(node)
        self.issues.append(ConfigIssue(self.file, line, column, format_path(path), message))


def _null(value: str) -> None:
    if value not in ("", "~", "null", "Null", "NULL"):
        raise ValueError(value)


def _bool(value: str) -> bool:
    if value.lower() not in ("true", "false"):
        raise ValueError(value)
    return value.lower() == "true"


def _int(value: str) -> int:
    if value.startswith(("0o", "0x")):
        return int(value[2:], 8 if value[1] == "o" else 16)
    return int(value, 10)


def _float(value: str) -> float:
    special = {".inf": "inf", "+.inf": "inf", "-.inf": "-inf", ".nan": "nan"}
    return float(special.get(value.lower(), value))


_SCALARS: dict[str, Any] = {
    _NULL: _null,
    _BOOL: _bool,
    _INT: _int,
    _FLOAT: _float,
    _STR: str,
}
