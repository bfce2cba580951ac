"""The alpsim pytest plugin (entry point `pytest11: alpsim`): options, fixtures, gas report,
gas snapshot and check, and failures that explain reverts.

Inert until used: it registers options and fixtures; nothing compiles or launches until a test
requests a fixture (or `--alpsim-contracts` names contracts, which are compiled and checked
once the tests using them are collected, before any runs).

Fixtures: `alpsim_build` (session: the compiled contracts), `alpsim_system` (session, one per
chain profile of `--alpsim-chain`: the deployed system), `alpsim` (the system, reverted to its
deployed state after the test), `trader` (account 1, funded), `lp` (account 7, liquidity
deposited), `keeper` (the keeper), `prices` (the keeper's prices, set to DEFAULT_PRICES_USD),
`basket` (the ALP basket: deposits of any asset, fills at the targets, state and quotes)."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import pytest

from .gas import GasRecorder

if TYPE_CHECKING:
    from ..client import Alpsim
    from ..compiler import BuildResult
    from ..paths import ProjectPaths
    from .actors import Actor, Basket, PriceControl

BACKENDS = ("embedded", "revm", "anvil")
EXACT_GAS_BACKENDS = ("embedded", "anvil")
SEED = 7
TRADER_ACCOUNT, LP_ACCOUNT = 1, 7
TRADER_FUNDS_USD = 100_000
LP_FUNDS_USD = 11_000_000
POOL_LIQUIDITY_USD = 10_000_000
"""The `lp` fixture deposits this much of its LP_FUNDS_USD (the rest stays in its wallet)."""
SYSTEM_FIXTURES = ("alpsim_system", "alpsim", "trader", "lp", "keeper", "prices", "basket")


@dataclass(frozen=True)
class SystemKey:
    """Which system a test runs on: a chain profile on a backend."""

    chain: str
    backend: str

    def __str__(self) -> str:
        return self.chain


_KEYS: dict[tuple[str, str], SystemKey] = {}


def system_key(chain: str, backend: str) -> SystemKey:
    """One SystemKey object per (chain, backend): pytest reuses a session fixture only for the
    very same parameter object, so every test on a system must be handed this one."""
    return _KEYS.setdefault((chain, backend), SystemKey(chain, backend))


@dataclass
class PluginState:
    chains: list[str]
    backend: str
    contracts: Path | None
    recorder: GasRecorder = field(default_factory=GasRecorder)
    checked: bool = False
    """The user's contracts were compiled and their interface checked."""
    comparison: Any = None
    snapshot: dict | None = None
    """The entries of `--gas-check`'s file."""


