"""The mutation operators: each rewrites one Solidity source line, at one spot of it.

Chosen from Certora's gambit (github.com/Certora/gambit, README "Mutation Operators"), narrowed
to the defects a perpetual exchange's arithmetic and guards are prone to:

- `relational` (gambit's binary-op-mutation on a comparison): `<` <-> `<=`, `>` <-> `>=`,
  `==` <-> `!=`; an off-by-one at a boundary, or a test turned around.
- `arithmetic` (binary-op-mutation): `+` <-> `-`, `*` <-> `/`.
- `constant` (a literal moved by one: gambit's assignment-mutation, kept small): an integer
  literal plus one unit (or minus, `delta`); on a bps setting that is one basis point.
- `rounding` (binary-op / function-call mutation on a rounding helper): OpenZeppelin's
  `Math.Rounding.Ceil` <-> `Math.Rounding.Floor`, a floor `Math.mulDiv(a, b, c)` made to round
  up, `Math.ceilDiv(a, b)` made to round down, `usdToTokenUp` <-> `usdToTokenDown`, and a
  hand-written ceiling `(x + d - 1)` made a floor `(x)`.
- `check-deleted` (require-mutation / if-cond-mutation): the condition of the line's `if` or
  `require` becomes `false` / `true`, so its revert or early return never happens.
- `call-deleted` (delete-expression-mutation): the line's statement becomes `assert(true);`.
- `fee-split` (binary-op-mutation on a share): `BPS - share` -> `BPS + 1 - share`, one basis
  point of the fee moved from the pool's share to the treasury's.

Every operator acts on `target`, a piece of the line's text that must occur in it exactly once,
and raises MutationError when it cannot apply (the catalog is checked by the tests).
"""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["OPERATORS", "MutationError", "apply_operator"]


class MutationError(ValueError):
    """An operator that does not apply where the catalog says it does."""


def _one(pattern: str, text: str, what: str) -> re.Match:
    matches = list(re.finditer(pattern, text))
    if len(matches) != 1:
        raise MutationError(f"{what}: expected exactly one in {text!r}, found {len(matches)}")
    return matches[0]


def _closing_paren(text: str, open_at: int) -> int:
    """Index of the `)` matching the `(` at `open_at`."""
    depth = 0
    for i in range(open_at, len(text)):
        if text[i] == "(":
            depth += 1
        elif text[i] == ")":
            depth -= 1
            if depth == 0:
                return i
    raise MutationError(f"unbalanced parentheses in {text!r}")


def _top_level_commas(text: str) -> list[int]:
    """Positions of the commas of `text` outside any parentheses."""
    depth, commas = 0, []
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            commas.append(i)
    return commas


# a comparison operator, not part of `<<`, `>>`, `=>`, `<=`'s halves, or `=`
_RELATIONAL = r"(?<![<>=!])(<=|>=|==|!=|<|>)(?![<>=])"
_RELATIONAL_SWAP = {"<": "<=", "<=": "<", ">": ">=", ">=": ">", "==": "!=", "!=": "=="}


def relational(target: str) -> str:
    m = _one(_RELATIONAL, target, "comparison operator")
    return target[: m.start()] + _RELATIONAL_SWAP[m.group(1)] + target[m.end():]


_ARITHMETIC_SWAP = {"+": "-", "-": "+", "*": "/", "/": "*"}


def arithmetic(target: str) -> str:
    # a binary operator written with spaces around it (the project's style); `**` is not one
    m = _one(r"(?<=\s)([+\-*/])(?=\s)", target, "binary arithmetic operator")
    return target[: m.start()] + _ARITHMETIC_SWAP[m.group(1)] + target[m.end():]


def constant(target: str, delta: int = 1) -> str:
    m = _one(r"(?<![\w.])(\d[\d_]*)(?![\w.])", target, "integer literal")
    value = int(m.group(1).replace("_", "")) + delta
    if value < 0:
        raise MutationError(f"constant {m.group(1)} + {delta} is negative")
    return target[: m.start()] + str(value) + target[m.end():]


