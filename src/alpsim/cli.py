"""`alpsim` command line: thin commands over the library."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from .errors import AlpsimError, CompileError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Simulate an ALP-pool perpetual exchange (one-click 1001x) on a real EVM.")
console = Console()
err_console = Console(stderr=True)

# shared options
ChainOpt = Annotated[str, typer.Option("--chain", "-c", help="Chain profile: bnb or arbitrum.")]
RpcOpt = Annotated[Optional[str], typer.Option("--rpc", help="Use the node at this URL instead of starting one.")]
BackendOpt = Annotated[str, typer.Option("--backend", "-b", help="embedded (in-process py-evm), revm (in-process revm, no gas figures) or anvil.")]
ProfilesOpt = Annotated[Optional[Path], typer.Option("--profiles", help="A TOML file of chain profiles.")]


@app.command("compile")
def compile_cmd(force: Annotated[bool, typer.Option("--force", help="Ignore the cache.")] = False) -> None:
    """Compile contracts/ with solc-js into build/ (cached by source hash)."""
    from .compiler import compile_contracts

    try:
        result = compile_contracts(force=force)
    except CompileError as exc:
        for message in exc.messages:
            err_console.print(message, markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    state = "cached" if result.cached else "compiled"
    console.print(f"{state}: {len(result.artifacts)} contracts, solc {result.solc_version}, "
                  f"build-info {result.build_info}", soft_wrap=True)


@app.command("profiles")
def profiles_cmd(profiles: ProfilesOpt = None) -> None:
    """List the chain profiles."""
    from .profiles import load_profiles

    table = Table(title="chain profiles")
    for col in ("name", "chain", "chain id", "collateral", "decimals", "execution fee", "block time", "EVM"):
        table.add_column(col)
    for p in load_profiles(profiles).values():
        table.add_row(p.name, p.display_name, str(p.chain_id), p.collateral.symbol, str(p.collateral.decimals),
                      f"{p.execution_fee_usd} USD", f"{p.block_time_s} s", p.evm_version)
    console.print(table)


@app.command("deploy")
def deploy_cmd(
    chain: ChainOpt = "bnb",
    rpc: RpcOpt = None,
    backend: BackendOpt = "embedded",
    profiles: ProfilesOpt = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Deployments file (default deployments/<chain>.json).")] = None,
) -> None:
    """Deploy the whole system for a chain profile and write its deployments file."""
    from .deployment import default_path, deploy_system
    from .devnet import start_devnet
    from .profiles import get_profile

    profile = get_profile(chain, profiles)
    with start_devnet(profile, backend, rpc_url=rpc) as devnet:
        deployment, _ = deploy_system(devnet)
        path = deployment.write(out or default_path(profile.name))
    table = Table(title=f"alpsim on {profile.display_name} (chain id {deployment.chain_id}, {devnet.backend_name})")
    table.add_column("role")
    table.add_column("contract")
    table.add_column("address")
    for role, entry in deployment.contracts.items():
        table.add_row(role, entry.name, entry.address)
    console.print(table)
    console.print(f"deployments file: {path}", soft_wrap=True)


@app.command("quote")
def quote_cmd(
    chain: ChainOpt = "bnb",
    pair: Annotated[str, typer.Option("--pair", help="BTC/USD, ETH/USD, SOL/USD or AAPL/USD.")] = "BTC/USD",
    side: Annotated[str, typer.Option("--side", help="long or short.")] = "long",
    amount: Annotated[str, typer.Option("--amount", help="Collateral sent, in USD.")] = "100",
    leverage: Annotated[int, typer.Option("--leverage", help="1 to the pair's maximum.")] = 1001,
    price: Annotated[str, typer.Option("--price", help="Oracle price of the pair, in USD.")] = "60000",
    referral: Annotated[bool, typer.Option("--referral", help="With a referral code bound (5% off).")] = False,
    fee_token: Annotated[bool, typer.Option("--fee-token", help="Fees paid in the platform token (5% off).")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
    profiles: ProfilesOpt = None,
) -> None:
    """What an order would cost and where it would be liquidated (offline, empty book)."""
    from .profiles import get_profile
    from .quote import QUOTE_KEYS, dumps_exact, quote_order

    result = quote_order(get_profile(chain, profiles), pair, side, amount, leverage, price, referral=referral,
                         fee_token=fee_token)
    if json_out:
        print(dumps_exact(result))
        return
    table = Table(title=f"quote: {side} {pair} {leverage}x with {amount} USD on {chain}")
    table.add_column("")
    table.add_column("value", justify="right")
    for key in QUOTE_KEYS:
        value = result[key]
        table.add_row(key, f"{value:,.6f}" if hasattr(value, "quantize") else str(value))
    console.print(table)


@app.command("quote-lp")
def quote_lp_cmd(
    asset: Annotated[str, typer.Option("--asset", help="The basket asset: its symbol (bnb: USDT, USDC, BNB, ETH, BTC; "
                                                      "arbitrum: USDC, USDT, ETH, BTC).")],
    amount: Annotated[str, typer.Option("--amount", help="Whole tokens of the asset deposited (with --withdraw: ALP "
                                                        "burnt).")],
    chain: ChainOpt = "bnb",
    withdraw: Annotated[bool, typer.Option("--withdraw", help="Quote a withdrawal of --amount ALP for the asset.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
    rpc: Annotated[Optional[str], typer.Option("--rpc", help="Read the pool of a system running on this node "
                                                            "(default: an embedded devnet with a default pool).")] = None,
    deployment: Annotated[Optional[Path], typer.Option("--deployment", help="With --rpc: its deployments file "
                                                       "(default deployments/<chain>.json).")] = None,
    profiles: ProfilesOpt = None,
) -> None:
    """A deposit's (or withdrawal's) fee, ALP out (or asset out) and basket weights before and
    after, from the reference model at the pool's state: a running system's (--rpc), or an
    embedded devnet's pool of 1,000,000 USD at the target weights. Exit 2 on a bad input."""
    from .quote import DEFAULT_POOL_USD, LP_QUOTE_KEYS, dumps_exact, quote_lp, seed_default_pool

    if deployment is not None and rpc is None:
        raise typer.BadParameter("--deployment reads a running system: give its node with --rpc", param_hint="--rpc")
    if rpc is not None:
        from .client import AlpsimReader
        from .contracts import Session
        from .deployment import default_path
        from .service import _node

        devnet, record = _node(rpc, deployment or default_path(chain))
        if record.chain != chain:
            raise typer.BadParameter(f"the deployments file is for {record.chain}, not {chain}", param_hint="--chain")
        result = quote_lp(AlpsimReader(devnet, record, Session(devnet)), asset, amount, withdraw)
        where = f"the pool on {rpc}"
    else:
        from .client import Alpsim
        from .profiles import get_profile

        profile = get_profile(chain, profiles)
        with Alpsim.launch(profile, seed=1) as sim:
            sim.deployment.basket_asset(asset)  # an unknown asset is refused before the pool is seeded
            seed_default_pool(sim)
            result = quote_lp(sim, asset, amount, withdraw)
        where = f"an embedded devnet's pool of {DEFAULT_POOL_USD:,} USD at the target weights"
    if json_out:
        print(dumps_exact(result))
        return
    action = f"withdraw {amount} ALP for {result['asset']}" if withdraw else f"deposit {amount} {result['asset']}"
    table = Table(title=f"quote-lp on {chain}: {action} ({where})")
    table.add_column("")
    table.add_column("value", justify="right")
    for key in LP_QUOTE_KEYS[:4] + (["amount_out"] if withdraw else ["alp_out"]):
        table.add_row(key, str(result[key]))
    console.print(table)
    weights = Table(title="basket weights (bp)")
    for col in ("asset", "before", "after", "target", "price (USD, low / high)", "price source"):
        weights.add_column(col, justify="right")
    for symbol, target in result["targets_bps"].items():
        price = result["prices"].get(symbol)
        weights.add_row(symbol, str(result["weights_before_bps"][symbol]), str(result["weights_after_bps"][symbol]),
                        str(target), "-" if price is None else f"{price['low']:,.8f} / {price['high']:,.8f}",
                        "-" if price is None else price["source"])
    console.print(weights)


