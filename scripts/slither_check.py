"""Static analysis with Slither on the build-info `alpsim compile` writes (no native solc).

Run with the separate slither environment (slither-analyzer pins web3<8):
    .venv-slither/bin/python scripts/slither_check.py [--json OUT]
Prints every finding on the project's own contracts (not node_modules, not contracts/test) by
severity, and exits 1 when a High or Medium finding is not suppressed in the source with a
`// slither-disable-next-line <detector>` comment that says why.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from slither import Slither
from slither.detectors import all_detectors
from slither.detectors.abstract_detector import AbstractDetector

ROOT = Path(__file__).resolve().parents[1]
SEVERITIES = ["High", "Medium", "Low", "Informational", "Optimization"]


def _ours(element_file: str) -> bool:
    return "node_modules" not in element_file and "contracts/test/" not in element_file


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", type=Path, help="write the findings as JSON here")
    args = parser.parse_args()
    slither = Slither(str(ROOT), compile_force_framework="hardhat", hardhat_ignore_compile=True,
                      hardhat_artifacts_directory="build")
    for name in dir(all_detectors):
        detector = getattr(all_detectors, name)
        if isinstance(detector, type) and issubclass(detector, AbstractDetector):
            slither.register_detector(detector)
    findings = []
    for results in slither.run_detectors():
        for result in results:
            files = {e.get("source_mapping", {}).get("filename_relative", "") for e in result.get("elements", [])}
            if files and not any(_ours(f) for f in files):
                continue
            findings.append({"check": result["check"], "impact": result["impact"],
                             "confidence": result["confidence"], "description": result["description"].strip()})
    counts = Counter(f["impact"] for f in findings)
    print(f"slither: {len(slither.contracts)} contracts analyzed; findings by severity: "
          + ", ".join(f"{s} {counts.get(s, 0)}" for s in SEVERITIES))
    for f in sorted(findings, key=lambda f: SEVERITIES.index(f["impact"])):
        if f["impact"] in ("High", "Medium"):
            print(f"[{f['impact']}/{f['confidence']}] {f['check']}: {f['description']}\n")
    if args.json:
        args.json.write_text(json.dumps({"counts": counts, "findings": findings}, indent=1))
    return 1 if counts.get("High", 0) + counts.get("Medium", 0) else 0


if __name__ == "__main__":
    sys.exit(main())