def rounding(target: str) -> str:
    swaps = {"Math.Rounding.Ceil": "Math.Rounding.Floor", "Math.Rounding.Floor": "Math.Rounding.Ceil",
             "usdToTokenUp(": "usdToTokenDown(", "usdToTokenDown(": "usdToTokenUp("}
    found = [key for key in swaps if key in target]
    if len(found) == 1 and target.count(found[0]) == 1:
        return target.replace(found[0], swaps[found[0]])
    if found:
        raise MutationError(f"rounding: more than one rounding mark in {target!r}")
    if target.count("Math.ceilDiv(") == 1:  # ceilDiv(a, b) -> mulDiv(a, 1, b): a floor
        start = target.index("Math.ceilDiv(") + len("Math.ceilDiv")
        end = _closing_paren(target, start)
        args = target[start + 1:end]
        commas = _top_level_commas(args)
        if len(commas) != 1:
            raise MutationError(f"rounding: Math.ceilDiv with {len(commas) + 1} arguments in {target!r}")
        a, b = args[: commas[0]], args[commas[0] + 1:].strip()
        return target[: start - len("Math.ceilDiv")] + f"Math.mulDiv({a}, 1, {b})" + target[end + 1:]
    if target.count("Math.mulDiv(") == 1:  # a floor mulDiv(a, b, c) rounds up
        start = target.index("Math.mulDiv(") + len("Math.mulDiv")
        end = _closing_paren(target, start)
        if len(_top_level_commas(target[start + 1:end])) != 2:
            raise MutationError(f"rounding: Math.mulDiv already has a rounding argument in {target!r}")
        return target[:end] + ", Math.Rounding.Ceil" + target[end:]
    m = _one(r"\s\+\s\w+\s-\s1\)", target, "hand-written ceiling (x + d - 1)")  # ceil -> floor
    return target[: m.start()] + ")" + target[m.end():]


def check_deleted(target: str) -> str:
    m = re.search(r"\b(if|require)\s*\(", target)
    if m is None or len(re.findall(r"\b(?:if|require)\s*\(", target)) != 1:
        raise MutationError(f"check-deleted: expected one `if (` or `require(` in {target!r}")
    open_at = m.end() - 1
    end = _closing_paren(target, open_at)
    if m.group(1) == "if":
        return target[: open_at + 1] + "false" + target[end:]
    inner = target[open_at + 1:end]
    commas = _top_level_commas(inner)
    rest = inner[commas[0]:] if commas else ""
    return target[: open_at + 1] + "true" + rest + target[end:]


def call_deleted(target: str) -> str:
    code = target.split("//", 1)[0].rstrip()
    if not code.strip().endswith(";") or code.count(";") != 1 or code.lstrip().startswith(("if", "return", "}")):
        raise MutationError(f"call-deleted: {target!r} is not one expression statement")
    indent = code[: len(code) - len(code.lstrip())]
    return indent + "assert(true);"


def fee_split(target: str) -> str:
    m = _one(r"\bBPS - ", target, "`BPS - share`")
    return target[: m.start()] + "BPS + 1 - " + target[m.end():]


OPERATORS: dict[str, Callable[[str], str]] = {
    "relational": relational,
    "arithmetic": arithmetic,
    "constant": constant,
    "rounding": rounding,
    "check-deleted": check_deleted,
    "call-deleted": call_deleted,
    "fee-split": fee_split,
}


def apply_operator(operator: str, line: str, target: str | None = None) -> str:
    """`line` with `operator` applied at `target` (a piece of the line that occurs in it
    exactly once; the whole line when None). Raises MutationError when it does not apply or
    changes nothing."""
    if operator not in OPERATORS:
        raise MutationError(f"unknown operator {operator!r} (known: {', '.join(OPERATORS)})")
    if "\n" in line:
        raise MutationError("a mutation rewrites one line")
    target = line if target is None else target
    if line.count(target) != 1:
        raise MutationError(f"target {target!r} occurs {line.count(target)} times in {line!r}, not once")
    new_piece = OPERATORS[operator](target)
    new_line = line.replace(target, new_piece, 1)
    if new_line == line:
        raise MutationError(f"{operator} changes nothing in {line!r}")
    return new_line
