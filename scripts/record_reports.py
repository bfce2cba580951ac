"""Records every shipped scenario's report (gas aside) into tests/recorded_reports/, the
baseline `tests/test_scenarios.py::test_shipped_scenario_report_is_the_recorded_one` holds
the code to. Rerun it only when a change of the mechanics is meant to change the reports, and
say so in the commit:

    .venv/bin/python scripts/record_reports.py
"""

from __future__ import annotations

import sys
from pathlib import Path

from alpsim.paths import find_project
from alpsim.quote import dumps_exact
from alpsim.scenario import ScenarioRunner, load_scenario

GAS_KEYS = ("gas", "gas_note")
"""What a backend measures, not what the scenario did: left out of the recorded reports."""


def recorded_form(report: dict) -> str:
    """The report as recorded: every key but the gas ones, exact JSON."""
    return dumps_exact({k: v for k, v in report.items() if k not in GAS_KEYS}) + "\n"


def main() -> int:
    root = find_project().root
    out = root / "tests" / "recorded_reports"
    out.mkdir(exist_ok=True)
    for path in sorted((root / "scenarios").glob("*.yaml")):
        run = ScenarioRunner(load_scenario(path), backend="revm").run()
        if run.error or run.interrupted:
            print(f"{path.name}: {run.error or 'interrupted'}", file=sys.stderr)
            return 1
        (out / f"{path.stem}.json").write_text(recorded_form(run.report))
        print(f"recorded {Path('tests/recorded_reports') / (path.stem + '.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
