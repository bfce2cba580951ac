"""Where alpsim finds its project: contracts, node_modules, build output, deployments."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError


@dataclass(frozen=True)
class ProjectPaths:
    """The folders of an alpsim checkout. `root` holds `contracts/` and `node_modules/`."""

    root: Path

    @property
    def contracts(self) -> Path:
        return self.root / "contracts"

    @property
    def node_modules(self) -> Path:
        return self.root / "node_modules"

    @property
    def build(self) -> Path:
        return self.root / "build"

    @property
    def deployments(self) -> Path:
        return self.root / "deployments"

    @property
    def solc_driver(self) -> Path:
        return self.root / "scripts" / "solc-compile.cjs"


def find_project(start: Path | None = None) -> ProjectPaths:
    """The project root: `$ALPSIM_ROOT`, else the nearest folder above `start` (default: the
    current directory) with `contracts/` and `package.json`, else the checkout this package was
    installed from in editable mode."""
    env = os.environ.get("ALPSIM_ROOT")
    if env:
        return ProjectPaths(Path(env).resolve())
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
