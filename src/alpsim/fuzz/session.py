"""`alpsim fuzz` as a library call: the corpus replayed first, then the fuzz runs (a fixed set for
a step budget, waves until the time is up for a time budget), each failure shrunk and written
(fuzz.writer), and the summary of the JSON contract (docs/fuzz.md)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .distributed import task_pool
from .runner import NOMINAL_STEPS_PER_RUN, corpus_run, fuzz_run
from .writer import write_failure


@dataclass
class FuzzConfig:
    contracts: Path | None = None
    chain: str = "bnb"
    steps: int | None = 600
    budget_s: float | None = None
    seed: int = 0
    workers: int = 1
    scheduler: str | None = None
    out: Path = Path("build/fuzz")
    corpus: Path | None = None
    """Default: OUT/corpus."""

    @property
    def corpus_dir(self) -> Path:
        return self.corpus or self.out / "corpus"


@dataclass
class FuzzState:
    runs: int = 0
    steps: int = 0
    failures: dict[str, dict] = field(default_factory=dict)
    interrupted: bool = False


def fuzz(config: FuzzConfig, on_result: Callable[[FuzzState, dict], None] = lambda state, result: None) -> dict:
    """Runs the fuzzer; the summary (JSON contract). A KeyboardInterrupt stops it: what was
    written stays, and the summary says interrupted."""
    started = time.monotonic()
    state = FuzzState()
    contracts = str(config.contracts.resolve()) if config.contracts else None
    corpus_files = sorted(config.corpus_dir.glob("*.yaml")) if config.corpus_dir.is_dir() else []

    def handle(result: dict) -> None:
        state.runs += 1
        state.steps += result["steps"]
        failure = result["failure"]
        if failure is not None and failure["steps"]:
            written = write_failure(failure, config.out, config.corpus_dir)
            known = state.failures.get(written["id"])
            if known is None or result["run"] < known["run"]:
                state.failures[written["id"]] = {
                    "id": written["id"], "kind": failure["kind"], "message": failure["message"],
                    "yaml": written["yaml"], "test": written["test"], "shrunk_steps": len(failure["steps"]),
                    "original_steps": failure["original_steps"], "run": result["run"],
                    "found_after_s": round(time.monotonic() - started, 3),
                    "from_corpus": bool(failure.get("from_corpus"))}
        on_result(state, result)

    try:
        with task_pool(config.workers, config.scheduler) as pool:
            first = len(corpus_files)
            if corpus_files:
                for result in pool.results([(corpus_run, (i, str(p), config.chain, contracts))
                                            for i, p in enumerate(corpus_files)]):
                    handle(result)
            if config.budget_s is None:
                runs = max(1, math.ceil((config.steps or NOMINAL_STEPS_PER_RUN) / NOMINAL_STEPS_PER_RUN))
                for result in pool.results([(_fuzz_task, (first + j, j, config.seed, config.chain, contracts))
                                            for j in range(runs)]):
                    handle(result)
            else:
                j, wave = 0, max(1, 2 * pool.workers)
                while time.monotonic() - started < config.budget_s:
                    for result in pool.results([(_fuzz_task, (first + k, k, config.seed, config.chain, contracts))
                                                for k in range(j, j + wave)]):
                        handle(result)
                    j += wave
    except KeyboardInterrupt:
        state.interrupted = True
    failures = sorted(state.failures.values(), key=lambda f: (f["run"], f["id"]))
    return {"seed": config.seed, "chain": config.chain, "contracts": contracts, "runs": state.runs,
            "steps": state.steps, "seconds": round(time.monotonic() - started, 3), "interrupted": state.interrupted,
            "failures": failures}


def _fuzz_task(run: int, index: int, seed: int, chain: str, contracts: str | None) -> dict[str, Any]:
    """Fuzz run `index` (its seed from (seed, index)), reported as run number `run`."""
    result = fuzz_run(index, seed, chain, contracts)
    result["run"] = run
    return result
