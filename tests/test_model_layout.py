"""The reference model mirrors the contracts file for file: each module of `alpsim.model` names in
its docstring the contract file it mirrors (the first `contracts/...sol` path there) and its
docs/mechanics.md sections, is named after it, and stays small; every contract of the engine, the
pool and the oracle is named by a model module (Types.sol by `alpsim.protocol`); the modules
import one another without a cycle."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "src" / "alpsim" / "model"
CONTRACT_DIRS = ("contracts/trading", "contracts/pool", "contracts/oracle")
MAX_LINES = 350

NOT_MIRRORS = {
    "__init__.py": "the package's public names",
    "quote.py": "runs the model; no contract computes quotes",
}
NAMED_OTHERWISE = {  # model module -> the contract file it mirrors, where the names differ
    "math.py": "TradeMath.sol",
    "pool.py": "AlpPool.sol",
    "tokens.py": "MockCollateral.sol",
}
CONTRACT_PATH = re.compile(r"contracts/[\w/]+\.sol")


def _docstring(path: Path) -> str:
    return ast.get_docstring(ast.parse(path.read_text())) or ""


def _mirrors() -> list[Path]:
    return sorted(p for p in MODEL.glob("*.py") if p.name not in NOT_MIRRORS)


def _snake(stem: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", stem).lower()


@pytest.mark.parametrize("module", _mirrors(), ids=lambda p: p.name)
def test_each_model_module_names_the_contract_file_it_mirrors(module):
    doc = _docstring(module)
    named = CONTRACT_PATH.findall(doc)
    assert named, f"{module.name}: its docstring names no contracts/...sol file"
    mirrored = named[0]
    assert "docs/mechanics.md section" in doc, f"{module.name}: its docstring names no docs/mechanics.md section"
    if module.name in NAMED_OTHERWISE:
        assert Path(mirrored).name == NAMED_OTHERWISE[module.name], f"{module.name} mirrors {mirrored}"
    else:
        expected = _snake(Path(mirrored).stem) + ".py"
        assert module.name == expected, f"{module.name} mirrors {mirrored}: name it {expected}"
    assert (ROOT / mirrored).is_file(), f"{module.name} names {mirrored}, which does not exist"


def test_every_engine_pool_and_oracle_contract_has_its_model_module():
    named = set()
    for module in [*MODEL.glob("*.py"), ROOT / "src" / "alpsim" / "protocol.py"]:
        named.update(CONTRACT_PATH.findall(_docstring(module)))
    contracts = {str(p.relative_to(ROOT)) for d in CONTRACT_DIRS for p in (ROOT / d).glob("*.sol")}
    assert contracts, "no contract files found"
    assert sorted(contracts - named) == []


def test_model_modules_stay_small():
    sizes = {p.name: len(p.read_text().splitlines()) for p in MODEL.glob("*.py")}
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}


def test_model_modules_import_no_cycle():
    imports = {}
    for path in MODEL.glob("*.py"):
        tree = ast.parse(path.read_text())
        imports[path.stem] = {node.module or "__init__" for node in ast.walk(tree)
                              if isinstance(node, ast.ImportFrom) and node.level == 1}
    done: set[str] = set()

    def visit(module: str, chain: list[str]) -> None:
        assert module not in chain, f"import cycle: {' -> '.join([*chain[chain.index(module):], module])}"
        if module in done:
            return
        for imported in imports.get(module, ()):
            visit(imported, [*chain, module])
        done.add(module)

    for module in imports:
        visit(module, [])
