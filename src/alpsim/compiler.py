"""Compiles `contracts/` with solc-js (npm `solc`) and caches the result under `build/`.

- Artifacts: `build/contracts/<Name>.json` (abi, bytecode, deployed bytecode, source, and the
  external libraries the bytecode links: `linked` fills in their addresses).
- Build-info: `build/build-info/<id>.json`, the complete standard-JSON input (imports included)
  and output (AST included) in Hardhat's layout, for analyzers such as Slither.
- Cache key: hash of every source under `contracts/`, the compiler version (read from
  `node_modules/solc/package.json`), `package-lock.json` (the OpenZeppelin version) and the
  settings. A hit does not start node.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import CompileError, ConfigError, add_abi_source
from .paths import ProjectPaths, find_project

EVM_VERSION = "cancun"

SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": 200},
    "evmVersion": EVM_VERSION,
    "outputSelection": {
        "*": {
            "*": [
                "abi",
                "evm.bytecode.object",
                "evm.bytecode.sourceMap",
                "evm.bytecode.linkReferences",
                "evm.deployedBytecode.object",
                "evm.deployedBytecode.sourceMap",
                "evm.methodIdentifiers",
                "userdoc",
                "devdoc",
            ],
            "": ["ast"],
        }
    },
}

BUILD_INFO_FORMAT = "hh-sol-build-info-1"
ARTIFACT_FORMAT = 2
"""Bumped when `Artifact` keeps more of solc's output: a build cached before is compiled again."""


@dataclass(frozen=True)
class Artifact:
    name: str
    source: str
    abi: list[dict]
    bytecode: str
    deployed_bytecode: str
    link_references: dict[str, dict[str, list[dict]]] = field(default_factory=dict)
    """solc's `evm.bytecode.linkReferences`: {source: {library: [{start, length}]}}, byte offsets
    in `bytecode` of the placeholders (`__$<34 hex>$__`) an external library's address fills."""
    method_identifiers: dict[str, str] = field(default_factory=dict)
    """solc's `evm.methodIdentifiers`: signature -> selector (hex). Unlike the ABI it names an
    external library's functions that take storage parameters, which call traces need."""

    @property
    def libraries(self) -> list[str]:
        """The external libraries this contract's bytecode links, by name."""
        return sorted({name for names in self.link_references.values() for name in names})

    @classmethod
    def from_json(cls, data: dict) -> "Artifact":
        return cls(data["contractName"], data["sourceName"], data["abi"], data["bytecode"], data["deployedBytecode"],
                   data.get("linkReferences", {}), data.get("methodIdentifiers", {}))

    def to_json(self) -> dict:
        return {"contractName": self.name, "sourceName": self.source, "abi": self.abi,
                "bytecode": self.bytecode, "deployedBytecode": self.deployed_bytecode,
                "linkReferences": self.link_references, "methodIdentifiers": self.method_identifiers}


def linked(artifact: Artifact, addresses: dict[str, str]) -> Artifact:
    """`artifact` with its libraries' addresses (by library name) written over their
    placeholders in `bytecode`, ready to deploy. Raises ConfigError for a library missing
    from `addresses`."""
    code = artifact.bytecode[2:]  # hex: byte i is characters 2i and 2i + 1
    for names in artifact.link_references.values():
        for name, spots in names.items():
            if name not in addresses:
                raise ConfigError(f"{artifact.name} links library {name}: no address given for it")
            address = addresses[name][2:].lower()
            for spot in spots:
                start, end = 2 * spot["start"], 2 * (spot["start"] + spot["length"])
                code = code[:start] + address + code[end:]
    return replace(artifact, bytecode="0x" + code, link_references={})


@dataclass(frozen=True)
class BuildResult:
    key: str
    solc_version: str
    cached: bool
    artifacts: dict[str, Artifact]
    build_info: Path

    @property
    def settings(self) -> dict:
        return {k: v for k, v in SETTINGS.items() if k != "outputSelection"}


def solc_version(paths: ProjectPaths) -> str:
    """The pinned solc-js version, read without starting node."""
    manifest = paths.node_modules / "solc" / "package.json"
    if not manifest.is_file():
        raise ConfigError("node_modules/solc is missing: run `npm ci` (make does it for you)")
    return json.loads(manifest.read_text())["version"]


def source_files(paths: ProjectPaths) -> dict[str, str]:
    """Every `.sol` under the contracts folder, keyed `contracts/<path in it>` (the project
    root's layout, whichever folder `paths.contracts` is)."""
    files = sorted(paths.contracts.rglob("*.sol"))
    if not files:
        raise ConfigError(f"no .sol files under {paths.contracts}")
    return {"contracts/" + f.relative_to(paths.contracts).as_posix(): f.read_text() for f in files}


def source_hash(sources: dict[str, str]) -> str:
    digest = hashlib.sha256()
    for name, text in sorted(sources.items()):
        digest.update(name.encode() + b"\0" + text.encode() + b"\0")
    return digest.hexdigest()


def cache_key(paths: ProjectPaths, sources: dict[str, str]) -> str:
    lock = paths.root / "package-lock.json"
    digest = hashlib.sha256()
    digest.update(source_hash(sources).encode())
    digest.update(solc_version(paths).encode())
    digest.update(lock.read_bytes() if lock.is_file() else b"")
    digest.update(json.dumps(SETTINGS, sort_keys=True).encode())
    digest.update(f"artifact-format-{ARTIFACT_FORMAT}".encode())
    return digest.hexdigest()[:32]


