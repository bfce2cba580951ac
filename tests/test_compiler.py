"""The compiler: cache hit and miss, Hardhat build-info, errors as file:line:column."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

import alpsim.compiler as compiler
from alpsim.errors import CompileError, ConfigError
from alpsim.paths import ProjectPaths, find_project

ROOT = find_project().root

GOOD = """// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

contract Token is ERC20 {
    constructor() ERC20("T", "T") {}
}
"""

BROKEN = """// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

contract Broken {
    function f() external pure returns (uint256) {
        return undefinedThing;
    }
}
"""


@pytest.fixture
def project(tmp_path) -> ProjectPaths:
    """A scratch project sharing the checkout's node_modules and solc driver."""
    (tmp_path / "contracts").mkdir()
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "solc-compile.cjs", tmp_path / "scripts")
    shutil.copy(ROOT / "package.json", tmp_path)
    shutil.copy(ROOT / "package-lock.json", tmp_path)
    os.symlink(ROOT / "node_modules", tmp_path / "node_modules")
    (tmp_path / "contracts" / "Token.sol").write_text(GOOD)
    return ProjectPaths(tmp_path)


def test_miss_then_hit_without_starting_node(project, monkeypatch):
    first = compiler.compile_contracts(project)
    assert not first.cached and "Token" in first.artifacts
    assert first.artifacts["Token"].bytecode.startswith("0x6080")

    def no_node(*args, **kwargs):
        raise AssertionError("node started on a cache hit")

    monkeypatch.setattr(compiler.subprocess, "run", no_node)
    second = compiler.compile_contracts(project)
    assert second.cached and second.key == first.key
    assert second.artifacts["Token"].abi == first.artifacts["Token"].abi


def test_changed_source_misses(project):
    first = compiler.compile_contracts(project)
    (project.contracts / "Token.sol").write_text(GOOD.replace('"T", "T"', '"T2", "T2"'))
    second = compiler.compile_contracts(project)
    assert not second.cached and second.key != first.key


def test_build_info_is_hardhat_layout_with_ast_and_imports(project):
    result = compiler.compile_contracts(project)
    info = json.loads(result.build_info.read_text())
    assert result.build_info.parent == project.build / "build-info"
    assert result.build_info.name == f"{info['id']}.json"
    assert info["_format"] == "hh-sol-build-info-1"
    assert info["solcVersion"] == "0.8.28" and info["solcLongVersion"].startswith("0.8.28+commit.")
    assert info["input"]["settings"]["evmVersion"] == "cancun"
    assert info["input"]["settings"]["optimizer"]["enabled"] is True
    # imports resolved from node_modules are part of the input, with their content
    oz = "@openzeppelin/contracts/token/ERC20/ERC20.sol"
    assert oz in info["input"]["sources"] and "contract ERC20" in info["input"]["sources"][oz]["content"]
    assert info["output"]["sources"]["contracts/Token.sol"]["ast"]["nodeType"] == "SourceUnit"


def test_broken_source_reports_file_line_column_and_caches_nothing(project):
    good = compiler.compile_contracts(project)
    cache_before = (project.build / "cache.json").read_text()
    (project.contracts / "Broken.sol").write_text(BROKEN)
    with pytest.raises(CompileError) as info:
        compiler.compile_contracts(project)
    assert info.value.messages == [
        "contracts/Broken.sol:6:16: DeclarationError: Undeclared identifier."
    ]
    assert (project.build / "cache.json").read_text() == cache_before
    assert not (project.build / "contracts" / "Broken.json").exists()
    assert good.build_info.is_file()


def test_cli_compile_exits_nonzero_with_located_errors(project):
    (project.contracts / "Broken.sol").write_text(BROKEN)
    proc = subprocess.run([sys.executable, "-m", "alpsim.cli", "compile"], capture_output=True, text=True,
                          env={**os.environ, "ALPSIM_ROOT": str(project.root)})
    assert proc.returncode == 1
    assert "contracts/Broken.sol:6:16: DeclarationError: Undeclared identifier." in proc.stderr
    assert not (project.build / "cache.json").exists()


def test_project_contracts_compile_with_pinned_settings(build):
    assert build.solc_version == "0.8.28"
    assert {"AlpPool", "AlpToken", "MockCollateral", "ChainIdProbe"} <= set(build.artifacts)
    assert build.settings == {"optimizer": {"enabled": True, "runs": 200}, "evmVersion": "cancun"}


LINKED = """// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

library Doubler {
    function twice(uint256 x) external pure returns (uint256) {
        return 2 * x;
    }
}

contract UsesDoubler {
    function f(uint256 x) external pure returns (uint256) {
        return Doubler.twice(x) + Doubler.twice(1);
    }
}
"""


def test_link_references_survive_the_cache_and_linking_fills_every_placeholder(project, monkeypatch):
    (project.contracts / "Linked.sol").write_text(LINKED)
    first = compiler.compile_contracts(project)
    user = first.artifacts["UsesDoubler"]
    assert user.libraries == ["Doubler"] and first.artifacts["Doubler"].libraries == []
    spots = user.link_references["contracts/Linked.sol"]["Doubler"]
    assert len(spots) == 2 and all(s["length"] == 20 for s in spots)
    assert user.bytecode.count("__$") == 2  # the placeholders solc left

    monkeypatch.setattr(compiler.subprocess, "run", lambda *a, **k: pytest.fail("node started on a cache hit"))
    cached = compiler.compile_contracts(project).artifacts["UsesDoubler"]
    assert cached.link_references == user.link_references

    address = "0x" + "ab" * 20
    done = compiler.linked(user, {"Doubler": address})
    assert "__$" not in done.bytecode and done.libraries == []
    assert len(done.bytecode) == len(user.bytecode)
    for spot in spots:
        assert done.bytecode[2 + 2 * spot["start"]:2 + 2 * (spot["start"] + 20)] == "ab" * 20
    with pytest.raises(ConfigError, match="links library Doubler"):
        compiler.linked(user, {})
