"""Recorded steps as scenario text: a checked scenario file (header, funds, checks, the steps in
YAML flow style, the closing `expect: {checks: held}`)."""

from __future__ import annotations

import hashlib
import json
import re
from decimal import Decimal
from typing import Any

_BARE = re.compile(r"^[A-Za-z][A-Za-z0-9_/.-]*$")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n"}


def scalar(value: Any) -> str:
    """A YAML scalar that reads back exactly (numbers as written, strings bare where safe)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, int):
        return str(value)
    text = str(value)
    if _BARE.match(text) and text.lower() not in _YAML_WORDS:
        return text
    return json.dumps(text)


def flow(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{scalar(k)}: {flow(v)}" for k, v in value.items() if v is not None) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(flow(v) for v in value) + "]"
    return scalar(value)


def step_line(step: dict[str, Any]) -> str:
    """`- kind: {field: value, ...}`."""
    ((kind, body),) = step.items()
    return f"- {kind}: {flow(body or {})}"


def failure_id(kind: str, steps: list[dict[str, Any]]) -> str:
    """A short hash of the failure's kind and its steps: the same failure, the same id."""
    text = kind + "\n" + "\n".join(step_line(s) for s in steps)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def scenario_text(name: str, chain: str, seed: int, funds: dict[str, Any], checks: tuple[str, ...],
                  steps: list[dict[str, Any]], comment: str = "") -> str:
    """A checked scenario: the steps then `expect: {checks: held}` (fails while a check fails)."""
    lines = [f"# {line}" for line in comment.splitlines()] if comment else []
    lines += [f"name: {json.dumps(name)}", f"chain: {chain}", f"seed: {seed}", f"funds: {flow(funds)}",
              f"checks: {flow(list(checks))}", "steps:"]
    lines += ["  " + step_line(s) for s in steps]
    lines.append("  - expect: {checks: held}")
    return "\n".join(lines) + "\n"
