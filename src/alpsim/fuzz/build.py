"""The contracts a fuzz run or a checked scenario runs on: the shipped ones, or a user's copy
compiled like the pytest plugin's `--alpsim-contracts` and checked against the interface the
client needs."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class ContractsRefused(ValueError):
    """A `--contracts` folder that cannot be used: the message says why."""


def user_build(contracts: Path | None) -> Any:
    """The BuildResult of `contracts` (None: the shipped contracts); raises ContractsRefused."""
    from ..compiler import compile_contracts
    from ..errors import AlpsimError, CompileError
    from ..paths import find_project
    from ..testing.interface import interface_problems

    paths = find_project()
    if contracts is None:
        return compile_contracts(paths)
    folder = Path(contracts).expanduser().resolve()
    where = f"--contracts {contracts}"
    if not folder.is_dir():
        raise ContractsRefused(f"{where}: no such directory")
    if not any(folder.rglob("*.sol")):
        raise ContractsRefused(f"{where}: no .sol files in it")
    try:
        build = compile_contracts(paths.with_contracts(folder))
    except CompileError as exc:
        raise ContractsRefused(f"{where}: the contracts do not compile:\n" + "\n".join(exc.messages)) from None
    except AlpsimError as exc:
        raise ContractsRefused(f"{where}: {exc}") from None
    problems = interface_problems(compile_contracts(paths).artifacts, build.artifacts)
    if problems:
        raise ContractsRefused(f"{where}: the client needs entry points or events these contracts lack or changed:\n  "
                               + "\n  ".join(problems))
    from ..errors import ErrorDecoder

    ErrorDecoder([a.abi for a in build.artifacts.values()])  # the user's new errors decode by name
    return build
