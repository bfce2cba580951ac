"""`make demo`: deploys both chain profiles on the embedded devnet and runs the showcase."""

from __future__ import annotations

from decimal import Decimal

from rich.console import Console
from rich.table import Table

from .client import Alpsim
from .compiler import compile_contracts
from .profiles import load_profiles

COOLDOWN_S = 48 * 3600


def run_demo(console: Console | None = None) -> list[dict]:
    console = console or Console()
    build = compile_contracts()
    console.print(f"contracts: {len(build.artifacts)} compiled with solc {build.solc_version}"
                  f" ({'cache hit' if build.cached else 'fresh build'})")
    rows = []
    for profile in load_profiles().values():
        with Alpsim.launch(profile, build=build) as sim:
            sim.fund(1, 1_000_000)
            sim.fund(2, 250_000)
            first = sim.deposit(1, 1_000_000)
            second = sim.deposit(2, 250_000)
            sim.devnet.advance_time(COOLDOWN_S)
            out = sim.withdraw(2, "all")
            pool = sim.pool()
            rows.append({
                "chain": profile.display_name,
                "chain_id": sim.devnet.chain_id,
                "collateral": f"{profile.collateral.symbol} ({sim.decimals} dec)",
                "alp_lp1": Decimal(first.alp_out_wad).scaleb(-18),
                "alp_lp2": Decimal(second.alp_out_wad).scaleb(-18),
                "lp2_back": sim.collateral_balance(2),
                "nav": pool.nav_usd,
                "alp_price": pool.alp_price,
                "gas_deposit": first.gas_used,
                "gas_withdraw": out.gas_used,
            })
    table = Table(title="ALP pool: LP1 deposits 1,000,000; LP2 deposits 250,000, leaves after 48 h")
    table.add_column("")
    for r in rows:
        table.add_column(r["chain"], justify="right")
    metrics = [
        ("chain id", lambda r: str(r["chain_id"])),
        ("collateral", lambda r: r["collateral"]),
        ("ALP minted to LP1", lambda r: f"{r['alp_lp1']:,.4f}"),
        ("ALP minted to LP2", lambda r: f"{r['alp_lp2']:,.4f}"),
        ("LP2 gets back", lambda r: f"{r['lp2_back']:,.4f}"),
        ("pool NAV (USD)", lambda r: f"{r['nav']:,.4f}"),
        ("ALP price (USD)", lambda r: f"{r['alp_price']:.8f}"),
        ("gas: deposit", lambda r: f"{r['gas_deposit']:,}"),
        ("gas: withdraw", lambda r: f"{r['gas_withdraw']:,}"),
    ]
    for label, cell in metrics:
        table.add_row(label, *(cell(r) for r in rows))
    console.print(table)
    return rows