STATE = pytest.StashKey[PluginState]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("alpsim", "alpsim contract tests")
    group.addoption("--alpsim-chain", default="bnb", metavar="NAMES",
                    help="chain profiles to run the alpsim fixtures on, comma-separated (e.g. bnb,arbitrum): "
                         "the tests are parametrized over them. Default: bnb.")
    group.addoption("--alpsim-backend", default="embedded", choices=BACKENDS,
                    help="devnet backend: embedded (exact gas, default), revm (fast, gas not measured), "
                         "anvil (exact gas, full call traces).")
    group.addoption("--alpsim-contracts", default=None, metavar="DIR",
                    help="compile and deploy this copy of contracts/ instead of the shipped one. Write it "
                         "--alpsim-contracts=DIR (pytest would take a separate DIR for a test path).")
    group.addoption("--gas-report", action="store_true", default=False,
                    help="print gas per contract function (calls, min, mean, max) at the end of the run.")
    group.addoption("--gas-snapshot", default=None, metavar="FILE",
                    help="write the gas of every test and operation to FILE (sorted, one per line).")
    group.addoption("--gas-check", default=None, metavar="FILE",
                    help="compare the gas of every test and operation with snapshot FILE; fail on an increase.")
    group.addoption("--gas-tolerance", default=0.0, type=float, metavar="PERCENT",
                    help="an increase up to this percent passes --gas-check (default 0).")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "alpsim(chains=None, backend=None): pin the chain profiles and/or the "
                                       "backend of the alpsim fixtures for these tests")
    chains = [c.strip() for c in config.getoption("alpsim_chain").split(",") if c.strip()]
    if not chains:
        raise pytest.UsageError("--alpsim-chain: name at least one chain profile")
    if config.getoption("alpsim_chain") != "bnb":
        from ..errors import ConfigError
        from ..profiles import get_profile

        for chain in chains:
            try:
                get_profile(chain)
            except ConfigError as exc:
                raise pytest.UsageError(f"--alpsim-chain: {exc}") from None
    backend = config.getoption("alpsim_backend")
    for option in ("gas_snapshot", "gas_check"):
        if config.getoption(option) and backend not in EXACT_GAS_BACKENDS:
            raise pytest.UsageError(f"--{option.replace('_', '-')}: gas is not measured on the {backend} backend "
                                    f"(its gas reads low); use --alpsim-backend embedded or anvil")
    check = config.getoption("gas_check")
    snapshot = None
    if check:
        from .gas import read_snapshot

        if not Path(check).is_file():
            raise pytest.UsageError(f"--gas-check {check}: no such snapshot file (write one with --gas-snapshot)")
        try:
            snapshot = read_snapshot(Path(check))
        except ValueError as exc:
            raise pytest.UsageError(f"--gas-check: {exc}") from None
    if config.getoption("gas_tolerance") < 0:
        raise pytest.UsageError("--gas-tolerance: a percentage of 0 or more")
    contracts = config.getoption("alpsim_contracts")
    folder = None
    if contracts is not None:
        folder = Path(contracts).expanduser().resolve()
        if not folder.is_dir():
            raise pytest.UsageError(f"--alpsim-contracts={contracts}: no such directory")
        if not any(folder.rglob("*.sol")):
            raise pytest.UsageError(f"--alpsim-contracts={contracts}: no .sol files in it")
    config.stash[STATE] = PluginState(chains, backend, folder, snapshot=snapshot)
    _warn_separate_path_values(config)


PATH_OPTIONS = ("--alpsim-contracts", "--gas-snapshot", "--gas-check")


def _warn_separate_path_values(config: pytest.Config) -> None:
    """pytest chooses its rootdir (and so the test ids) before it loads this plugin, taking the
    value of `--alpsim-contracts DIR` for a test path; `--alpsim-contracts=DIR` is not."""
    args = list(config.invocation_params.args)
    for flag in PATH_OPTIONS:
        if flag in args[:-1]:
            value = args[args.index(flag) + 1]
            config.issue_config_time_warning(pytest.PytestConfigWarning(
                f"write {flag}={value} (with '='): given as two words, pytest took {value} for a test path "
                f"when it chose its rootdir ({config.rootpath}), which names the tests"), stacklevel=2)


# ----------------------------------------------------------------- the user's contracts

def _paths(state: PluginState) -> "ProjectPaths":
    from ..paths import find_project

    paths = find_project()
    return paths.with_contracts(state.contracts) if state.contracts else paths


def _build(state: PluginState) -> "BuildResult":
    """Compiles the contracts the tests run on (a cache hit after the first time); for a user's
    copy, checks that it still has what the client needs. Problems are usage errors."""
    from ..compiler import compile_contracts
    from ..errors import AlpsimError, CompileError, ErrorDecoder

    where = f"--alpsim-contracts={state.contracts}"
    try:
        build = compile_contracts(_paths(state))
    except CompileError as exc:
        if state.contracts is None:
            raise
        raise pytest.UsageError(f"{where}: the contracts do not compile:\n" + "\n".join(exc.messages)) from None
    except AlpsimError as exc:
        raise pytest.UsageError(f"{where if state.contracts else 'alpsim'}: {exc}") from None
    if state.contracts is not None and not state.checked:
        from .interface import interface_problems

        shipped = compile_contracts(_paths(PluginState(state.chains, state.backend, None)))
        problems = interface_problems(shipped.artifacts, build.artifacts)
        if problems:
            raise pytest.UsageError(f"{where}: the client needs entry points or events these contracts lack or "
                                    "changed:\n  " + "\n  ".join(problems))
        ErrorDecoder([a.abi for a in build.artifacts.values()])  # `errors.<Name>` for the user's new errors
        state.checked = True
    return build


def _uses_alpsim(item: pytest.Item) -> bool:
    return any(name in getattr(item, "fixturenames", ()) for name in ("alpsim_build", *SYSTEM_FIXTURES))


