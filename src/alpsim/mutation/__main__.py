"""`python -m alpsim.mutation`: the mutation study (`make mutants`).

Exit 0 when the study ran (whatever it found), 1 when the catalog no longer fits the contracts
(an anchor finds no line or several), 2 on bad input. Progress on stderr; the
results in OUT/results.json and OUT/table.md (default OUT: build/mutants).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import ConfigError
from .catalog import CATALOG, by_ids
from .operators import MutationError
from .study import StudyOptions, budget_seconds, run_study, table_markdown


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m alpsim.mutation",
        description="The mutation study: each catalog mutant of the contracts against `alpsim fuzz` "
                    "and the project's own test suite.")
    p.add_argument("--only", metavar="IDS", help="comma-separated mutant ids, e.g. M01,M05 (default: all)")
    p.add_argument("--budget", default="2m", help="the fuzzer's budget per mutant (default 2m)")
    p.add_argument("--workers", type=int, default=2, help="the fuzzer's workers (default 2)")
    p.add_argument("--skip-suite", action="store_true", help="do not run the project's suite on the mutants")
    p.add_argument("--suite-timeout", type=float, default=3600.0, metavar="S",
                   help="seconds before the suite on one mutant is stopped (default 3600)")
    p.add_argument("--out", type=Path, help="results folder (default build/mutants)")
    p.add_argument("--force", action="store_true", help="run mutants that already have a result again")
    p.add_argument("--list", action="store_true", help="print the catalog and exit")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.list:
        for s in CATALOG:
            print(f"{s.id}  {s.file:28} {s.operator:14} {s.description}")
        return 0
    try:
        only = [i.strip() for i in args.only.split(",") if i.strip()] if args.only is not None else None
        if args.only is not None and not only:
            raise ValueError("--only: no mutant ids given")
        by_ids(only)
        budget_seconds(args.budget)
        if args.workers < 1:
            raise ValueError(f"--workers {args.workers}: at least 1")
        if args.suite_timeout <= 0:
            raise ValueError(f"--suite-timeout {args.suite_timeout}: must be positive")
        if args.out is not None and args.out.exists() and not args.out.is_dir():
            raise ValueError(f"--out {args.out}: not a folder")
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    opts = StudyOptions(only=only, budget=args.budget, workers=args.workers, skip_suite=args.skip_suite,
                        force=args.force, out=args.out, suite_timeout_s=args.suite_timeout)
    try:
        data = run_study(opts)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except MutationError as e:  # the contracts changed under the catalog: its anchors need updating
        print(f"error: the catalog does not fit the contracts: {e}", file=sys.stderr)
        return 1
    print(table_markdown(data), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