def compile_contracts(paths: ProjectPaths | None = None, *, force: bool = False) -> BuildResult:
    """Compiles the project (or returns the cached build). Raises CompileError on errors,
    leaving the cache as it was. Concurrent compiles of one project wait for each other."""
    import fcntl

    paths = paths or find_project()
    paths.build.mkdir(parents=True, exist_ok=True)
    with open(paths.build / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _compile_locked(paths, force)


def _compile_locked(paths: ProjectPaths, force: bool) -> BuildResult:
    sources = source_files(paths)
    key = cache_key(paths, sources)
    cache_file = paths.build / "cache.json"
    if not force and cache_file.is_file():
        cache = json.loads(cache_file.read_text())
        if cache.get("key") == key and (paths.build / cache["build_info"]).is_file():
            return BuildResult(key, cache["solc_version"], True, load_artifacts(paths), paths.build / cache["build_info"])

    build = _run_solc(paths, sources)
    errors = [m for m in build["output"].get("errors", []) if m.get("severity") == "error"]
    if errors:
        raise CompileError([_format_message(m, build["input"]["sources"]) for m in errors])

    artifacts = _artifacts_from_output(build["output"])
    _write_build(paths, key, build, artifacts)
    return BuildResult(key, build["solcVersion"], False, artifacts, paths.build / "build-info" / f"{key}.json")


def load_artifacts(paths: ProjectPaths | None = None) -> dict[str, Artifact]:
    paths = paths or find_project()
    folder = paths.build / "contracts"
    if not folder.is_dir():
        raise ConfigError("no compiled contracts: run `alpsim compile`")
    return {f.stem: Artifact.from_json(json.loads(f.read_text())) for f in sorted(folder.glob("*.json"))}


# `alpsim.errors.<Name>` knows every error the project's build declares
add_abi_source(lambda: [artifact.abi for artifact in load_artifacts().values()])


def _run_solc(paths: ProjectPaths, sources: dict[str, str]) -> dict:
    node = shutil.which("node")
    if node is None:
        raise ConfigError("node is not on PATH: alpsim compiles with solc-js and needs Node 20+")
    standard_input = {
        "language": "Solidity",
        "sources": {name: {"content": text} for name, text in sources.items()},
        "settings": SETTINGS,
    }
    proc = subprocess.run(
        [node, str(paths.solc_driver)],
        input=json.dumps(standard_input),
        capture_output=True,
        text=True,
        cwd=paths.root,
    )
    if proc.returncode != 0:
        raise CompileError([f"solc-js driver failed: {proc.stderr.strip()}"])
    return json.loads(proc.stdout)


def _format_message(message: dict, sources: dict[str, dict]) -> str:
    """`file:line:column: message`, lines and columns counted from 1."""
    location = message.get("sourceLocation")
    text = message.get("message", "").strip()
    kind = message.get("type", "Error")
    if not location or location.get("file") not in sources:
        return f"<solc>: {kind}: {text}"
    content = sources[location["file"]]["content"].encode()
    start = max(location.get("start", 0), 0)
    before = content[:start]
    line = before.count(b"\n") + 1
    column = start - (before.rfind(b"\n") + 1) + 1
    return f"{location['file']}:{line}:{column}: {kind}: {text}"


def _artifacts_from_output(output: dict) -> dict[str, Artifact]:
    artifacts: dict[str, Artifact] = {}
    # the project's own contracts first: a library name it shares with a dependency (such as
    # OpenZeppelin's `Errors`) names the project's
    ordered = sorted(output.get("contracts", {}).items(), key=lambda item: (not item[0].startswith("contracts/"), item[0]))
    for source, contracts in ordered:
        for name, data in sorted(contracts.items()):
            if name in artifacts and source.startswith("contracts/"):
                raise CompileError([f"{source}: contract name {name!r} is also used in {artifacts[name].source}"])
            if name in artifacts:
                continue
            artifacts[name] = Artifact(
                name,
                source,
                data["abi"],
                "0x" + data["evm"]["bytecode"]["object"],
                "0x" + data["evm"]["deployedBytecode"]["object"],
                data["evm"]["bytecode"].get("linkReferences", {}),
                data["evm"].get("methodIdentifiers", {}),
            )
    return artifacts


def _write_build(paths: ProjectPaths, key: str, build: dict, artifacts: dict[str, Artifact]) -> None:
    contracts_dir = paths.build / "contracts"
    info_dir = paths.build / "build-info"
    if contracts_dir.exists():
        shutil.rmtree(contracts_dir)
    if info_dir.exists():
        shutil.rmtree(info_dir)
    contracts_dir.mkdir(parents=True)
    info_dir.mkdir(parents=True)
    for name, artifact in artifacts.items():
        (contracts_dir / f"{name}.json").write_text(json.dumps(artifact.to_json(), indent=1))
    build_info = {
        "_format": BUILD_INFO_FORMAT,
        "id": key,
        "solcVersion": build["solcVersion"],
        "solcLongVersion": build["solcLongVersion"],
        "input": build["input"],
        "output": build["output"],
    }
    (info_dir / f"{key}.json").write_text(json.dumps(build_info))
    # written last: a build is only cached once everything else is on disk
    (paths.build / "cache.json").write_text(json.dumps(
        {"key": key, "solc_version": build["solcVersion"], "build_info": f"build-info/{key}.json"}, indent=1))
