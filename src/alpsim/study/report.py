"""A study's report from its paths' results: per cohort group (pair, side, leverage) the
probability of liquidation within the horizon with its standard error, the survival curve and the
times to liquidation; per group the trader's return and fees; for the pool the LP's return
distribution with VaR and CVaR at 95% and 99%, maximum drawdown and the redemption ALP price's
percentiles over time. Aggregation happens once, over results sorted by path index, so the
report is the same byte for byte whoever computed the paths."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .basket_report import SOURCE_LABELS, basket_md, basket_summary
from .keeper_report import keeper_section
from .keeper_summary import keeper_md, keeper_metrics, keeper_plots, keeper_sweep_md
from .spec import Study
from .stats import cvar as _cvar, percentiles as _pcts, rounded as _r, var as _var

FAN = (5, 25, 50, 75, 95)


def survival_quantiles(times_s: list[float], survival: list[float | None]) -> dict[str, float | None]:
    """Read off the survival curve: `pX` is the first time by which X% of the positions were
    liquidated (None: fewer than that within the horizon). Closes before then count as alive."""
    return {f"p{q}": next((t for t, alive in zip(times_s, survival) if alive is not None and alive <= 1 - q / 100),
                          None) for q in (10, 50, 90)}


def group_of(row: dict[str, Any]) -> str:
    return f"{row['pair']} {row['side']} {row['leverage']}x"


def build_report(study: Study, results: list[dict[str, Any]], *, paths_requested: int, partial: bool,
                 backend: str, keeper_gas: dict[str, dict[str, int]] | None = None) -> dict[str, Any]:
    """The report: nothing in it depends on where or in which order the paths ran. `keeper_gas`:
    the keeper's operations measured on the exact EVM (none: its books "not measured")."""
    results = sorted(results, key=lambda r: r["index"])
    step_s, steps = study.horizon.step, study.horizon.steps
    groups: dict[str, list[dict[str, Any]]] = {}
    for res in results:
        for row in res["positions"]:
            groups.setdefault(group_of(row), []).append(row)
    cohort = {}
    times_s = [k * step_s for k in range(steps + 1)]
    for name, rows in groups.items():
        opened = [r for r in rows if r["refused"] is None]
        n = len(opened)
        liq_s = np.array([r["liquidated_s"] for r in opened if r["liquidated_s"] is not None], dtype=float)
        p = liq_s.size / n if n else None
        survival = [_r(float(np.mean([r["liquidated_s"] is None or r["liquidated_s"] > t for r in opened])))
                    if n else None for t in times_s]
        quantiles = survival_quantiles(times_s, survival)
        median_s = quantiles["p50"]
        returns = np.array([r["payout"] / r["amount"] - 1 for r in opened], dtype=float)
        refused: dict[str, int] = {}
        for r in rows:
            if r["refused"] is not None:
                refused[r["refused"]] = refused.get(r["refused"], 0) + 1
        fees = {kind: _r(float(np.mean([r["fees"].get(kind, 0.0) for r in opened]))) if n else None
                for kind in FEE_KINDS}
        cohort[name] = {
            "positions": len(rows), "opened": n, "refused": dict(sorted(refused.items())),
            # the same in every path: each opens at the same state and price
            "liquidation_price": _r(opened[0]["liquidation_price"]) if n else None,
            "liquidated": int(liq_s.size),
            "liquidation_probability": _r(p),
            "standard_error": _r(float(np.sqrt(p * (1 - p) / n))) if n else None,
            "median_time_to_liquidation_s": median_s,
            "survival_quantiles_s": quantiles,
            "time_to_liquidation_s": _pcts(liq_s),
            "survival": survival,
            "trader_return": {"mean": _r(float(returns.mean())) if n else None, **_pcts(returns)},
            "mean_fees_usd": fees,
            "closed_by": _counts(r["closed_by"] for r in opened),
        }
    crowd = _crowd(results, float(study.pool.liquidity), times_s) if study.traders is not None else None
    prices = np.array([res["alp_price"] for res in results], dtype=float) if results else np.zeros((0, steps + 2))
    pool: dict[str, Any] = {"paths": len(results)}
    if len(results):
        lp = prices[:, -1] / prices[:, 0] - 1
        running_max = np.maximum.accumulate(prices, axis=1)
        drawdown = (1 - prices / running_max).max(axis=1)
        pool.update({
            "lp_return": {"mean": _r(float(lp.mean())), **_pcts(lp)},
            "lp_returns": [_r(float(x)) for x in lp],
            "var": {"95": _r(_var(lp, 0.95)), "99": _r(_var(lp, 0.99))},
            "cvar": {"95": _r(_cvar(lp, 0.95)), "99": _r(_cvar(lp, 0.99))},
            "max_drawdown": {"mean": _r(float(drawdown.mean())), **_pcts(drawdown)},
            "alp_price_fan": {f"p{q}": [_r(float(x)) for x in np.percentile(prices, q, axis=0)] for q in FAN},
            "peak_reserve_share": _pcts(np.array([res["peak_reserve_share"] for res in results], dtype=float)),
            "mean_fees_per_path_usd": {kind: _r(float(np.mean([
                sum(row["fees"].get(kind, 0.0) for row in res["positions"] + res.get("crowd", [])) for res in results])))
                for kind in FEE_KINDS},
            "lp_flows": _lp_flows(results),
            **basket_summary(study, results),
            "opens_refused": _counts(row["refused"] for res in results for row in res["positions"] + res.get("crowd", [])
                                     if row["refused"] is not None),
        })
    return {
        "study": study.name, "chain": study.chain, "seed": study.seed, "backend": backend,
        "paths_requested": paths_requested, "paths_done": len(results), "partial": partial,
        "horizon_s": study.horizon.duration, "step_s": step_s, "times_s": times_s,
        "cohort": dict(sorted(cohort.items(), key=lambda kv: (kv[0].split()[0], kv[0].split()[1],
                                                              int(kv[0].split()[2].rstrip("x"))))),
        "crowd": crowd,
        "pool": pool,
        "keeper": keeper_section(study, results, keeper_gas),
    }


