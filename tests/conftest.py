"""Shared fixtures: compile once, deploy once per chain profile, snapshot and revert around
each test (titanoboa's anchor / ape's isolation).

The bulk of the suite runs on revm; a module that asserts gas, or drives eth-tester itself,
runs on the embedded backend by overriding `deployed` with `embedded_system`."""

from __future__ import annotations

import signal
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from alpsim.client import Alpsim
from alpsim.compiler import compile_contracts
from alpsim.mirror import Mirror

PROFILES = ["bnb", "arbitrum"]

LP = 7
"""The account that provides the pool's liquidity in trading tests."""
POOL_LIQUIDITY = 10_000_000
PRICES = {"BTC/USD": 60_000, "ETH/USD": 3_000, "SOL/USD": 150, "AAPL/USD": 200}


def pair_config(name: str = "DOGE/USD", *, listed: bool = True, paused: bool = False, tiered: bool = False,
                max_leverage: int = 20, spread_bps: int = 5, depth: int = 1_000_000 * 10**18,
                max_oi: int = 500_000 * 10**18) -> tuple:
    """A PairConfig tuple (name, listed, paused, tiered, maxLeverage, spreadBps, depth1PctUsd,
    maxOiPerSideUsd); the defaults are a valid pair."""
    return (name, listed, paused, tiered, max_leverage, spread_bps, depth, max_oi)


def default_sigint() -> None:
    """`preexec_fn` for a child the test stops with Ctrl-C (SIGINT): a shell without job
    control starts background commands with SIGINT ignored, and the child would inherit that
    from a backgrounded `make test`; Python turns SIGINT into KeyboardInterrupt only when it
    starts at the default."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


SLOW_MODULES = ("test_scenarios", "test_ui", "test_study", "test_gas", "test_regression_example", "test_plugin",
                "test_nav", "test_stateful", "test_keeper_griefing", "test_throughput", "test_bench", "test_revm",
                "test_compiler", "test_devnet_command", "test_js_client", "test_study_closed_form")
"""The modules that take longest, slowest first (`make test`'s `--durations`)."""


def pytest_collection_modifyitems(items: list) -> None:
    """The slowest modules first: `make test` hands whole modules to its workers
    (pytest-xdist, `--dist loadfile --no-loadscope-reorder`; without the last flag xdist would
    hand out the modules with the most tests first) in this order, so no long module starts
    last and runs alone while the other worker idles."""
    def rank(item) -> int:  # noqa: ANN001
        name = item.module.__name__.rsplit(".", 1)[-1] if item.module else ""
        return SLOW_MODULES.index(name) if name in SLOW_MODULES else len(SLOW_MODULES)
    items.sort(key=rank)


@pytest.fixture(scope="session")
def build():
    return compile_contracts()


@pytest.fixture(scope="session", params=PROFILES)
def deployed(request, build):
    """The whole system on the revm devnet, once per profile for the session."""
    sim = Alpsim.launch(request.param, "revm", build=build, seed=7)
    yield sim
    sim.stop()


def embedded_system(request, build):  # noqa: ANN001, ANN201
    """The whole system on the embedded devnet (eth-tester on py-evm: the gas a real chain
    charges, eth-tester's own controls). A module that needs it overrides `deployed`:
    `deployed = pytest.fixture(scope="module", params=PROFILES, name="deployed")(embedded_system)`."""
    sim = Alpsim.launch(request.param, build=build, seed=7)
    yield sim
    sim.stop()


class PreparedStates:
    """Named chain states a module's tests start from, each made by its builder. Where snapshots
    outlive a revert (eth-tester, anvil) a state is built once per devnet and restored from its
    snapshot after that. On revm a revert consumes its snapshot and every newer one, so the
    `sim` fixture's revert after a test takes the state's snapshot with it: there the state is
    built again for each test (a few milliseconds of EVM)."""

    def __init__(self, builders: dict[str, Callable[[Any], None]]):
        self.builders = builders
        self._snapshots: "weakref.WeakKeyDictionary[Any, dict[str, Any]]" = weakref.WeakKeyDictionary()

    def enter(self, sim, state: str) -> None:  # noqa: ANN001
        """Brings the chain (and the client's bookkeeping) to `state`. Call it once, first thing
        in a test: states are built on the deployed system the `sim` fixture starts from (and
        reverts to after)."""
        cache = self._snapshots.setdefault(sim.devnet, {})
        if state in cache:
            sim.revert(cache[state])
            return
        self.builders[state](sim)
        sim.devnet.mine()  # an empty head block: restoring a snapshot re-executes its head block
        if sim.devnet.snapshots_outlive_revert:
            cache[state] = sim.snapshot()


@pytest.fixture
def sim(deployed):
    """The deployed system, reverted to its deployed state after the test."""
    snap = deployed.snapshot()
    yield deployed
    deployed.revert(snap)


def lp_mirror(sim) -> Mirror:  # noqa: ANN001
    """The system and the reference model in lockstep (checked after every action), with
    10,000,000 USD of pool liquidity from account LP and PRICES fed by the keeper."""
    m = Mirror(sim)
    m.fund(LP, POOL_LIQUIDITY)
    m.deposit(LP, POOL_LIQUIDITY)
    m.set_prices(PRICES)
    return m


@pytest.fixture
def mirror(sim):
    """`lp_mirror` on the deployed system, reverted after the test."""
    return lp_mirror(sim)


@dataclass(frozen=True)
class FundedPool:
    """`funded_pool`'s state: the reference model and the mirrored accounts matching the chain
    snapshot the `sim` fixture reverts to."""

    model: Any
    accounts: frozenset[str]


@pytest.fixture(scope="module")
def funded_pool(request, deployed):
    """Once per module and profile: `lp_mirror`'s set-up (10,000,000 USD from LP, PRICES) and
    the module's `TRADERS` each funded with its `TRADER_FUNDS` and approved to the trading
    engine (`approve_collateral`), kept as a chain snapshot plus the matching model. The `sim`
    fixture (taken after this one) reverts to it after every test. A module takes it through
    `funded_mirror`: `mirror = pytest.fixture(name="mirror")(funded_mirror)`."""
    traders, funds = request.module.TRADERS, request.module.TRADER_FUNDS
    snap = deployed.snapshot()
    m = lp_mirror(deployed)
    for trader in traders:
        m.fund(trader, funds)
    deployed.approve_collateral(*traders)
    yield FundedPool(m.model.copy(), frozenset(m.accounts))
    deployed.revert(snap)


def funded_mirror(funded_pool, sim) -> Mirror:  # noqa: ANN001
    """A Mirror on `funded_pool`'s state; the whole chain state is compared with the model when
    a test calls `check()` rather than after every step (the chain's reject reasons still on
    every execution). A module that needs it makes it its `mirror`:
    `mirror = pytest.fixture(name="mirror")(funded_mirror)`."""
    m = Mirror(sim, check_every_step=False)
    m.model, m.accounts = funded_pool.model.copy(), set(funded_pool.accounts)
    return m
