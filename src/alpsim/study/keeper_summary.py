"""The keeper's books in a study's summary: the markdown section, the sweep's metrics and table,
and the profit-per-path histogram (by push mode when a sweep varies it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def _usd(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:,.2f}" if abs(x) >= 1 else f"{x:.4g}"


def _share(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


def push_label(push: dict[str, Any]) -> str:
    if push["mode"] == "on_change":
        return f"on_change ({push['push_change'] * 100:g}%)"
    if push["mode"] == "seconds":
        return f"every {push['push_every_s']} s"
    return "every_block"


def keeper_md(k: dict[str, Any] | None) -> list[str]:
    """The section "The keeper's books" of a study's summary.md (and the terminal summary)."""
    if not k or "operations_per_path" not in k:
        return []
    ops = k["operations_per_path"]
    g = k["gas_price"]
    price = f"{g['gwei']:g} gwei on every path" if g["kind"] == "fixed" else \
        f"drawn per path, log-normal with median {g['median_gwei']:g} and p99 {g['p99_gwei']:g} gwei ({g['from']})"
    lines = ["## The keeper's books", "",
             f"Pushes: {push_label(k['push'])}; gas price {price}; native coin {k['native_usd']:,.2f} USD"
             + ("" if k["l1_data"] is None else f"; L1 blob base fee median {k['l1_data']['blob_base_fee_median_gwei']:g} "
                                                 "gwei") + ".", "",
             f"- per path: {ops['price_pushes']:g} price pushes sent ({ops['price_pushes_charged']:,.6g} charged"
             + (f": {k['blocks_per_step']:g} blocks a step" if k["push"]["mode"] == "every_block" else "") + "), "
             f"{ops['opens']:g} opens, {ops['reject_opens'] + ops['rejects_in_batch']:g} rejects, "
             f"{ops['close_items']:g} closes, {ops['take_profits']:g} take-profits, {ops['stop_losses']:g} stop-losses, "
             f"{ops['liquidations']:g} liquidations",
             "- open batches (size: transactions, all paths): "
             + (", ".join(f"{n}: {c}" for n, c in k["open_batches_all_paths"].items()) or "none"),
             f"- bad debt per path: mean {_usd(k['bad_debt_per_path_usd']['mean'])} USD, max "
             f"{_usd(k['bad_debt_per_path_usd']['max'])} USD; paths with bad debt {_share(k['paths_with_bad_debt_share'])}"]
    if k.get("books") == "not measured":
        return lines + ["- gas: not measured (the books need the exact EVM's figures)", ""]
    p = k["profit_per_path_usd"]
    per = k["per_1000_orders_usd"] or {}
    lines += [f"- keeper profit per path (USD): mean {_usd(p['mean'])}, median {_usd(p['p50'])}, p5 {_usd(p['p5'])}, "
              f"p95 {_usd(p['p95'])}; paths at a loss {_share(k['loss_share'])}",
              f"- revenue {_usd(k['revenue_per_path_usd'])}, cost {_usd(k['cost_per_path_usd'])} USD a path, of which "
              f"price pushes {_share(k['push_cost_share'])}",
              f"- per 1,000 orders: revenue {_usd(per.get('revenue'))}, cost {_usd(per.get('cost'))} (pushes "
              f"{_usd(per.get('pushes'))}), profit {_usd(per.get('profit'))} USD",
              f"- orders executed at a loss (own fee < own open + end, pushes aside): "
              f"{_share(k['orders_at_loss_share'])} of {k['orders_executed']:,}"]
    m = k["at_median_gas"]
    lines += [f"- at the median gas price ({m['gwei']:g} gwei) on every path: profit {_usd(m['profit_per_path_usd'])} USD a "
              f"path; pushes {_usd(m['push_cost_per_hour_usd'])} USD an hour, an order's fee less its own cost "
              f"{_usd(m['margin_per_order_usd'])} USD: break-even at "
              + ("never" if m["break_even_orders_per_hour"] is None else f"{m['break_even_orders_per_hour']:,.0f}")
              + " orders an hour", ""]
    return lines


