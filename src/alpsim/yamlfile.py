"""YAML input files (scenarios, studies) read with the line of every value, so that a mistake is
refused as `file:line: where: reason`. Numbers stay exact (Decimal or int)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .errors import ConfigError

Lines = dict[tuple, int]
"""The 1-based line of each value, by its path of keys and indexes from the root."""


class YamlFileError(ConfigError):
    """An invalid input file: one `file:line: reason` per problem."""

    kind = "file"

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(f"invalid {self.kind}:\n" + "\n".join(problems))


def read(path: Path, error: type[YamlFileError] = YamlFileError) -> str:
    """The file's text; `error` when it cannot be read."""
    try:
        return path.read_text()
    except OSError as exc:
        raise error([f"{path}: cannot read: {exc.strerror}"]) from None


def compose(text: str, source: str, error: type[YamlFileError] = YamlFileError) -> tuple[Any, Lines]:
    """The file's data and the line of each value; raises `error` for text that is not YAML,
    is empty, or repeats a key."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        raise error([f"{source}:{line}: not valid YAML: {getattr(exc, 'problem', exc)}"]) from None
    if root is None:
        raise error([f"{source}:1: empty {error.kind} file"])
    lines: Lines = {}
    duplicates: list[str] = []
    data = _to_python(root, (), lines, duplicates, source)
    if duplicates:
        raise error(duplicates)
    return data, lines


def _to_python(node: yaml.Node, path: tuple, lines: Lines, duplicates: list[str], source: str) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out = {}
        for key_node, value_node in node.value:
            key = _to_python(key_node, path + ("<key>",), {}, duplicates, source)
            if key in out:
                duplicates.append(f"{source}:{key_node.start_mark.line + 1}: duplicate key {key!r}")
            out[key] = _to_python(value_node, path + (key,), lines, duplicates, source)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(item, path + (i,), lines, duplicates, source) for i, item in enumerate(node.value)]
    value = yaml.SafeLoader.construct_scalar(yaml.SafeLoader(""), node)  # type: ignore[arg-type]
    return resolve_scalar(node, value)


def resolve_scalar(node: yaml.ScalarNode, text: str) -> Any:
    """Numbers stay exact (Decimal), booleans and nulls as YAML means them; quoted text stays text."""
    if node.style in ("'", '"'):
        return text
    lowered = text.lower()
    if lowered in ("true", "yes", "on"):
        return True
    if lowered in ("false", "no", "off"):
        return False
    if lowered in ("null", "~", ""):
        return None
    try:
        if lowered.lstrip("+-").replace("_", "").isdigit():
            return int(text.replace("_", ""))
        number = Decimal(text.replace("_", ""))
        return number if number.is_finite() else text
    except ArithmeticError:
        return text


def line_for(loc: tuple, lines: Lines) -> int:
    """The line of `loc`, or of its nearest parent that has one."""
    path = tuple(loc)
    while path and path not in lines:
        path = path[:-1]
    return lines.get(path, 1)


def validation_problems(exc: ValidationError, source: str, lines: Lines, root: str = "file") -> list[str]:
    """pydantic's errors as `source:line: where: reason`."""
    problems = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        where = ".".join(str(p) for p in loc) or root
        reason = err["msg"]
        if err["type"] == "extra_forbidden":
            reason = f"unknown key {loc[-1]!r}"
        elif err["type"] == "missing":
            reason = f"missing field {loc[-1]!r}"
        problems.append(f"{source}:{line_for(loc, lines)}: {where}: {reason}")
    return problems
