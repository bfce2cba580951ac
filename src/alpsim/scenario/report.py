"""The report of a scenario run: report.json, a Markdown summary and PNG plots."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from ..quote import dumps_exact
from .basket import payout_symbol
from .runner import ScenarioRun


def series(run: ScenarioRun) -> list[dict[str, Any]]:
    return [{"t": s.t, "prices": s.prices, "nav_usd": s.nav, "alp_price": s.alp_price, "equity": s.equity,
             "asset_prices": s.asset_prices, "holdings": s.holdings, "weights_bps": s.weights_bps}
            for s in run.samples]


def touched_assets(run: ScenarioRun) -> list[str]:
    """The basket assets other than the payout stablecoin that the scenario prices, funds,
    deposits or withdraws (by symbol); empty: no basket plot."""
    basket = run.sim.deployment.basket
    if not basket:
        return []
    others = [e.symbol for e in basket[1:]]
    named: set[str] = set()
    for step in run.scenario.steps:
        if step.kind == "prices":
            named |= set(step.body)
        elif step.kind in ("deposit", "withdraw") and step.body.asset:
            named.add(step.body.asset)
    for name in run.scenario.accounts:
        named |= {a for a in run.scenario.funds_of(name) if a}
    return [symbol for symbol in others if symbol in named]


def write_report(run: ScenarioRun, folder: str | Path) -> list[Path]:
    """Writes report.json (the report plus its time series), summary.md and the plots."""
    report = run.report
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = [folder / "report.json", folder / "summary.md"]
    (folder / "report.json").write_text(dumps_exact({**report, "series": series(run)}) + "\n")
    (folder / "summary.md").write_text(markdown_summary(run, report))
    written += plot_all(run, folder)
    return written


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, Decimal):
        return f"{value:,.{digits}f}"
    return str(value)


def markdown_summary(run: ScenarioRun, report: dict[str, Any]) -> str:
    s = run.scenario
    lines = [f"# {s.name}", "", f"Chain: **{report['chain']}**, seed {s.seed}."]
    if s.description:
        lines += ["", s.description.strip()]
    if "incomplete" in report:
        inc = report["incomplete"]
        lines += ["", f"**Incomplete run**: {inc['steps_done']} of {len(s.steps)} steps"
                  + (f"; {inc['error']}" if inc["error"] else "") + ("; interrupted" if inc["interrupted"] else "")]
    lines += ["", "## Positions", "",
              "| id | who | pair | side | leverage | status | margin | entry | liquidation | exit | pnl | fees | payout |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for pid, p in report["positions"].items():
        fees = sum((p[k] or Decimal(0)) for k in ("open_fee_usd", "close_fee_usd", "execution_fee_usd",
                                                  "holding_fee_usd", "funding_fee_usd"))
        status = p["status"] + (f" ({p['reject_reason']})" if p["reject_reason"] else "")
        lines.append(f"| {pid} | {run.positions[pid].who} | {p['pair']} | {p['side']} | {p['leverage']}x | {status} | "
                     f"{_fmt(p['margin_usd'], 2)} | {_fmt(p['entry_price'])} | {_fmt(p['liquidation_price'])} | "
                     f"{_fmt(p['exit_price'])} | {_fmt(p['pnl_usd'], 2)} | {_fmt(fees, 2)} | {_fmt(p['payout_usd'], 2)} |")
    pool = report["pool"] or {"nav_usd": None, "alp_price": None, "alp_supply": None, "reserve_usd": None}
    lines += ["", "## Pool", "", f"NAV {_fmt(pool['nav_usd'], 2)} USD, ALP price {_fmt(pool['alp_price'], 6)} USD, "
              f"ALP supply {_fmt(pool['alp_supply'], 2)}, reserve {_fmt(pool['reserve_usd'], 2)} USD."]
    if pool.get("holdings"):
        targets = {e.symbol: e.target_bps for e in run.sim.deployment.basket}
        lines += ["", "| asset | holdings (tokens) | weight (bp) | target (bp) |", "|---|---|---|---|"]
        for symbol, held in pool["holdings"].items():
            lines.append(f"| {symbol} | {_fmt(held, 6)} | {_fmt(pool['weights'][symbol], 2)} | {targets.get(symbol, '-')} |")
    if report.get("lp_actions"):
        lines += ["", "## LP actions", "", "| step | id | who | kind | asset | amount | ALP | fee (USD) | fee (bp) |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for a in report["lp_actions"]:
            lines.append(f"| {a['step']} | {a['id'] or '-'} | {a['who']} | {a['kind']} | {a['asset']} | "
                         f"{_fmt(a['amount'], 6)} | {_fmt(a['alp'], 4)} | {_fmt(a['fee_usd'], 2)} | {_fmt(a['fee_bps'], 2)} |")
    payout = payout_symbol(run.sim)
    lines += ["", "## Accounts", "", "| account | collateral | change |", "|---|---|---|"]
    for name, balance in (report["accounts"] or {}).items():
        lines.append(f"| {name} | {_fmt(balance, 2)} | {_fmt(balance - s.stable_funds(name, payout), 2)} |")
    lines += ["", "## Expectations", ""]
    if not report["expectations"]:
        lines.append("None.")
    for e in report["expectations"]:
        mark = "pass" if e["passed"] else "**FAIL**"
        lines.append(f"- step {e['step']}: `{e['subject']}` expected {e['expected']}, got {e['actual']}: {mark}")
    lines += ["", "## Gas", ""]
    if report["gas"] is None:
        lines.append(report.get("gas_note", "Gas not measured."))
    else:
        lines += ["| operation | count | mean | min | max |", "|---|---|---|---|---|"]
        for op, g in report["gas"].items():
            lines.append(f"| {op} | {g['count']} | {g['mean']:,} | {g['min']:,} | {g['max']:,} |")
    plots = ["price.png", "pool.png", "equity.png"] + (["basket.png"] if touched_assets(run) else [])
    lines += ["", "Plots: " + ", ".join(f"`{name}`" for name in plots) + ".", ""]
    return "\n".join(lines)


def plot_all(run: ScenarioRun, folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    minutes = [s.t / 60 for s in run.samples]
    pairs = sorted({pair for s in run.samples for pair in s.prices}
                   & ({r.step.pair for r in run.positions.values()} or {pair for s in run.samples for pair in s.prices}))
    # 1. price path with each position's entry, take-profit and liquidation, and its exit
    fig, axes = plt.subplots(max(len(pairs), 1), 1, figsize=(10, 3.6 * max(len(pairs), 1)), squeeze=False)
    for ax, pair in zip(axes[:, 0], pairs):
        xs = [m for m, s in zip(minutes, run.samples) if pair in s.prices]
        ys = [float(s.prices[pair]) for s in run.samples if pair in s.prices]
        ax.plot(xs, ys, color="black", linewidth=1, label=f"{pair} price")
        for record in run.positions.values():
            if record.step.pair != pair or record.opened is None:
                continue
            p = record.opened.position
            color = "tab:green" if p.is_long else "tab:red"
            ax.axhline(float(p.entry_price), color=color, linestyle="-", linewidth=0.8, label=f"{record.id} entry")
            ax.axhline(float(p.take_profit), color=color, linestyle=":", linewidth=0.8, label=f"{record.id} take-profit")
            ax.axhline(float(p.liquidation_price), color=color, linestyle="--", linewidth=0.8,
                       label=f"{record.id} liquidation")
            if record.closed is not None:
                ax.plot([record.exit_t / 60], [float(record.closed.exit_price)], marker="x", color=color, markersize=9)
        ax.set_title(f"{pair}: price, entries, take-profits (dotted), liquidations (dashed), exits (x)")
        ax.set_xlabel("minutes")
        ax.set_ylabel("USD")
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    written.append(_save(fig, folder / "price.png"))
    plt.close(fig)
    # 2. pool NAV and ALP price
    fig, ax = plt.subplots(figsize=(10, 4))
    ax.plot(minutes, [float(s.nav) for s in run.samples], color="tab:blue", label="NAV (USD)")
    ax.set_xlabel("minutes")
    ax.set_ylabel("NAV (USD)", color="tab:blue")
    ax2 = ax.twinx()
    ax2.plot(minutes, [float(s.alp_price) for s in run.samples], color="tab:orange", label="ALP price")
    ax2.set_ylabel("ALP price (USD)", color="tab:orange")
    ax.set_title("ALP pool: NAV and ALP price")
    fig.tight_layout()
    written.append(_save(fig, folder / "pool.png"))
    plt.close(fig)
    # 3. equity of each position
    fig, ax = plt.subplots(figsize=(10, 4))
    for record in run.positions.values():
        points = [(m, float(s.equity[record.id])) for m, s in zip(minutes, run.samples) if record.id in s.equity]
        if points:
            ax.plot([p[0] for p in points], [p[1] for p in points], label=record.id, drawstyle="steps-post")
    ax.axhline(0, color="grey", linewidth=0.6)
    ax.set_title("Position equity (margin + pnl - holding - funding; payout once closed)")
    ax.set_xlabel("minutes")
    ax.set_ylabel("USD")
    if run.positions:
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    written.append(_save(fig, folder / "equity.png"))
    plt.close(fig)
    # 4. the basket's weights against their targets, when the scenario touches a non-payout asset
    if touched_assets(run):
        written.append(plot_basket(run, minutes, folder, plt))
    return written


def plot_basket(run: ScenarioRun, minutes: list[float], folder: Path, plt: Any) -> Path:
    fig, ax = plt.subplots(figsize=(10, 4))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, entry in enumerate(run.sim.deployment.basket):
        color = colors[i % len(colors)]
        points = [(m, float(s.weights_bps[entry.symbol]) / 100) for m, s in zip(minutes, run.samples)
                  if entry.symbol in s.weights_bps]
        ax.plot([p[0] for p in points], [p[1] for p in points], color=color, label=entry.symbol,
                drawstyle="steps-post")
        ax.axhline(entry.target_bps / 100, color=color, linestyle="--", linewidth=0.7)
    ax.set_title("ALP basket: weights (solid) against targets (dashed)")
    ax.set_xlabel("minutes")
    ax.set_ylabel("weight (% of the holdings' value)")
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    path = _save(fig, folder / "basket.png")
    plt.close(fig)
    return path


def _save(fig: Any, path: Path) -> Path:
    # fixed metadata: the same run writes the same bytes
    fig.savefig(path, dpi=100, metadata={"Software": None})
    return path