def keeper_metrics(k: dict[str, Any] | None) -> dict[str, float | None]:
    """A cell's keeper figures for the sweep's table and heatmaps."""
    if not k or "operations_per_path" not in k:
        return {}
    out = {"price pushes per path": k["operations_per_path"]["price_pushes_charged"],
           "bad debt per path (USD), mean": k["bad_debt_per_path_usd"]["mean"]}
    if "profit_per_path_usd" in k:
        out["keeper profit per path (USD), mean"] = k["profit_per_path_usd"]["mean"]
        out["keeper profit per 1,000 orders (USD)"] = (k["per_1000_orders_usd"] or {}).get("profit")
        out["keeper paths at a loss"] = k["loss_share"]
        out["keeper break-even orders/hour (median gas)"] = k["at_median_gas"]["break_even_orders_per_hour"]
    return out


def keeper_sweep_md(report: dict[str, Any]) -> list[str]:
    """The sweep's keeper table: one row per cell."""
    cells = [row for row in report["cells"] if "profit_per_path_usd" in (row["report"].get("keeper") or {})]
    if not cells:
        return []
    keys = [key for key in report["sweep"] if key not in ("chain", "keeper.push")]
    lines = ["", "## The keeper's books by cell", "",
             "| " + " | ".join(keys) + (" | " if keys else "") + "chain | push | orders/path | pushes/path (charged) | revenue/path | cost/path "
             "| profit/path mean [p5, p95] | paths at a loss | profit per 1,000 orders | pushes' share of cost "
             "| bad debt/path mean (max) | profit/path at median gas | break-even orders/hour (median gas) |",
             "|" + "---|" * (len(keys) + 2) + "---:|" * 11]
    for row in cells:
        r, k = row["report"], row["report"]["keeper"]
        p = k["profit_per_path_usd"]
        lines.append("| " + "".join(f"{row['values'][key]} | " for key in keys) + f"{r['chain']} | "
                     f"{push_label(k['push'])} | {k['orders_per_path']:g} | {k['operations_per_path']['price_pushes_charged']:,.0f} | "
                     f"{_usd(k['revenue_per_path_usd'])} | {_usd(k['cost_per_path_usd'])} | {_usd(p['mean'])} "
                     f"[{_usd(p['p5'])}, {_usd(p['p95'])}] | {_share(k['loss_share'])} | "
                     f"{_usd((k['per_1000_orders_usd'] or {}).get('profit'))} | {_share(k['push_cost_share'])} | "
                     f"{_usd(k['bad_debt_per_path_usd']['mean'])} ({_usd(k['bad_debt_per_path_usd']['max'])}) | "
                     f"{_usd(k['at_median_gas']['profit_per_path_usd'])} | "
                     + ("never" if k["at_median_gas"]["break_even_orders_per_hour"] is None
                        else f"{k['at_median_gas']['break_even_orders_per_hour']:,.0f}") + " |")
    return lines


def keeper_plots(reports: list[dict[str, Any]], out_dir: Path) -> list[Path]:
    """keeper_profit.png: the keeper's profit per path, one histogram per push mode (a sweep's
    cells pooled by chain and mode)."""
    groups: dict[str, list[float]] = {}
    for r in reports:
        k = r.get("keeper") or {}
        if "profits_usd" in k:
            groups.setdefault(f"{r['chain']}, {push_label(k['push'])}", []).extend(k["profits_usd"])
    if not groups:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    everything = np.concatenate([np.array(v, dtype=float) for v in groups.values()])
    bins = np.linspace(everything.min(), everything.max() + 1e-9, min(40, max(6, everything.size // 3)))
    for label, values in sorted(groups.items()):
        ax.hist(values, bins=bins, alpha=0.5, label=label)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set(xlabel="keeper profit per path (USD)", ylabel="paths", title=f"{reports[0]['study']}: the keeper's books")
    ax.legend(fontsize="small")
    fig.tight_layout()
    path = out_dir / "keeper_profit.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]
