"""Invariants under random play (hypothesis RuleBasedStateMachine) on the revm devnet, both
chain profiles. The machines live in the package (`alpsim.fuzz.machine`, run by `alpsim fuzz` on
anyone's contracts): every rule draws its parameters, records a scenario step and runs it through
the one executor (`alpsim.fuzz.executor`) that `alpsim run` also uses for checked scenarios, so a
recorded failure replays exactly. Every action of every actor is a rule, hostile ones included: a
keeper gap (hours to a week, then its round), a griefer's unusable open requests (random bytes, a
well-encrypted garbage plaintext, a real order under a wrong commitment: each rejected on chain),
an LP withdrawing right after a bare price push, reference outages and breaker trips with the
keeper pricing every minute, execution fee raises with requests pending, guard and rate changes
mid-gap, inputs past the types' limits, and the basket's other assets.

After every step (alpsim.fuzz.checks, docs/fuzz.md):

- the chain equals the reference model (positions, balances, indexes, aggregates, NAV, ALP
  prices and holdings: the Mirror compares after each action), every refusal the same custom error,
- conservation: the collateral held by pool, escrow, treasury, keeper and the actors sums to what
  was minted, to the unit; so does every other basket asset; the pool's balance is its booked one,
- the pool covers its reserve; the escrow holds exactly the pending requests plus the open margins,
- no trader receives more than margin plus the capped profit; an LP action moves the ALP price only
  up and pays at most the worth less the lowest fee; a rejected hostile request costs exactly the
  execution fee it stored; every revert is a custom error of the ABIs,
- `EconomicMachine` (the keeper's prices fixed): E1 the collectible ALP price never falls, E2 the
  traders as a group never gain, E3 no LP-only actor gains by more than its share of the rise,
  E4 an honest LP can always redeem its deposits less both fees (alpsim.fuzz.checks).

`make test` runs a fixed, seeded budget (4 machines x 25 examples x 30 steps, at least 2,000
steps); `make soak` a long one (ALPSIM_SOAK_EXAMPLES x ALPSIM_SOAK_STEPS per machine)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

from alpsim.fuzz.machine import STATS, machine_class
from alpsim.fuzz.runner import pin_hypothesis_constants
from alpsim.fuzz.steps import scenario_text

pin_hypothesis_constants()
"""The same examples whatever else pytest collected (hypothesis draws the literals of every loaded
local module otherwise)."""

EXAMPLES = int(os.environ.get("ALPSIM_SOAK_EXAMPLES", "25"))
STEPS = int(os.environ.get("ALPSIM_SOAK_STEPS", "30"))
CI_MIN_STEPS = 2_000
"""The CI budget: 4 machines x 25 examples x up to 30 steps (at least CI_MIN_STEPS, checked)."""

BnbMachine = machine_class("bnb", economic=False)
ArbitrumMachine = machine_class("arbitrum", economic=False)
BnbEconomicMachine = machine_class("bnb", economic=True)
ArbitrumEconomicMachine = machine_class("arbitrum", economic=True)

SETTINGS = settings(max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None, derandomize=True,
                    suppress_health_check=list(HealthCheck), database=None)

TestBnb = BnbMachine.TestCase
TestBnb.settings = SETTINGS
TestArbitrum = ArbitrumMachine.TestCase
TestArbitrum.settings = SETTINGS
TestBnbEconomic = BnbEconomicMachine.TestCase
TestBnbEconomic.settings = SETTINGS
TestArbitrumEconomic = ArbitrumEconomicMachine.TestCase
TestArbitrumEconomic.settings = SETTINGS


def test_report_budget():
    """Prints what the run did (visible with -s; `make soak` shows it)."""
    machines = {k.removeprefix("steps "): v for k, v in STATS.items() if k.startswith("steps ")}
    print(f"stateful: {STATS['steps']} steps ({machines}), {STATS['checks']} rule checks; basket "
          f"{ {k: v for k, v in STATS.items() if k.startswith('basket')} }")
    assert STATS["steps"] > 0
    if len(machines) == 4 and (EXAMPLES, STEPS) == (25, 30):  # the whole CI budget ran
        assert sum(machines.values()) >= CI_MIN_STEPS
        assert STATS["basket deposit"] >= 10 and STATS["basket withdraw"] >= 10, STATS


def test_a_recorded_sequence_is_a_valid_checked_scenario(tmp_path):
    """What a machine records is a checked scenario `alpsim run` accepts, step for step."""
    from alpsim.scenario import load_scenario

    machine = BnbMachine()
    try:
        machine.start()
        machine.open(trader="t1", pair="BTC/USD", long=True, leverage=100, amount=100, tp=0.05, sl=0.02)
        machine.move_price(pair="BTC/USD", bps=-30)
        machine.time_passes(seconds=600)
        machine.keeper_runs_triggers()
        machine.close(index=0)
        machine.bad_order(kind="random_bytes", amount=5, seed=1)
        text = scenario_text("recorded", "bnb", 99, machine.funds, machine.checks, machine.steps)
    finally:
        machine.teardown()
    (tmp_path / "recorded.yaml").write_text(text)
    scenario = load_scenario(tmp_path / "recorded.yaml")
    assert [s.kind for s in scenario.steps] == ["prices", "deposit", "open", "prices", "wait", "keeper", "close",
                                               "bad_order", "expect"]
    assert scenario.accounts == ["t1", "t2", "t3", "t4", "lp5", "lp6", "g10"]
    assert scenario.checks == ["invariants", "model"]