@app.command("run")
def run_cmd(
    file: Annotated[Path, typer.Argument(help="A scenario YAML file.")],
    chain: Annotated[Optional[str], typer.Option("--chain", "-c", help="Override the scenario's chain.")] = None,
    backend: Annotated[Optional[str], typer.Option("--backend", "-b", help="embedded (default; revm for a checked "
                                                   "scenario), revm or anvil.")] = None,
    contracts: Annotated[Optional[Path], typer.Option("--contracts", help="Run on this copy of contracts/ (compiled "
                                                      "and checked against the client's interface, as the pytest "
                                                      "plugin's --alpsim-contracts).")] = None,
    report: Annotated[Optional[Path], typer.Option("--report", help="Write report.json, summary.md and plots here.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as one JSON object.")] = False,
) -> None:
    """Run a scenario; exit 1 when an expectation fails, 2 when the file or --contracts is invalid.
    A checked scenario (`checks:`) runs beside the reference model with its checks after every step."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from .quote import dumps_exact
    from .scenario import ScenarioError, ScenarioRunner, load_scenario, write_report

    try:
        scenario = load_scenario(file)
    except ScenarioError as exc:
        for problem in exc.problems:
            err_console.print(problem, markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    if backend is not None and backend not in ("embedded", "revm", "anvil"):
        err_console.print(f"--backend {backend}: one of embedded, revm, anvil", markup=False)
        raise typer.Exit(2)
    if chain is not None:
        from .profiles import get_profile

        get_profile(chain)
    build = None
    if contracts is not None:
        from .fuzz.build import ContractsRefused, user_build

        try:
            build = user_build(contracts)
        except ContractsRefused as exc:
            err_console.print(str(exc), markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
    if scenario.checks is not None:
        _run_checked(scenario, build, backend or "revm", chain, json_out)
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("simulated {task.fields[sim_time]}"), console=err_console, transient=True) as progress:
        task = progress.add_task(scenario.name, total=len(scenario.steps), sim_time="0 s")

        def on_step(done: int, total: int, seconds: int) -> None:
            if done == 1:
                progress.console.print(f"running: {scenario.name} ({total} steps)", markup=False)
            progress.update(task, completed=done, sim_time=_duration(seconds))

        run = ScenarioRunner(scenario, backend=backend or "embedded", chain=chain, build=build, on_step=on_step).run()
    if report is not None:
        write_report(run, report)
    if json_out:
        print(dumps_exact(run.report))
    else:
        _print_run(run)
    if run.interrupted:
        err_console.print(f"interrupted after {run.steps_done} of {len(scenario.steps)} steps: partial report")
        raise typer.Exit(130)
    if run.error:
        err_console.print(f"error: {run.error}", markup=False, soft_wrap=True)
        raise typer.Exit(1)
    if any(not e.passed for e in run.expectations):
        raise typer.Exit(1)


def _run_checked(scenario, build, backend: str, chain: Optional[str], json_out: bool) -> None:  # noqa: ANN001
    """`alpsim run` of a checked scenario: the fuzzer's executor, its checks after every step."""
    import json

    from .fuzz.replay import run_checked

    run = run_checked(scenario, build=build, backend=backend, chain=chain)
    if json_out:
        print(json.dumps(run.report, sort_keys=True, default=str))
    else:
        console.print(f"{scenario.name} ({run.chain}): {run.steps_done} of {len(scenario.steps)} steps, checks "
                      f"{', '.join(scenario.checks or []) or 'none'}", markup=False)
        if run.failure is not None:
            f = run.failure
            console.print(f"check failed at step {f['step']} ({f['kind']}): {f['message']}", markup=False,
                          soft_wrap=True)
        for e in run.expectations:
            mark = "[green]pass[/green]" if e["passed"] else "[red]FAIL[/red]"
            console.print(f"  step {e['step']}: checks {e['actual'] if not e['passed'] else 'held'} {mark}")
    if run.interrupted:
        raise typer.Exit(130)
    if run.error:
        err_console.print(f"error: {run.error}", markup=False, soft_wrap=True)
        raise typer.Exit(1)
    if not run.passed:
        raise typer.Exit(1)