def pytest_collection_finish(session: pytest.Session) -> None:
    """Compiles and checks `--alpsim-contracts` before any test runs, if a test will use them."""
    state = session.config.stash[STATE]
    if state.contracts is not None and any(_uses_alpsim(item) for item in session.items):
        _build(state)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_setupnodes(config: pytest.Config, specs: list) -> None:
    """Under xdist the controller collects nothing: it checks `--alpsim-contracts` here, once,
    before the workers start."""
    state = config.stash[STATE]
    if state.contracts is not None:
        _build(state)


# ----------------------------------------------------------------- fixtures

def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrizes every test that uses the system over the chain profiles (`--alpsim-chain`,
    or an `alpsim(chains=...)` marker), on the backend of `--alpsim-backend` (or the marker's)."""
    if "alpsim_system" not in metafunc.fixturenames:
        return
    state = metafunc.config.stash[STATE]
    marker = metafunc.definition.get_closest_marker("alpsim")
    chains = list((marker.kwargs.get("chains") if marker else None) or state.chains)
    backend = (marker.kwargs.get("backend") if marker else None) or state.backend
    if backend not in BACKENDS:
        raise pytest.UsageError(f"alpsim marker: unknown backend {backend!r}; one of {', '.join(BACKENDS)}")
    keys = [system_key(chain, backend) for chain in chains]
    metafunc.parametrize("alpsim_system", keys, indirect=True, ids=[str(k) for k in keys], scope="session")


@pytest.fixture(scope="session")
def alpsim_build(request: pytest.FixtureRequest) -> "BuildResult":
    """The compiled contracts: the shipped ones, or `--alpsim-contracts`'s (checked)."""
    return _build(request.config.stash[STATE])


@pytest.fixture(scope="session")
def alpsim_system(request: pytest.FixtureRequest, alpsim_build: "BuildResult") -> Iterator["Alpsim"]:
    """The whole system deployed once per session for one chain profile and backend."""
    from ..client import Alpsim

    state = request.config.stash[STATE]
    key: SystemKey = getattr(request, "param", system_key(state.chains[0], state.backend))
    sim = Alpsim.launch(key.chain, key.backend, build=alpsim_build, seed=SEED)
    try:
        if state.contracts is not None:
            _record_user_sources(sim, state)
        state.recorder.attach(sim)
        yield sim
    finally:
        sim.stop()


def _record_user_sources(sim: "Alpsim", state: PluginState) -> None:
    """The deployment record names the sources actually deployed (the user's copy)."""
    from ..compiler import source_files, source_hash

    sim.deployment.source_hash = source_hash(source_files(_paths(state)))


@pytest.fixture
def alpsim(alpsim_system: "Alpsim") -> Iterator["Alpsim"]:
    """The deployed system for this test: every change is reverted after it (snapshot/revert)."""
    snap = alpsim_system.snapshot()
    try:
        yield alpsim_system
    finally:
        alpsim_system.revert(snap)


@pytest.fixture
def trader(alpsim: "Alpsim") -> "Actor":
    """Dev account 1, funded with TRADER_FUNDS_USD of collateral."""
    from .actors import Actor

    actor = Actor(alpsim, TRADER_ACCOUNT, "trader")
    actor.fund(TRADER_FUNDS_USD)
    return actor


@pytest.fixture
def lp(alpsim: "Alpsim") -> "Actor":
    """Dev account 7, funded with LP_FUNDS_USD and POOL_LIQUIDITY_USD of it deposited: the
    pool's liquidity for the test's trades."""
    from .actors import Actor

    actor = Actor(alpsim, LP_ACCOUNT, "lp")
    actor.fund(LP_FUNDS_USD)
    actor.deposit(POOL_LIQUIDITY_USD)
    return actor


@pytest.fixture
def keeper(alpsim: "Alpsim") -> Any:
    """The system's keeper (`alpsim.keeper.Keeper`, dev account 9): executes, triggers, prices."""
    return alpsim.keeper


@pytest.fixture
def prices(alpsim: "Alpsim") -> "PriceControl":
    """The keeper's prices, set to DEFAULT_PRICES_USD (and the reference feeds with them)."""
    from .actors import DEFAULT_PRICES_USD, PriceControl

    return PriceControl(alpsim, DEFAULT_PRICES_USD)


@pytest.fixture
def basket(alpsim: "Alpsim", prices: "PriceControl") -> "Basket":
    """The ALP basket (`alpsim.testing.Basket`), with the keeper's prices set (the `prices`
    fixture): `basket.deposit(lp, "BTC", "0.5")`, `basket.fill(lp, 1_000_000)`,
    `basket.state().weights_bps`, `basket.quote("BNB", 10)`."""
    from .actors import Basket

    return Basket(alpsim)


# ----------------------------------------------------------------- gas and failures

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """Counts the transactions of the test's body (not its fixtures') for the gas tables."""
    recorder = item.config.stash[STATE].recorder
    recorder.current_test = item.nodeid
    try:
        yield
    finally:
        recorder.current_test = None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """A failure caused by a revert gets a section with the decoded error, call and trace."""
    outcome = yield
    report = outcome.get_result()
    if not report.failed or call.excinfo is None:
        return
    from .failures import explain_revert, find_revert

    revert = find_revert(call.excinfo.value)
    if revert is not None:
        try:
            text = explain_revert(revert)
        except Exception as exc:  # noqa: BLE001 - the explanation must never hide the failure
            text = f"{revert!r} (could not explain it further: {exc})"
        report.sections.append(("alpsim: the transaction reverted", text))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    state = config.stash[STATE]
    if hasattr(config, "workerinput"):  # an xdist worker: the controller aggregates
        config.workeroutput["alpsim_gas"] = json.dumps(state.recorder.to_json())
        return
    from .gas import compare, snapshot_entries, write_snapshot

    entries = snapshot_entries(state.recorder.calls)
    if config.getoption("gas_snapshot"):
        write_snapshot(Path(config.getoption("gas_snapshot")), entries)
    if state.snapshot is not None:
        state.comparison = compare(state.snapshot, entries, config.getoption("gas_tolerance"))
        if state.comparison.failed and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist controller: gathers a worker's gas records."""
    rows = getattr(node, "workeroutput", {}).get("alpsim_gas")
    if rows:
        node.config.stash[STATE].recorder.add_json(json.loads(rows))


def _render(table: Any) -> str:
    from rich.console import Console

    buffer = io.StringIO()
    Console(file=buffer, width=160, color_system=None).print(table)
    return buffer.getvalue()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash[STATE]
    if hasattr(config, "workerinput"):
        return
    from .gas import comparison_table, report_table

    calls = state.recorder.calls
    if config.getoption("gas_report"):
        terminalreporter.section("alpsim gas report")
        measured = [c for c in calls if c.gas is not None]
        unmeasured = len(calls) - len(measured)
        if measured:
            terminalreporter.write(_render(report_table(measured)))
        if unmeasured or state.backend not in EXACT_GAS_BACKENDS:
            terminalreporter.write_line("gas is not measured on revm (its gas reads low): the tests that ran there "
                                        "are left out; run with --alpsim-backend embedded or anvil for gas")
        elif not measured:
            terminalreporter.write_line("no transactions were sent by the tests' bodies")
    if config.getoption("gas_snapshot"):
        terminalreporter.write_line(f"alpsim: gas snapshot written to {config.getoption('gas_snapshot')}")
    comparison = state.comparison
    if comparison is not None:
        terminalreporter.section("alpsim gas check")
        tolerance = config.getoption("gas_tolerance")
        if comparison.changes:
            terminalreporter.write(_render(comparison_table(comparison, tolerance)))
        for label, keys in (("new (not in the snapshot)", comparison.new),
                            ("in the snapshot, not measured now", comparison.missing)):
            for test, op in keys:
                terminalreporter.write_line(f"{label}: {test} {op}")
        if comparison.failed:
            terminalreporter.write_line(f"GAS CHECK FAILED: {len(comparison.failed)} operation(s) use more gas than "
                                        f"{config.getoption('gas_check')} allows (tolerance {tolerance:g}%)",
                                        red=True, bold=True)
        else:
            terminalreporter.write_line(f"gas check passed: {len(comparison.changes)} change(s), none an increase "
                                        f"beyond {tolerance:g}%", green=True)
