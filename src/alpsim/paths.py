"""Where alpsim finds its project: contracts, node_modules, build output, deployments."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, replace
from pathlib import Path

from .errors import ConfigError


@dataclass(frozen=True)
class ProjectPaths:
    """The folders of an alpsim checkout. `root` holds `contracts/` and `node_modules/`.
    `contracts_dir` and `build_dir`, when set, replace `root/contracts` and `root/build`: a
    user's copy of the contracts, compiled with the checkout's node_modules into a build
    folder of its own (see `with_contracts`)."""

    root: Path
    contracts_dir: Path | None = None
    build_dir: Path | None = None

    @property
    def contracts(self) -> Path:
        return self.contracts_dir or self.root / "contracts"

    @property
    def node_modules(self) -> Path:
        return self.root / "node_modules"

    @property
    def build(self) -> Path:
        return self.build_dir or self.root / "build"

    def with_contracts(self, folder: Path) -> "ProjectPaths":
        """This checkout with `folder` as its contracts, built under
        `build/user-contracts/<hash of the folder's sources>/` (the shipped build stays as it is;
        the same sources, wherever they are copied, reuse one build)."""
        folder = Path(folder).resolve()
        digest = hashlib.sha256()
        for source in sorted(folder.rglob("*.sol")):
            digest.update(source.relative_to(folder).as_posix().encode() + b"\0" + source.read_bytes() + b"\0")
        tag = digest.hexdigest()[:16]
        return replace(self, contracts_dir=folder, build_dir=self.root / "build" / "user-contracts" / tag)

    @property
    def deployments(self) -> Path:
        return self.root / "deployments"

    @property
    def solc_driver(self) -> Path:
        return self.root / "scripts" / "solc-compile.cjs"


CONTRACTS_ENV = "ALPSIM_CONTRACTS"
"""Names a folder of contracts that replaces the checkout's `contracts/` wherever the default
project is used (the test suite's build, `alpsim` commands, subprocesses, which inherit it):
the mutation study runs the project's own suite on a mutant this way."""


def find_project(start: Path | None = None) -> ProjectPaths:
    """The project root: `$ALPSIM_ROOT`, else the nearest folder above `start` (default: the
    current directory) with `contracts/` and `package.json`, else the checkout this package was
    installed from in editable mode.

    `$ALPSIM_CONTRACTS`, when set, replaces the found checkout's contracts (built under
    `build/user-contracts/<hash>/`, as `with_contracts`). A project named by `$ALPSIM_ROOT`
    is a whole project, its own contracts included: the variable does not apply to it."""
    env = os.environ.get("ALPSIM_ROOT")
    if env:
        return ProjectPaths(Path(env).resolve())
    return _contracts_override(_search_project(start))


def _contracts_override(paths: ProjectPaths) -> ProjectPaths:
    folder = os.environ.get(CONTRACTS_ENV)
    if not folder:
        return paths
    path = Path(folder)
    if not path.is_dir():
        raise ConfigError(f"{CONTRACTS_ENV}={folder}: not a folder")
    if not any(path.rglob("*.sol")):
        raise ConfigError(f"{CONTRACTS_ENV}={folder}: no .sol files in it")
    if not path.is_absolute():
        # made absolute here, so a child started in another folder (a test's own pytest run)
        # finds the same contracts
        os.environ[CONTRACTS_ENV] = str(path.resolve())
    return paths.with_contracts(path)


def _search_project(start: Path | None) -> ProjectPaths:
    candidates = [Path(start or Path.cwd()).resolve()]
    candidates += list(candidates[0].parents)
    candidates.append(Path(__file__).resolve().parents[2])
    for folder in candidates:
        if (folder / "contracts").is_dir() and (folder / "package.json").is_file():
            return ProjectPaths(folder)
    raise ConfigError(
        "no alpsim project found: run from a checkout (a folder with contracts/ and "
        "package.json) or set ALPSIM_ROOT"
    )
