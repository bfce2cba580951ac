"""What the alpsim client needs of the contracts, checked on a user's modified copy before any
test runs: every constructor, function and event of the deployed contracts that the client's
code names (as a string literal, the way it calls them) must still be there with the same
inputs (and outputs, and indexed arguments)."""

from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

from ..compiler import Artifact
from ..deployment import contract_abi
from ..errors import _abi_type

DEPLOYED_CONTRACTS = ("MockCollateral", "AlpToken", "AlpPool", "PairRegistry", "PriceOracle", "MockAggregator",
                      "Market", "ReferralRegistry", "PlatformToken", "TradingEngine")
"""The contracts `alpsim.deployment.deploy_system` deploys (TradingEngine with the libraries it links)."""


@lru_cache(maxsize=1)
def client_names() -> frozenset[str]:
    """Every string literal in the alpsim package's modules (outside this testing package):
    the function and event names the client calls and decodes are among them."""
    package = Path(__file__).resolve().parents[1]
    names: set[str] = set()
    for module in package.rglob("*.py"):
        if "testing" in module.relative_to(package).parts:
            continue
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                names.add(node.value)
    return frozenset(names)


def signature(entry: dict) -> str:
    """A readable, comparable signature: `f(uint256,address)->(bool)`, `E(uint256 indexed,...)`."""
    if entry["type"] == "event":
        return f"{entry['name']}({','.join(_abi_type(p) + (' indexed' if p.get('indexed') else '') for p in entry['inputs'])})"
    inputs = ",".join(_abi_type(p) for p in entry.get("inputs", []))
    name = entry.get("name", entry["type"])
    outputs = ",".join(_abi_type(p) for p in entry.get("outputs", []))
    return f"{name}({inputs})" + (f"->({outputs})" if entry["type"] == "function" else "")


def interface_problems(shipped: dict[str, Artifact], user: dict[str, Artifact]) -> list[str]:
    """One line per entry point or event the client needs that `user` lacks or changed."""
    needed_names = client_names()
    problems = []
    for contract in DEPLOYED_CONTRACTS:
        if contract not in user:
            problems.append(f"{contract}: contract missing (the client deploys it)")
            continue
        mine = contract_abi(user, contract)
        for entry in contract_abi(shipped, contract):
            kind = entry["type"]
            if kind not in ("function", "event", "constructor"):
                continue
            if kind != "constructor" and entry["name"] not in needed_names:
                continue
            same_kind = [e for e in mine if e["type"] == kind and e.get("name") == entry.get("name")]
            label = f"{contract}.{entry.get('name', 'constructor')}"
            what = "event" if kind == "event" else "constructor" if kind == "constructor" else "function"
            if not same_kind:
                problems.append(f"{label}: {what} missing (the client needs {signature(entry)})")
            elif signature(entry) not in {signature(e) for e in same_kind}:
                problems.append(f"{label}: {what} changed: the client needs {signature(entry)}, "
                                f"the contracts have {', '.join(signature(e) for e in same_kind)}")
    return problems
