"""`alpsim fuzz` in a terminal: the budget's syntax, the progress bar on stderr, the summary."""

from __future__ import annotations

import re
import time
from typing import Any

from .runner import NOMINAL_STEPS_PER_RUN
from .session import FuzzConfig, fuzz


def parse_budget(text: str) -> float:
    """`10m`, `90s`, `2h` or plain seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text)
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f"--budget {text!r}: a duration such as 90s, 10m or 2h")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]


def fuzz_with_progress(config: FuzzConfig, err_console: Any) -> dict:
    """Runs `fuzz` with a progress bar on `err_console`: runs, steps per second, failures."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    corpus = len(list(config.corpus_dir.glob("*.yaml"))) if config.corpus_dir.is_dir() else 0
    total = None if config.budget_s else corpus + max(1, -(-config.steps // NOMINAL_STEPS_PER_RUN))
    with Progress(TextColumn("fuzz {task.fields[chain]}"), BarColumn(), TextColumn("{task.completed} runs"),
                  TextColumn("{task.fields[rate]} steps/s"), TextColumn("{task.fields[failures]} failures"),
                  TimeElapsedColumn(), console=err_console, transient=True, redirect_stdout=False,
                  redirect_stderr=False) as progress:
        task = progress.add_task("fuzz", total=total, chain=config.chain, rate="-", failures=0)
        started = time.monotonic()

        def on_result(state, result) -> None:  # noqa: ANN001
            rate = state.steps / max(time.monotonic() - started, 1e-9)
            progress.update(task, completed=state.runs, rate=f"{rate:,.0f}", failures=len(state.failures))

        return fuzz(config, on_result)


def print_summary(summary: dict, console: Any) -> None:
    """The summary for a terminal: the totals, each failure with its files."""
    console.print(f"alpsim fuzz on {summary['chain']} ({summary['contracts'] or 'the shipped contracts'}): "
                  f"{summary['runs']} runs, {summary['steps']} steps in {summary['seconds']:.1f} s, seed "
                  f"{summary['seed']}" + (" (interrupted)" if summary["interrupted"] else ""), markup=False)
    if not summary["failures"]:
        console.print("no failure found", markup=False)
    for f in summary["failures"]:
        console.print(f"FAIL {f['id']} ({f['kind']}) run {f['run']}{' from the corpus' if f['from_corpus'] else ''}: "
                      f"{f['shrunk_steps']} steps (from {f['original_steps']}): {f['message'][:200]}", markup=False,
                      soft_wrap=True)
        console.print(f"  replay: alpsim run {f['yaml']} --contracts DIR   test: pytest {f['test']}", markup=False,
                      soft_wrap=True)
