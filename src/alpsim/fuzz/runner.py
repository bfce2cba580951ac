"""One fuzz run and the corpus replays, as a worker runs them: run i is a hypothesis search of
the machine (ExchangeMachine on even i, EconomicMachine on odd) seeded from (seed, i), up to
EXAMPLES_PER_RUN examples of up to STEPS_PER_EXAMPLE steps; a failure is shrunk by hypothesis
(fewer steps, the first accounts, small amounts, round prices) and returned as its steps."""

from __future__ import annotations

import contextlib
import hashlib
import sys
import time
from pathlib import Path
from typing import Any

STEPS_PER_EXAMPLE = 30
EXAMPLES_PER_RUN = 10
"""Hypothesis starts each search with its simplest examples and grows them: 10 examples of up
to 30 steps is about 280 steps, 7 s on revm (docs/fuzz.md)."""
NOMINAL_STEPS_PER_RUN = STEPS_PER_EXAMPLE * EXAMPLES_PER_RUN
"""`--steps N` runs ceil(N / this) runs: the set of runs follows from N alone."""
_BUILDS: dict[str | None, Any] = {}


def run_seed(seed: int, index: int) -> int:
    """Run `index`'s hypothesis seed, derived from the fuzz seed."""
    return int.from_bytes(hashlib.sha256(f"alpsim-fuzz:{seed}:{index}".encode()).digest()[:8], "big")


def worker_build(contracts: str | None) -> Any:
    """The compiled build of `contracts` (None: the shipped ones), kept for the worker's life."""
    from .build import user_build

    if contracts not in _BUILDS:
        _BUILDS[contracts] = user_build(Path(contracts) if contracts else None)
    return _BUILDS[contracts]


def pin_hypothesis_constants() -> None:
    """Hypothesis (6.13x and later) mixes into its draws constants it reads from the source of
    every local module loaded (`sys.modules`), so the same seed drew differently in the CLI's
    process, a Dask worker and a test. The fuzzer pins that set to empty: a run then depends on its
    seed alone. (An internal of hypothesis: when it moves, this does nothing and says so in the
    determinism test.)"""
    try:
        from hypothesis.internal.conjecture import providers
    except ImportError:  # pragma: no cover - a hypothesis without local constants
        return
    empty = getattr(providers, "_ALPSIM_EMPTY_CONSTANTS", None)
    if empty is None and hasattr(providers, "_get_local_constants"):
        empty = providers.Constants(integers=providers.SortedSet(), floats=providers.SortedSet(key=providers.float_to_int),
                                    bytes=providers.SortedSet(), strings=providers.SortedSet())
        providers._ALPSIM_EMPTY_CONSTANTS = empty
        providers._get_local_constants = lambda: empty
        providers.CONSTANTS_CACHE = type(providers.CONSTANTS_CACHE)(1024)  # drawn before: forgotten


def fuzz_run(index: int, seed: int, chain: str, contracts: str | None) -> dict[str, Any]:
    """Fuzz run `index`: {run, steps, seconds, failure}; failure: {kind, message, steps, funds,
    checks, chain, original_steps} of the shrunk example, or None."""
    import hypothesis
    from hypothesis import HealthCheck, settings
    from hypothesis.stateful import run_state_machine_as_test

    from .checks import classify
    from .machine import STATS, machine_class

    pin_hypothesis_constants()
    started = time.monotonic()
    cls = machine_class(chain, economic=index % 2 == 1, build=worker_build(contracts))
    cls.last_failure = cls.first_failure = None
    hypothesis.seed(run_seed(seed, index))(cls)
    before = STATS["steps"]
    failure = None
    try:
        # hypothesis reports on stdout (e.g. "spent more than five minutes ... to shrink"): send it
        # to stderr, so that stdout carries only `alpsim fuzz --json`'s summary
        with contextlib.redirect_stdout(sys.stderr):
            run_state_machine_as_test(cls, settings=settings(
                max_examples=EXAMPLES_PER_RUN, stateful_step_count=STEPS_PER_EXAMPLE, deadline=None, database=None,
                suppress_health_check=list(HealthCheck), report_multiple_bugs=False, print_blob=False))
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - every failure is a finding
        if cls.last_failure is None:  # hypothesis itself (a flaky example): reported as a crash
            failure = {"kind": "crash", "message": f"{type(exc).__name__}: {exc}"[:2000], "steps": [], "funds": {},
                       "checks": list(cls.checks), "chain": chain, "original_steps": 0}
        else:
            kind, message = classify(_first(exc))
            failure = {"kind": kind, "message": message[:2000], "steps": cls.last_failure["steps"],
                       "funds": cls.last_failure["funds"], "checks": list(cls.checks), "chain": chain,
                       "original_steps": len((cls.first_failure or cls.last_failure)["steps"])}
    return {"run": index, "steps": STATS["steps"] - before, "seconds": time.monotonic() - started,
            "failure": failure}


def _first(exc: BaseException) -> BaseException:
    """The failure inside hypothesis's exception group, if it made one."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def corpus_run(index: int, path: str, chain: str, contracts: str | None) -> dict[str, Any]:
    """Replays a corpus scenario (a past failure) on the contracts: {run, steps, seconds, failure}
    as `fuzz_run`'s, with the scenario's steps (its closing expect left out)."""
    from ..scenario import load_scenario
    from .machine import launch
    from .replay import run_checked, step_dict

    started = time.monotonic()
    scenario = load_scenario(Path(path))
    sim = launch(scenario.chain, worker_build(contracts))
    run = run_checked(scenario, sim=sim)
    failure = None
    steps = [step_dict(s) for s in scenario.steps if s.kind != "expect"]
    if run.failure is not None:
        failure = {"kind": run.failure["kind"], "message": run.failure["message"][:2000],
                   "steps": steps[: run.failure["step"] + 1], "funds": dict(scenario.funds),
                   "checks": list(scenario.checks or []), "chain": scenario.chain,
                   "original_steps": len(steps), "from_corpus": True, "source": path}
    return {"run": index, "steps": run.steps_done, "seconds": time.monotonic() - started, "failure": failure}