@app.command("fuzz")
def fuzz_cmd(
    contracts: Annotated[Optional[Path], typer.Option("--contracts", help="Fuzz this copy of contracts/ (compiled and "
                                                      "checked against the client's interface).")] = None,
    chain: Annotated[str, typer.Option("--chain", "-c", help="Chain profile: bnb or arbitrum.")] = "bnb",
    budget: Annotated[Optional[str], typer.Option("--budget", help="Run until this much time is up (e.g. 10m, "
                                                  "90s), in waves of runs.")] = None,
    steps: Annotated[Optional[int], typer.Option("--steps", help="A fixed set of runs for about this many steps "
                                                 "(default 600; the same seed and steps: the same runs).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="The fuzz seed; run i's seed derives from (seed, i).")] = 0,
    workers: Annotated[Optional[int], typer.Option("--workers", help="Worker processes of a local Dask cluster "
                                                   "(default 1: in this process).")] = None,
    scheduler: Annotated[Optional[str], typer.Option("--scheduler", help="Run on an existing Dask cluster: "
                                                     "tcp://HOST:PORT of its scheduler.")] = None,
    out: Annotated[Path, typer.Option("--out", help="Where failures are written (<id>.yaml, test_<id>.py).")]
    = Path("build/fuzz"),
    corpus: Annotated[Optional[Path], typer.Option("--corpus", help="Past failures, replayed first (default "
                                                   "OUT/corpus).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary as one JSON object.")] = False,
) -> None:
    """Hostile random play on the contracts, checked after every step; each failure shrunk and
    written as a scenario and a test. Exit 1 when a failure was found, 2 on bad input."""
    import json
    import re

    from .fuzz.build import ContractsRefused, user_build
    from .fuzz.console import fuzz_with_progress, parse_budget, print_summary
    from .fuzz.session import FuzzConfig

    def refuse(message: str) -> None:
        err_console.print(message, markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2)

    if chain not in ("bnb", "arbitrum"):
        refuse(f"--chain {chain}: bnb or arbitrum")
    if budget is not None and steps is not None:
        refuse("--budget and --steps: give one (a time budget or a step budget)")
    if workers is not None and scheduler is not None:
        refuse("--workers starts a local cluster, --scheduler uses an existing one: give one")
    if steps is not None and steps < 1:
        refuse(f"--steps {steps}: at least 1")
    if workers is not None and not 1 <= workers <= 256:
        refuse(f"--workers {workers}: between 1 and 256")
    if scheduler is not None and not re.fullmatch(r"tcp://[A-Za-z0-9.\-\[\]:]+:\d+", scheduler):
        refuse(f"--scheduler {scheduler}: tcp://HOST:PORT")
    if seed < 0:
        refuse(f"--seed {seed}: 0 or more")
    budget_s = None
    if budget is not None:
        try:
            budget_s = parse_budget(budget)
        except ValueError as exc:
            refuse(str(exc))
    if out.exists() and not out.is_dir():
        refuse(f"--out {out}: not a directory")
    if corpus is not None and corpus.exists() and not corpus.is_dir():
        refuse(f"--corpus {corpus}: not a directory")
    try:
        user_build(contracts)  # refused here, before any worker starts; workers reuse the compiled build
    except ContractsRefused as exc:
        refuse(str(exc))
    config = FuzzConfig(contracts=contracts, chain=chain, steps=None if budget_s else (steps or 600),
                        budget_s=budget_s, seed=seed, workers=workers or 1, scheduler=scheduler, out=out,
                        corpus=corpus)
    summary = fuzz_with_progress(config, err_console)
    if json_out:
        print(json.dumps(summary, sort_keys=True))
    else:
        print_summary(summary, console)
    if summary["failures"]:
        raise typer.Exit(1)


@app.command("study")
def study_cmd(
    file: Annotated[Path, typer.Argument(help="A study YAML file (docs/studies.md).")],
    paths: Annotated[Optional[int], typer.Option("--paths", min=1, help="Override the study's number of paths.")] = None,
    workers: Annotated[Optional[int], typer.Option("--workers", min=1, help="Worker processes of a local Dask "
                                                   "cluster (default: one per core; 1: in this process).")] = None,
    scheduler: Annotated[Optional[str], typer.Option("--scheduler", help="Run on an existing Dask cluster: "
                                                     "tcp://HOST:PORT of its scheduler.")] = None,
    backend: Annotated[str, typer.Option("--backend", "-b", help="revm (default), embedded or anvil.")] = "revm",
    report: Annotated[Optional[Path], typer.Option("--report", help="Write report.json, summary.md and plots here.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as one JSON object.")] = False,
) -> None:
    """Run a Monte Carlo study on the real contracts; exit 2 when the file is invalid, 130 when
    interrupted (the report then covers the paths done, marked partial)."""
    import json

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from .study import StudyError, load_study, run_study
    from .study.report import summary_md, sweep_summary_md

    if workers is not None and scheduler is not None:
        raise typer.BadParameter("--workers starts a local cluster, --scheduler uses an existing one: give one",
                                 param_hint="--workers/--scheduler")
    if backend not in ("revm", "embedded", "anvil"):
        raise typer.BadParameter(f"unknown backend {backend!r}: revm, embedded or anvil", param_hint="--backend")
    try:
        study = load_study(file)
    except StudyError as exc:
        for problem in exc.problems:
            err_console.print(problem, markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    from .study.spec import sweep_cells

    cells = len(sweep_cells(study))
    total = (paths or study.paths) * cells
    # stdout and stderr stay the real ones (rich would route them through the bar): a local
    # cluster's workers are forked from this process, and would inherit that routing and its lock
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("paths, eta"),
                  TimeRemainingColumn(), console=err_console, transient=True, redirect_stdout=False,
                  redirect_stderr=False) as progress:
        task = progress.add_task(study.name, total=total)
        interrupted = _InterruptLatch()

        def on_result(result: dict) -> None:
            progress.advance(task)
            interrupted.raise_if_set()

        try:
            with interrupted:
                run = run_study(study, file.parent, paths=paths or study.paths, backend=backend, workers=workers,
                                scheduler=scheduler, report_dir=report, on_result=on_result)
        except AlpsimError as exc:  # e.g. a setting the contracts refuse: the contract's own error
            err_console.print(f"study failed: {exc}", markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None

    if json_out:
        print(json.dumps(run.report, sort_keys=True))
    else:
        text = sweep_summary_md(run.report) if study.sweep else summary_md(run.report)
        console.print(text, markup=False, highlight=False, soft_wrap=True)
        for path in run.written:
            console.print(f"written: {path}", markup=False, soft_wrap=True)
    if run.partial:
        done = sum(c["report"]["paths_done"] for c in run.report["cells"]) if study.sweep else run.report["paths_done"]
        err_console.print(f"interrupted after {done} of {total} paths: partial report")
        raise typer.Exit(130)


class _InterruptLatch:
    """Within: Ctrl-C raises KeyboardInterrupt as usual and is also remembered, so that one
    swallowed where Python ignores exceptions (an object's `__del__` running at that moment)
    still stops the study at the next path's result."""

    def __init__(self) -> None:
        self.pressed = False

    def _on_sigint(self, signum: int, frame: object) -> None:
        self.pressed = True
        raise KeyboardInterrupt

    def raise_if_set(self) -> None:
        if self.pressed:
            raise KeyboardInterrupt

    def __enter__(self) -> "_InterruptLatch":
        self._saved = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def __exit__(self, *exc: object) -> None:
        signal.signal(signal.SIGINT, self._saved)


def _duration(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _print_run(run) -> None:  # noqa: ANN001
    report = run.report
    table = Table(title=f"{report['scenario']} ({report['chain']})")
    for col in ("position", "status", "pair", "side", "lev", "entry", "exit", "pnl", "payout"):
        table.add_column(col, justify="right")
    for pid, p in report["positions"].items():
        cell = lambda v, d=2: "-" if v is None else f"{v:,.{d}f}"  # noqa: E731
        status = p["status"] + (f" ({p['reject_reason']})" if p["reject_reason"] else "")
        table.add_row(pid, status, p["pair"], p["side"], f"{p['leverage']}x", cell(p["entry_price"]),
                      cell(p["exit_price"]), cell(p["pnl_usd"]), cell(p["payout_usd"]))
    console.print(table)
    pool = report["pool"]
    if pool is not None:
        console.print(f"pool NAV {pool['nav_usd']:,.2f} USD, ALP price {pool['alp_price']:.6f}")
    for e in report["expectations"]:
        mark = "[green]pass[/green]" if e["passed"] else "[red]FAIL[/red]"
        console.print(f"  step {e['step']}: {e['subject']} = {e['actual']} (expected {e['expected']}) {mark}")


@app.command("devnet")
def devnet_cmd(
    chain: ChainOpt = "bnb",
    port: Annotated[Optional[int], typer.Option("--port", help="Port on 127.0.0.1 (default: a free one).")] = None,
    prices: Annotated[Optional[Path], typer.Option("--prices", help="JSON list of {pair: price}, one per tick.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the price path.")] = 0,
    interval: Annotated[float, typer.Option("--interval", help="Seconds between price moves (the keeper also "
                                                   "runs a round as soon as a block brings requests).")] = 1.0,
    out: Annotated[Optional[Path], typer.Option("--out", help="Deployments file (default deployments/<chain>.json).")] = None,
    fork_url: Annotated[Optional[str], typer.Option("--fork-url", help="Fork this chain; use its real collateral.")] = None,
    block_time: Annotated[Optional[float], typer.Option(
        "--block-time", help="Seconds between blocks (default: the profile's, as the chain: 0.75 BNB Chain, "
                             "0.25 Arbitrum); 0 mines a block per transaction.")] = None,
    ui: Annotated[bool, typer.Option("--ui", help="Also serve the one-click trading page on 127.0.0.1.")] = False,
    ui_port: Annotated[Optional[int], typer.Option("--ui-port", help="Port of the trading page (default: a free "
                                                   "one; implies --ui).")] = None,
) -> None:
    """Start anvil with the profile, deploy, fund the dev accounts, run the keeper (and with
    --ui the trading page); Ctrl-C stops all."""
    from .client import Alpsim
    from .deployment import default_path, deploy_system
    from .devnet import AnvilDevnet
    from .devnet.base import DEV_MNEMONIC
    from .profiles import get_profile
    from .service import GbmPrices, KeeperLoop, file_prices, wait_forever

    profile = get_profile(chain)
    price_source = iter(file_prices(prices)) if prices else iter(GbmPrices(seed=seed, step_s=interval))
    block_time_s = float(profile.block_time_s) if block_time is None else block_time
    devnet = AnvilDevnet(profile, port=port, fork_url=fork_url, stamp_blocks=False, block_time_s=block_time_s)
    loop = None
    page = None
    try:
        with devnet.blocks_on_demand():  # set-up in seconds on interval-mined blocks
            deployment, session = deploy_system(devnet, real_collateral=fork_url is not None)
            path = deployment.write(out or default_path(profile.name))
            sim = Alpsim(devnet, deployment, session)
            for i in range(1, 8):
                sim.fund(i, 100_000)
            sim.fund(7, 1_000_000)
            sim.deposit(7, 1_000_000)
        loop = KeeperLoop(sim, price_source, interval, log=_log_line)
        loop.tick()
        loop.start()
        rows = [("RPC URL", devnet.rpc_url), ("deployments file", str(path))]
        rows += [(role, entry.address) for role, entry in deployment.contracts.items()]
        rows += [_basket_row(index, entry) for index, entry in enumerate(deployment.basket)]
        for i, account in enumerate(devnet.accounts):
            label = {0: "deployer (admin)", 7: "LP (1,000,000 deposited)", 8: "treasury", 9: "keeper"}.get(i, "trader")
            rows.append((f"account {i}: {label}", account))
        rows.append(("mnemonic", DEV_MNEMONIC))
        if ui or ui_port is not None:
            from .ui.server import UiServer

            page = UiServer(devnet.rpc_url, path, ui_port or 0).start()
            rows.append(("trading page", page.url))
        _print_banner(f"alpsim devnet: {profile.display_name}, chain id {devnet.chain_id}", rows)
        if page is not None:
            console.print(f"trading page on {page.url}", soft_wrap=True)
        console.print(f"devnet ready on {devnet.rpc_url} (Ctrl-C stops it)", soft_wrap=True)
        wait_forever()
    except KeyboardInterrupt:
        console.print("stopping")
    finally:
        if page is not None:
            page.stop()
        if loop is not None:
            loop.stop()
        devnet.close()


@app.command("ui")
def ui_cmd(
    rpc: Annotated[str, typer.Option("--rpc", help="The node's URL (the browser talks to it directly).")],
    deployment: Annotated[Path, typer.Option("--deployment", help="The system's deployments file.")],
    ui_port: Annotated[int, typer.Option("--ui-port", help="Port on 127.0.0.1 (0: a free one).")] = 0,
) -> None:
    """Serve the one-click trading page for a system deployed on any node (Ctrl-C stops it)."""
    from .service import wait_forever
    from .ui.server import UiServer

    page = UiServer(rpc, deployment, ui_port).start()
    console.print(f"trading page on {page.url} for {rpc} (Ctrl-C stops it)", soft_wrap=True)
    try:
        wait_forever()
    except KeyboardInterrupt:
        console.print("stopping")
    finally:
        page.stop()


def _basket_row(index: int, entry) -> tuple[str, str]:  # noqa: ANN001
    """A basket asset's banner row: its token, decimals, price id and target weight."""
    label = f"basket {entry.symbol}" + (" (payout)" if index == 0 else "")
    return label, (f"{entry.address}, {entry.decimals} decimals, price id {entry.price_id}, "
                   f"target {entry.target_bps} bp ({entry.target_bps / 100:.2f}%)")


def _log_line(message: str) -> None:
    console.print(message, markup=False, highlight=False, soft_wrap=True)


def _print_banner(title: str, rows: list[tuple[str, str]]) -> None:
    """A table on a terminal; whole `key: value` lines when stdout is a file or a pipe (a
    table there would cut addresses and paths to the console's width)."""
    if console.is_terminal:
        table = Table(title=title)
        table.add_column("", no_wrap=True)
        table.add_column("address / value", overflow="fold")  # folded, not cut, on a narrow terminal
        for key, value in rows:
            table.add_row(key, value)
        console.print(table)
        return
    _log_line(title)
    for key, value in rows:
        _log_line(f"{key}: {value}")


@app.command("keeper")
def keeper_cmd(
    rpc: Annotated[str, typer.Option("--rpc", help="The node's URL.")],
    deployment: Annotated[Path, typer.Option("--deployment", help="The system's deployments file.")],
    prices: Annotated[Optional[Path], typer.Option("--prices", help="JSON list of {pair: price}, one per tick.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the price path.")] = 0,
    interval: Annotated[float, typer.Option("--interval", help="Seconds between price moves (and between ticks "
                                                   "with --ticks).")] = 1.0,
    ticks: Annotated[Optional[int], typer.Option("--ticks", help="Run this many rounds, one per interval, and stop "
                                                 "(default: follow the chain until Ctrl-C).")] = None,
) -> None:
    """Run the keeper alone against any node: prices, triggers, pending requests."""
    import time

    from .service import GbmPrices, KeeperLoop, connect_keeper, file_prices

    keeper = connect_keeper(rpc, deployment)
    price_source = iter(file_prices(prices)) if prices else iter(GbmPrices(seed=seed, step_s=interval))
    loop = KeeperLoop(keeper, price_source, interval, log=_log_line)
    keeper.sync()
    console.print(f"keeper {keeper.address} on {rpc} (chain id {keeper.deployment.chain_id})", soft_wrap=True)
    try:
        if ticks is None:
            loop.run()
        while ticks is not None and loop.ticks < ticks:
            loop.tick()
            if loop.ticks < ticks:
                time.sleep(interval)
    except KeyboardInterrupt:
        console.print("stopping")
    console.print(f"keeper: {loop.ticks} ticks, {loop.executed} requests executed, {loop.rejected} rejected")


@app.command("bench")
def bench_cmd(positions: Annotated[int, typer.Option("--positions", min=0, help="Positions open for the loaded run "
                                                                                "(0: gas on a fresh devnet only).")] = 1000,
              round_trips: Annotated[int, typer.Option("--round-trips", help="Round trips of the throughput workload.")] = 1000,
              traders: Annotated[int, typer.Option("--traders", help="Traders of the throughput workload.")] = 200,
              backend: Annotated[Optional[list[str]], typer.Option(
                  "--backend", "-b", help="Throughput on this backend (repeatable; default embedded, revm and anvil). "
                                          "Gas is always measured on embedded, the exact one.")] = None,
              out: Annotated[Optional[Path], typer.Option("--out", help="The JSON report (default build/bench.json).")] = None,
              study_paths: Annotated[int, typer.Option("--study-paths", min=0, help="Paths of the reference study "
                                                       "(6 h each) timed on 1 and 2 workers (0: skip).")] = 100,
              study_rounds: Annotated[int, typer.Option("--study-rounds", min=1, help="Times the reference study "
                                                        "runs on each worker count, in turn.")] = 2,
              chain: Annotated[Optional[list[str]], typer.Option(
                  "--chain", "-c", help="Gas on this chain profile (repeatable; default bnb and arbitrum).")] = None,
              ) -> None:
    """Gas per operation, fresh and with many positions open, and round-trip throughput (fast
    and naive paths, on embedded, revm and anvil); writes build/bench.json."""
    from .bench import GAS_CHAINS, THROUGHPUT_BACKENDS, refused_choice, run_bench

    backends, chains = tuple(backend or THROUGHPUT_BACKENDS), tuple(chain or GAS_CHAINS)
    refused = refused_choice(backends, chains)
    if refused:
        raise typer.BadParameter(refused[1], param_hint=refused[0])
    run_bench(console, positions, round_trips=round_trips, traders=traders, backends=backends, out=out,
              study_paths=study_paths, study_rounds=study_rounds, chains=chains)


@app.command("economics")
def economics_cmd(
    chain: Annotated[Optional[list[str]], typer.Option(
        "--chain", "-c", help="bnb or arbitrum (repeatable, or both; default both, side by side).")] = None,
    opens_per_day: Annotated[int, typer.Option("--opens-per-day", help="Opens a day for the keeper's day.")] = 1000,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of the tables.")] = False,
) -> None:
    """The keeper's books: gas of each keeper operation measured on the embedded EVM (exact),
    its USD cost at the median and the tail gas price, what it earns, and the keeper's day."""
    import json

    from .economics import CHAINS, print_books, progress_line, refused_input, run_economics, to_json

    chains = tuple(c for given in (chain or ["both"]) for c in (CHAINS if given == "both" else (given,)))
    refused = refused_input(chains, opens_per_day)
    if refused:
        raise typer.BadParameter(refused[1], param_hint=refused[0])
    result = run_economics(chains, opens_per_day, progress=progress_line())
    if as_json:
        print(json.dumps(to_json(result), indent=1))
    else:
        print_books(console, result)


@app.command("mev")
def mev_cmd(
    chain: ChainOpt = "bnb",
    orders: Annotated[int, typer.Option("--orders", help="Orders of the seeded flow (each played plain and hidden "
                                                         "against every attack).")] = 12,
    sizes: Annotated[str, typer.Option("--sizes", help="Comma list of order sizes, notional USD "
                                                       "(default 10000,250000,1000000).")] = "10000,250000,1000000",
    sample: Annotated[int, typer.Option("--sample", help="Hidden orders of a crowd played to measure what a hidden "
                                                         "request still shows and what the keeper could take.")] = 100,
    seed: Annotated[int, typer.Option("--seed", min=0, help="The order flows' seed.")] = 29,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full result as one JSON object.")] = False,
    report: Annotated[Optional[Path], typer.Option("--report", help="Write mev.json and mev.md in this directory.")]
    = None,
) -> None:
    """A searcher on anvil's public mempool against the same order flow sent plain and hidden:
    front-running as a trader and as a just-in-time LP, and position hunting; its profit per
    1,000 orders and the victims' extra cost in bp, per size and pair depth. Then what a hidden
    request still shows an outsider, and what the keeper (who sees every order) could take
    within the rules (docs/mev.md)."""
    import json

    from .economics import progress_line
    from .errors import ConfigError
    from .mev.keeper_adversary import MAX_ORDERS as MAX_SAMPLE, measure_keeper_adversary, print_keeper_adversary
    from .mev.leakage import measure_leakage, print_leakage
    from .mev.report import print_table, write_report
    from .mev.run import CHAINS, MAX_ORDERS, parse_sizes, run_mev

    if chain not in CHAINS:
        raise typer.BadParameter(f"unknown: {chain} (known: {', '.join(CHAINS)})", param_hint="--chain")
    if not 1 <= orders <= MAX_ORDERS:
        raise typer.BadParameter(f"must be 1 to {MAX_ORDERS}, got {orders}", param_hint="--orders")
    try:
        size_list = parse_sizes(sizes)
    except ConfigError as exc:
        raise typer.BadParameter(str(exc), param_hint="--sizes") from None
    if not 2 <= sample <= MAX_SAMPLE:
        raise typer.BadParameter(f"must be 2 to {MAX_SAMPLE}, got {sample}", param_hint="--sample")
    if report is not None and report.exists() and not report.is_dir():
        raise typer.BadParameter(f"{report} is a file, not a directory", param_hint="--report")
    say = progress_line()
    result = run_mev(chain, orders, size_list, seed, log=say)
    say(f"what a hidden request shows: {sample} hidden orders on an interval-mined anvil")
    result["leakage"] = measure_leakage(chain, sample, seed)
    say(f"the keeper as the adversary: {sample} orders on the embedded EVM")
    result["keeper"] = measure_keeper_adversary(chain, sample, seed)
    if report is not None:
        for path in write_report(result, report):
            err_console.print(f"wrote {path}", markup=False, highlight=False)
    if as_json:
        print(json.dumps(result, indent=1))
    else:
        print_table(console, result)
        print_leakage(console, result["leakage"])
        print_keeper_adversary(console, result["keeper"])


@app.command("demo")
def demo_cmd() -> None:
    """Deploy both chain profiles on the embedded devnet and run the showcase."""
    from .demo import run_demo

    run_demo(console)


def main() -> None:
    try:
        app()
    except AlpsimError as exc:
        err_console.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