FEE_KINDS = ("open", "execution", "close", "holding", "funding")
def _lp_flows(results: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The LPs' comings and goings, per path on average, and withdrawals refused by reason."""
    flows = [res["lp_flows"] for res in results if res.get("lp_flows") is not None]
    if not flows:
        return None
    out: dict[str, Any] = {f"{k}_per_path": _r(float(np.mean([f[k] for f in flows])))
                           for k in ("deposits", "deposited_usd", "withdrawals", "withdrawn_usd", "no_free_account")}
    refused: dict[str, int] = {}
    for f in flows:
        for reason, n in f["refused"].items():
            refused[reason] = refused.get(reason, 0) + n
    out["withdrawals_refused"] = dict(sorted(refused.items()))
    return out


def kaplan_meier(opened: list[dict[str, Any]], times_s: list[int]) -> dict[str, Any]:
    """Survival against liquidation by time since open, for positions their traders also close:
    a close before liquidation censors the position (Kaplan-Meier), so a short holding time does
    not read as survival. The curve at `times_s`, and where it reaches one half (None: not
    within the horizon)."""
    settled = [(r["closed_s"] - r["opened_s"], r["closed_by"] == "liquidation") for r in opened
               if r["closed_s"] is not None]
    if not settled:
        return {"survival": None, "median_time_to_liquidation_s": None}
    durations = np.array([d for d, _ in settled], dtype=float)
    liquidated = np.array([e for _, e in settled], dtype=bool)
    event_times = np.unique(durations[liquidated])
    factors = [1 - np.sum((durations == t) & liquidated) / np.sum(durations >= t) for t in event_times]
    survival_at = np.cumprod(factors) if factors else np.array([])
    curve = [_r(float(survival_at[np.searchsorted(event_times, t, side="right") - 1]))
             if event_times.size and t >= event_times[0] else 1.0 for t in times_s]
    median = next((t for t, s in zip(times_s, curve) if s <= 0.5), None)
    return {"survival": curve, "median_time_to_liquidation_s": median}


def _crowd(results: list[dict[str, Any]], liquidity_usd: float, times_s: list[int]) -> dict[str, Any]:
    """The crowd's orders by profile and by leverage: how many, refused by reason, how they
    ended, survival against liquidation, the trader's return, the fees."""
    rows = [row for res in results for row in res.get("crowd", [])]

    def summary(group: list[dict[str, Any]]) -> dict[str, Any]:
        opened = [r for r in group if r["refused"] is None and r["opened_s"] is not None]
        returns = np.array([r["payout"] / r["amount"] - 1 for r in opened if r["closed_by"] is not None], dtype=float)
        return {
            "orders": len(group), "opened": len(opened),
            "refused": _counts(r["refused"] for r in group if r["refused"] is not None),
            "closed_by": _counts(r["closed_by"] for r in opened if r["closed_by"] is not None),
            "liquidation_share": _r(sum(r["closed_by"] == "liquidation" for r in opened) / len(opened)) if opened else None,
            "time_to_liquidation_s": _pcts(np.array([r["liquidated_s"] - r["opened_s"] for r in opened
                                                     if r["liquidated_s"] is not None], dtype=float)),
            **kaplan_meier(opened, times_s),
            "trader_return": {"mean": _r(float(returns.mean())) if returns.size else None, **_pcts(returns)},
            "fees_usd": {kind: _r(float(sum(r["fees"].get(kind, 0.0) for r in group))) for kind in FEE_KINDS},
        }

    by_profile: dict[str, list] = {}
    by_leverage: dict[int, list] = {}
    for row in rows:
        by_profile.setdefault(row["label"], []).append(row)
        by_leverage.setdefault(row["leverage"], []).append(row)
    # the crowd's result per path (payouts less what its settled positions put in), per USD of pool
    pnl_share = np.array([sum(r["payout"] - r["amount"] for r in res.get("crowd", []) if r["closed_by"] is not None)
                          / liquidity_usd for res in results], dtype=float)
    return {"orders": len(rows), "orders_per_path": _r(len(rows) / len(results)) if results else None,
            "pnl_share_of_pool": {"mean": _r(float(pnl_share.mean())) if pnl_share.size else None, **_pcts(pnl_share)},
            "by_profile": {name: summary(group) for name, group in sorted(by_profile.items())},
            "by_leverage": {f"{lev}x": summary(group) for lev, group in sorted(by_leverage.items())}}


def _counts(values) -> dict[str, int]:  # noqa: ANN001
    out: dict[str, int] = {}
    for v in values:
        out[str(v)] = out.get(str(v), 0) + 1
    return dict(sorted(out.items()))


def _pct(x: float | None, fmt: str) -> str:
    return "-" if x is None else format(x, fmt)


def _beyond(seconds: float | None) -> str:
    return "beyond the horizon" if seconds is None else human_s(seconds)


def human_s(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86_400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86_400:.1f} d"


def summary_md(report: dict[str, Any]) -> str:
    lines = [f"# {report['study']}", "",
             f"{report['paths_done']:,} of {report['paths_requested']:,} paths" + (" (partial: interrupted)"
                                                                                  if report["partial"] else "")
             + f" on {report['chain']}, {human_s(report['horizon_s'])} each, a price step every "
               f"{human_s(report['step_s']) if report['step_s'] >= 60 else str(report['step_s']) + ' s'}; "
               f"seed {report['seed']}, backend {report['backend']}.", ""]
    if report["cohort"]:
        lines += ["## Cohort", "",
                  "| position | opened | P(liquidated) | s.e. | median time to liquidation | 10% liquidated by | "
                  "90% liquidated by | "
                  "median return |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for name, g in report["cohort"].items():
            q = g["survival_quantiles_s"]
            cells = [name, str(g["opened"]), _pct(g["liquidation_probability"], ".1%"), _pct(g["standard_error"], ".1%"),
                     *(_beyond(q[k]) for k in ("p50", "p10", "p90")),
                     _pct(g["trader_return"]["p50"], "+.1%")]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    crowd = report.get("crowd")
    if crowd:
        lines += ["## The crowd", "", f"{crowd['orders']:,} orders ({crowd['orders_per_path']} a path).", "",
                  "| leverage | orders | opened | refused | liquidated | median time to liquidation | median return "
                  "| fees paid (USD) |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for lev, g in crowd["by_leverage"].items():
            median = g["median_time_to_liquidation_s"]
            lines.append(f"| {lev} | {g['orders']} | {g['opened']} | {sum(g['refused'].values())} | "
                         f"{_pct(g['liquidation_share'], '.0%')} | "
                         f"{'-' if median is None else human_s(median)} | {_pct(g['trader_return']['p50'], '+.1%')} | "
                         f"{sum(v or 0 for v in g['fees_usd'].values()):,.2f} |")
        lines.append("")
    pool = report["pool"]
    if "lp_return" in pool:
        lines += ["## The pool", "",
                  f"- LP return over the horizon (redemption ALP price, before the withdrawal fee): median "
                  f"{pool['lp_return']['p50']:+.4%}, mean {pool['lp_return']['mean']:+.4%}",
                  f"- VaR 95% {pool['var']['95']:.4%}, 99% {pool['var']['99']:.4%}; CVaR 95% "
                  f"{pool['cvar']['95']:.4%}, 99% {pool['cvar']['99']:.4%} (losses as positive fractions)",
                  f"- maximum drawdown: median {pool['max_drawdown']['p50']:.4%}, p95 {pool['max_drawdown']['p95']:.4%}",
                  f"- peak reserve (capped profits of open positions) as a share of the pool's balance: median "
                  f"{pool['peak_reserve_share']['p50']:.2%}, p95 {pool['peak_reserve_share']['p95']:.2%}",
                  "- opens refused: " + (", ".join(f"{k} {v}" for k, v in pool["opens_refused"].items()) or "none"),
                  *([f"- LPs per path: {pool['lp_flows']['deposits_per_path']} deposits "
                     f"({pool['lp_flows']['deposited_usd_per_path']:,.0f} USD), {pool['lp_flows']['withdrawals_per_path']} "
                     f"withdrawals ({pool['lp_flows']['withdrawn_usd_per_path']:,.0f} USD); withdrawals refused: "
                     + (", ".join(f"{k} {v}" for k, v in pool["lp_flows"]["withdrawals_refused"].items()) or "none")]
                    if pool.get("lp_flows") else []),
                  ""]
        lines += basket_md(pool)
    lines += keeper_md(report.get("keeper"))
    return "\n".join(lines)


def write_report(report: dict[str, Any], out_dir: Path) -> list[Path]:
    """report.json, summary.md and the plots (survival.png, lp_returns.png, alp_price_fan.png)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / "report.json", out_dir / "summary.md"]
    written[0].write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")
    written[1].write_text(summary_md(report))
    written += _plots(report, out_dir)
    return written


def _plots(report: dict[str, Any], out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = []
    hours = np.array(report["times_s"], dtype=float) / 3600
    if report["cohort"]:
        fig, ax = plt.subplots(figsize=(8, 4.5))
        for name, g in report["cohort"].items():
            if g["opened"]:
                ax.step(hours, g["survival"], where="post", label=name)
        ax.set(xlabel="hours", ylabel="share not liquidated", ylim=(0, 1.02), title=f"{report['study']}: survival")
        out.append(_save(fig, ax, out_dir / "survival.png"))
    crowd = report.get("crowd")
    if crowd and any(g["survival"] for g in crowd["by_leverage"].values()):
        fig, ax = plt.subplots(figsize=(8, 4.5))
        for name, g in crowd["by_leverage"].items():
            if g["survival"]:
                ax.step(hours, g["survival"], where="post", label=name)
        ax.set(xlabel="hours since open", ylabel="share not liquidated (Kaplan-Meier)", ylim=(0, 1.02),
               title=f"{report['study']}: the crowd's survival by leverage")
        out.append(_save(fig, ax, out_dir / "crowd_survival.png"))
    pool = report["pool"]
    if "lp_returns" in pool:
        fig, ax = plt.subplots(figsize=(8, 4.5))
        ax.hist(np.array(pool["lp_returns"]) * 100, bins=min(50, max(5, len(pool["lp_returns"]) // 4)))
        for level, style in (("95", "--"), ("99", ":")):
            ax.axvline(-pool["var"][level] * 100, color="red", linestyle=style, label=f"VaR {level}%")
        ax.set(xlabel="LP return over the horizon (%)", ylabel="paths", title="LP returns")
        out.append(_save(fig, ax, out_dir / "lp_returns.png"))
    if "alp_price_fan" in pool:
        fan = pool["alp_price_fan"]
        x = np.arange(len(fan["p50"]))
        fig, ax = plt.subplots(figsize=(8, 4.5))
        ax.fill_between(x, fan["p5"], fan["p95"], alpha=0.2, label="p5-p95")
        ax.fill_between(x, fan["p25"], fan["p75"], alpha=0.4, label="p25-p75")
        ax.plot(x, fan["p50"], label="median")
        ax.set(xlabel="price step", ylabel="redemption ALP price (USD)", title="ALP price across paths")
        out.append(_save(fig, ax, out_dir / "alp_price_fan.png"))
    return out + keeper_plots([report], out_dir)


def _save(fig: Any, ax: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def cell_metrics(report: dict[str, Any]) -> dict[str, float | None]:
    """One cell's headline numbers, for the sweep's heatmaps."""
    out: dict[str, float | None] = {}
    for name, g in report["cohort"].items():
        out[f"P(liquidated) {name}"] = g["liquidation_probability"]
    pool = report["pool"]
    if "lp_return" in pool:
        out["LP return, median"] = pool["lp_return"]["p50"]
        out["LP return, mean"] = pool["lp_return"]["mean"]
        out["VaR 99%"] = pool["var"]["99"]
        out["max drawdown, p95"] = pool["max_drawdown"]["p95"]
        out["peak reserve share, p95"] = pool["peak_reserve_share"]["p95"]
    for name, row in (pool.get("lp_return_split") or {}).items():
        if name != "total":
            out[f"{SOURCE_LABELS[name]}, median"] = row["median"]
            out[f"{SOURCE_LABELS[name]}, VaR 99%"] = row["var_99"]
    if report.get("crowd"):
        out["crowd PnL / pool, mean"] = report["crowd"]["pnl_share_of_pool"]["mean"]
    out.update(keeper_metrics(report.get("keeper")))
    return out


def build_sweep_report(study: Study, cells: list[tuple[dict[str, Any], dict[str, Any]]]) -> dict[str, Any]:
    """A sweep: each cell's values and report, and per metric its value in every cell."""
    keys = list(study.sweep)
    rows = [{"values": {k: _plain(v) for k, v in values.items()}, "report": report} for values, report in cells]
    metrics: dict[str, list] = {}
    for row in rows:
        for name, value in cell_metrics(row["report"]).items():
            metrics.setdefault(name, []).append(value)
    return {"study": study.name, "sweep": {k: [_plain(v) for v in study.sweep[k]] for k in keys},
            "partial": any(row["report"]["partial"] for row in rows) or len(rows) < _cell_count(study),
            "cells": rows, "metrics": metrics}


def _cell_count(study: Study) -> int:
    count = 1
    for values in study.sweep.values():
        count *= len(values)
    return count


def _plain(value: Any) -> Any:
    from decimal import Decimal

    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def sweep_summary_md(report: dict[str, Any]) -> str:
    keys = list(report["sweep"])
    lines = [f"# {report['study']}: sweep over {' x '.join(keys)}", ""]
    names = list(report["metrics"])
    lines += ["| " + " | ".join(keys + names) + " |", "|" + "---|" * (len(keys) + len(names))]
    for i, row in enumerate(report["cells"]):
        cells = [_label(row["values"][k]) for k in keys] + [
            "-" if report["metrics"][n][i] is None else f"{report['metrics'][n][i]:.4g}" for n in names]
        lines.append("| " + " | ".join(cells) + " |")
    lines += keeper_sweep_md(report)
    return "\n".join(lines) + "\n"


def _label(value: Any) -> str:
    """A swept value as a table cell: a mapping (basket targets) as `USDT 50 / USDC 30 / ...`."""
    if isinstance(value, dict):
        return " / ".join(f"{k} {_plain(v)}" for k, v in value.items())
    return str(value)


def write_sweep_report(report: dict[str, Any], out_dir: Path) -> list[Path]:
    """report.json, summary.md, a heatmap per metric (two swept values; one: a line), and each
    cell's own report under cell-N/."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / "report.json", out_dir / "summary.md"]
    written[0].write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")
    written[1].write_text(sweep_summary_md(report))
    for i, row in enumerate(report["cells"]):
        (out_dir / f"cell-{i}").mkdir(exist_ok=True)
        (out_dir / f"cell-{i}" / "summary.md").write_text(summary_md(row["report"]))
    written += _heatmaps(report, out_dir)
    written += keeper_plots([row["report"] for row in report["cells"]], out_dir)
    return written


def _heatmaps(report: dict[str, Any], out_dir: Path) -> list[Path]:
    import re

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = list(report["sweep"])
    if len(keys) not in (1, 2) or len(report["cells"]) < len(_grid_product(report)):
        return []
    out = []
    for name, values in report["metrics"].items():
        fig, ax = plt.subplots(figsize=(7, 5))
        if len(keys) == 1:
            ax.plot([_label(v) for v in report["sweep"][keys[0]]], [np.nan if v is None else v for v in values], marker="o")
            ax.set(xlabel=keys[0], ylabel=name)
        else:
            xs, ys = report["sweep"][keys[0]], report["sweep"][keys[1]]
            grid = np.array([np.nan if v is None else v for v in values], dtype=float).reshape(len(xs), len(ys)).T
            image = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis")
            ax.set_xticks(range(len(xs)), [str(x) for x in xs])
            ax.set_yticks(range(len(ys)), [str(y) for y in ys])
            ax.set(xlabel=keys[0], ylabel=keys[1])
            for (j, i), v in np.ndenumerate(grid):
                if not np.isnan(v):
                    ax.text(i, j, f"{v:.3g}", ha="center", va="center", color="white", fontsize=8)
            fig.colorbar(image, ax=ax, label=name)
        ax.set_title(f"{report['study']}: {name}")
        fig.tight_layout()
        out.append(out_dir / f"heatmap-{re.sub(r'[^A-Za-z0-9]+', '_', name).strip('_').lower()}.png")
        fig.savefig(out[-1], dpi=110)
        plt.close(fig)
    return out


def _grid_product(report: dict[str, Any]) -> list:
    import itertools

    return list(itertools.product(*report["sweep"].values()))
