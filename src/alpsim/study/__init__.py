"""The risk lab: Monte Carlo studies on the real contracts (docs/studies.md). A study file
(`spec`) gives prices (`prices`), a cohort of positions and the pool; every path is a real chain
(`runner`), paths run in this process or as Dask tasks (`distributed`), and the report
(`report`) aggregates them once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .spec import Study, StudyError, load_study, parse_study

__all__ = ["Study", "StudyError", "StudyRun", "load_study", "parse_study", "run_study"]


class StudyRun:
    """A finished (or interrupted) study: its report and where it was written."""

    def __init__(self, report: dict[str, Any], written: list[Path]):
        self.report, self.written = report, written

    @property
    def partial(self) -> bool:
        return self.report["partial"]


def run_study(study: Study, base_dir: Path, *, paths: int | None = None, backend: str = "revm",
              workers: int | None = None, scheduler: str | None = None, report_dir: Path | None = None,
              on_result=None, build=None) -> StudyRun:  # noqa: ANN001
    """Runs `paths` (default: the study's) paths of the study, or of each cell of its sweep, and
    aggregates them. Ctrl-C stops it: the report then covers the paths done and is marked
    partial (a sweep's later cells are left out)."""
    from ..compiler import compile_contracts
    from .distributed import path_runner
    from .keeper_report import measured_gas
    from .report import build_report, build_sweep_report, write_report, write_sweep_report
    from .spec import sweep_cells

    build = build or compile_contracts()
    count = paths or study.paths
    all_cells = sweep_cells(study)
    # the keeper's gas, measured here once per chain (exact EVM), never in a worker
    keeper_gas = {chain: measured_gas(chain, build, report_dir) for chain in dict.fromkeys(c.chain for _, c in all_cells)}
    cells = []
    try:
        with path_runner(workers, scheduler) as run:  # one cluster for every cell
            for values, cell in all_cells:
                results = run(cell, base_dir, build, list(range(count)), backend=backend,
                              on_result=on_result or (lambda result: None))
                cells.append((values, build_report(cell, results, paths_requested=count, partial=False,
                                                   backend=backend, keeper_gas=keeper_gas[cell.chain])))
    except KeyboardInterrupt as exc:
        if len(cells) < len(all_cells):  # the cell it stopped in is partial; later cells are left out
            values, cell = all_cells[len(cells)]
            cells.append((values, build_report(cell, getattr(exc, "results", []), paths_requested=count,
                                               partial=True, backend=backend, keeper_gas=keeper_gas[cell.chain])))
    if not study.sweep:
        report = cells[0][1]
        written = write_report(report, report_dir) if report_dir is not None else []
    else:
        report = build_sweep_report(study, cells)
        written = write_sweep_report(report, report_dir) if report_dir is not None else []
    return StudyRun(report, written)
