"""A shrunk failure as files: `OUT/<id>.yaml`, a checked scenario ending in `expect: {checks:
held}` (`alpsim run OUT/<id>.yaml --contracts DIR` exits 1 while the failure shows), and
`OUT/test_<id>.py`, a pytest file of the alpsim kit doing the same on the plugin's build
(`pytest OUT/test_<id>.py --alpsim-contracts=DIR`); a copy of the YAML goes into the corpus."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from .machine import SEED
from .steps import failure_id, scenario_text

TEST_TEMPLATE = '''"""alpsim fuzz failure {id} ({kind}) on {chain}: {message_line}

Replays {id}.yaml (a checked scenario) on the contracts under test: the pytest plugin's build,
the shipped contracts or `--alpsim-contracts=DIR`. It fails while the failure shows.
Written by `alpsim fuzz`; edit freely."""

from pathlib import Path

from alpsim.fuzz.replay import run_checked
from alpsim.scenario import load_scenario

SCENARIO = Path(__file__).with_name("{id}.yaml")


def test_fuzz_{name}(alpsim_build):
    run = run_checked(load_scenario(SCENARIO), build=alpsim_build)
    assert run.error is None, run.error
    failure = run.failure
    assert failure is None, f"step {{failure['step']}} ({{failure['kind']}}): {{failure['message']}}"
'''


def write_failure(failure: dict[str, Any], out: Path, corpus: Path | None) -> dict[str, Any]:
    """Writes the failure's files; returns the failure with id, yaml and test paths."""
    steps = failure["steps"]
    source = failure.get("source")
    fid = Path(source).stem if source else failure_id(failure["kind"], steps)
    out.mkdir(parents=True, exist_ok=True)
    message_line = " ".join(failure["message"].split())[:300]
    comment = (f"alpsim fuzz failure {fid} ({failure['kind']}): {message_line}\n"
               f"replay: alpsim run {fid}.yaml --contracts DIR   (exit 1 while the failure shows)")
    text = scenario_text(f"fuzz failure {fid} ({failure['kind']})", failure["chain"], SEED, failure["funds"],
                         tuple(failure["checks"]), steps, comment)
    yaml_path = out / f"{fid}.yaml"
    if source:  # a corpus scenario that fails again: itself, under its own name
        if Path(source).resolve() != yaml_path.resolve():
            shutil.copyfile(source, yaml_path)
        corpus = None
    else:
        yaml_path.write_text(text)
    test_path = out / f"test_{fid}.py"
    test_path.write_text(TEST_TEMPLATE.format(id=fid, name=re.sub(r"\W", "_", fid), kind=failure["kind"], chain=failure["chain"],
                                              message_line=message_line.replace('"""', "'''").replace("\\", "/")))
    if corpus is not None:
        corpus.mkdir(parents=True, exist_ok=True)
        if corpus.resolve() != out.resolve():
            shutil.copyfile(yaml_path, corpus / yaml_path.name)
    return {**failure, "id": fid, "yaml": str(yaml_path), "test": str(test_path)}
