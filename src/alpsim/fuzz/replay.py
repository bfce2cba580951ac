"""A checked scenario (`checks:` at its top) run by the fuzzer's executor: the reference model
beside the chain and the checks after every step. The first failing check is recorded with its
step; `expect: {checks: held}` then fails (and passes where the failure is gone)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from ..scenario.schema import Scenario
from .checks import classify


@dataclass
class CheckedRun:
    scenario: Scenario
    chain: str
    failure: dict | None = None
    """{step, kind, message} of the first failed check."""
    expectations: list[dict] = field(default_factory=list)
    steps_done: int = 0
    error: str | None = None
    interrupted: bool = False

    @property
    def report(self) -> dict[str, Any]:
        return {"scenario": self.scenario.name, "chain": self.chain, "checks": list(self.scenario.checks or []),
                "steps_done": self.steps_done, "failure": self.failure, "expectations": self.expectations,
                "error": self.error}

    @property
    def passed(self) -> bool:
        return self.error is None and all(e["passed"] for e in self.expectations)


def step_dict(step: Any) -> dict[str, Any]:
    """A parsed step as the executor takes it: `{kind: {field: value}}`."""
    body = step.body
    if hasattr(body, "model_dump"):
        body = body.model_dump(exclude_none=True)
    return {step.kind: dict(body)}


def run_checked(scenario: Scenario, *, build: Any = None, backend: str = "revm", chain: str | None = None,
                sim: Any = None, on_step: Callable[[int, int], None] | None = None) -> CheckedRun:
    """Runs `scenario` (checked) on a fresh deployment of `build` (or on `sim`, deployed with the
    scenario's seed and left as found)."""
    from ..client import Alpsim
    from .executor import Executor

    chain = chain or scenario.chain
    run = CheckedRun(scenario, chain)
    own = sim is None
    if own:
        sim = Alpsim.launch(chain, backend, build=build, seed=scenario.seed)
    snap = None if own else sim.snapshot()
    try:
        ex = Executor(sim, dict(scenario.funds), tuple(scenario.checks or ()))
        total = len(scenario.steps)
        for index, step in enumerate(scenario.steps):
            if step.kind == "expect":
                actual = "held" if run.failure is None else \
                    f"failed at step {run.failure['step']} ({run.failure['kind']}): {run.failure['message']}"
                run.expectations.append({"step": index, "subject": "checks", "expected": "held", "actual": actual,
                                         "passed": run.failure is None})
            elif run.failure is None:
                try:
                    ex.run(step_dict(step))
                except ValueError as exc:
                    run.error = f"step {index} ({step.kind}): {exc}"
                    break
                except Exception as exc:  # noqa: BLE001 - every failure is a finding
                    kind, message = classify(exc)
                    run.failure = {"step": index, "kind": kind, "message": message}
            run.steps_done = index + 1
            if on_step:
                on_step(index + 1, total)
    except KeyboardInterrupt:
        run.interrupted = True
    finally:
        if own:
            sim.stop()
        else:
            sim.revert(snap)
    return run
