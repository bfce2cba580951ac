"""`make demo`: on the embedded devnet, for both chain profiles, what 1001x does to a position
and to the pool behind it: quotes across leverages, the shipped showcase scenarios (reports
and plots under build/demo/), winners and losers, pool NAV, execution fees per chain."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from rich.console import Console
from rich.table import Table

from .compiler import compile_contracts
from .paths import find_project
from .profiles import load_profiles
from .quote import quote_order
from .scenario import ScenarioRunner, load_scenario, write_report

LEVERAGES = (10, 100, 500, 1001)


def run_demo(console: Console | None = None, out: Path | None = None) -> dict:
    console = console or Console()
    project = find_project()
    out = out or project.build / "demo"
    build = compile_contracts()
    console.print(f"contracts: {len(build.artifacts)} compiled with solc {build.solc_version}"
                  f" ({'cache hit' if build.cached else 'fresh build'})")
    profiles = load_profiles()

    # 1. what leverage does to a 100 USD BTC long, per chain
    table = Table(title="100 USD long BTC at 60,000: liquidation distance and round-trip cost")
    table.add_column("leverage", justify="right")
    for p in profiles.values():
        table.add_column(f"{p.display_name}: liquidation move", justify="right")
        table.add_column(f"{p.display_name}: round trip", justify="right")
    for leverage in LEVERAGES:
        cells = [f"{leverage}x"]
        for p in profiles.values():
            q = quote_order(p, "BTC/USD", "long", "100", leverage, "60000")
            cells += [f"{q['liquidation_move_pct']:.3f}%", f"{q['round_trip_cost_usd']:.2f} USD"]
        table.add_row(*cells)
    console.print(table)

    # 2. the showcase scenarios
    results = {}
    summary = Table(title=f"showcase scenarios (reports and plots in {out})")
    for col in ("scenario", "chain", "won", "lost", "pool NAV", "ALP price", "checks"):
        summary.add_column(col, justify="right" if col not in ("scenario", "chain") else "left")
    for path in sorted((project.root / "scenarios").glob("*.yaml")):
        scenario = load_scenario(path)
        run = ScenarioRunner(scenario, build=build).run()
        write_report(run, out / path.stem)
        results[path.stem] = run.report
        won, lost = [], []
        alp_price = run.report["pool"]["alp_price"]
        open_equity: dict[str, Decimal] = {}
        for pid, pos in run.report["positions"].items():
            if pos["status"] == "open":
                who = run.positions[pid].who
                open_equity[who] = open_equity.get(who, Decimal(0)) + pos["margin_usd"] + pos["pnl_usd"]
        payout = profiles[scenario.chain].collateral.symbol
        for name in scenario.funds:
            # what each account has now (collateral, ALP at its price, open positions' margin
            # and pnl) against what it was funded with; an account funded with other basket
            # assets (BNB, BTC...) is left to its report, where they are priced
            if set(scenario.funds_of(name)) - {None, payout}:
                continue
            change = (run.report["accounts"][name] + run.alp_holdings.get(name, 0) * alp_price
                      + open_equity.get(name, 0) - scenario.stable_funds(name, payout))
            if abs(change) >= Decimal("0.01"):
                (won if change > 0 else lost).append(f"{name} {change:+,.2f}")
        passed = sum(e["passed"] for e in run.report["expectations"])
        pool = run.report["pool"]
        summary.add_row(path.stem, scenario.chain, "\n".join(won) or "-", "\n".join(lost) or "-",
                        f"{pool['nav_usd']:,.0f}", f"{pool['alp_price']:.5f}",
                        f"{passed}/{len(run.report['expectations'])}" + ("" if not run.error else " (error)"))
    console.print(summary)

    # 3. execution fees per chain, from the twin scenarios
    fees = Table(title="execution fees: the same ten round trips of 50 USD")
    for col in ("chain", "fee per trade", "fees paid", "scalper ends with"):
        fees.add_column(col, justify="right")
    for chain in ("bnb", "arbitrum"):
        report = results.get(f"execution_fee_{chain}")
        if report is None:
            continue
        per_trade = {p["execution_fee_usd"] for p in report["positions"].values()}
        paid = sum((p["execution_fee_usd"] for p in report["positions"].values()), Decimal(0))
        fees.add_row(profiles[chain].display_name, ", ".join(f"{f:.2f}" for f in per_trade) + " USD",
                     f"{paid:.2f} USD", f"{report['accounts']['scalper']:,.2f} USD of 500")
    console.print(fees)

    # 4. how long 1001x survives: a small run of the shipped survival study
    results["survival"] = _survival(console, project.root / "studies" / "survival_1001x.yaml", build, out)
    return results


DEMO_PATHS = 40
DEMO_HORIZON_S = 6 * 3600


def _survival(console: Console, path: Path, build, out: Path) -> dict:  # noqa: ANN001
    """The shipped survival study, cut to DEMO_PATHS paths of DEMO_HORIZON_S (the keeper still
    looks every minute): the median time to liquidation per leverage."""
    from .study import load_study, run_study
    from .study.report import human_s
    from .study.spec import Horizon

    full = load_study(path)
    study = full.model_copy(update={"paths": DEMO_PATHS,
                                    "horizon": Horizon(duration=DEMO_HORIZON_S, step=full.horizon.step)})
    console.print(f"study: {study.name}, {DEMO_PATHS} paths of {human_s(DEMO_HORIZON_S)} on revm "
                  f"(the full study: alpsim study {path.relative_to(find_project().root)})")
    report = run_study(study, path.parent, build=build, report_dir=out / "survival").report
    table = Table(title=f"how long a BTC long survives at 60% annual volatility, the keeper looking every "
                        f"{human_s(study.horizon.step) if study.horizon.step >= 60 else str(study.horizon.step) + ' s'}")
    for col in ("position", f"liquidated within {human_s(DEMO_HORIZON_S)}", "median time to liquidation",
                "10% liquidated by", "90% liquidated by"):
        table.add_column(col, justify="right")
    for name, g in report["cohort"].items():
        q = g["survival_quantiles_s"]  # read off the survival curve
        table.add_row(name, f"{g['liquidation_probability']:.0%}",
                      *(human_s(q[k]) if q[k] is not None else f"over {human_s(DEMO_HORIZON_S)}"
                        for k in ("p50", "p10", "p90")))
    console.print(table)
    return report
