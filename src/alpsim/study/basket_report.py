"""The basket's part of a study's report: the LP's return by source (study/ledger.py) with its
median, mean and VaR 99%, the weights at the horizon against the targets, and the run."""

from __future__ import annotations

from typing import Any

import numpy as np

from .spec import Study
from .lps import targets_bps
from .stats import percentiles as _pcts, rounded as _r, var as _var

SPLIT = ("total", "basket_beta", "trader_pnl", "fees", "funding_holding")
"""The LP's return and its sources (study/ledger.py), in the report's order."""


def basket_summary(study: Study, results: list[dict[str, Any]]) -> dict[str, Any]:
    """The LP's return by source (median, mean, VaR 99% and each path's), the largest residual
    of the split, the weights at the end against the targets, and the run."""
    splits = [res["lp_split"] for res in results if res.get("lp_split")]
    if not splits:
        return {}
    by_source = {name: np.array([s["return"][name] for s in splits], dtype=float) for name in SPLIT}
    symbols = list(splits[0]["weights_end"])
    out: dict[str, Any] = {
        "lp_return_split": {name: {"median": _r(float(np.median(v))), "mean": _r(float(v.mean())),
                                   "var_99": _r(_var(v, 0.99))} for name, v in by_source.items()},
        "lp_return_split_paths": {name: [_r(float(x)) for x in v] for name, v in by_source.items()},
        "split_residual_max_abs": _r(float(max(abs(s["return"]["residual"]) for s in splits))),
        "targets_bps": dict(zip(symbols, targets_bps(study))),
        "weights_end": {sym: {"mean": _r(float(np.mean([s["weights_end"][sym] for s in splits]))),
                             **_pcts(np.array([s["weights_end"][sym] for s in splits], dtype=float))}
                        for sym in symbols},
        "fees_kept_usd": {kind: _r(float(np.mean([s["fees_usd"][kind] for s in splits])))
                          for kind in ("trading", "mint_burn")},
    }
    runs = [res["lp_flows"]["run"] for res in results if (res.get("lp_flows") or {}).get("run") is not None]
    if runs:
        started = [r for r in runs if r["started_s"] is not None]
        after_run = [s for s, res in zip(splits, results) if res["lp_flows"]["run"]["started_s"] is not None]
        by_asset: dict[str, float] = {}
        refused: dict[str, int] = {}
        for r in runs:
            for asset, usd in r["by_asset"].items():
                by_asset[asset] = by_asset.get(asset, 0.0) + usd / len(runs)
            for reason, n in r["refused"].items():
                refused[reason] = refused.get(reason, 0) + n
        out["run"] = {
            "paths_with_run": len(started), "share_of_paths": _r(len(started) / len(runs)),
            "started_s": _pcts(np.array([r["started_s"] for r in started], dtype=float)),
            "withdrawals_per_path": _r(float(np.mean([r["withdrawals"] for r in runs]))),
            "withdrawn_usd_per_path": _r(float(np.mean([r["withdrawn_usd"] for r in runs]))),
            "fees_usd_per_path": _r(float(np.mean([r["fees_usd"] for r in runs]))),
            "fees_usd_per_run": _r(float(np.mean([r["fees_usd"] for r in started]))) if started else None,
            "withdrawn_usd_by_asset_per_path": {k: _r(v) for k, v in sorted(by_asset.items())},
            "refused": dict(sorted(refused.items())),
            "weights_end_after_run": {sym: _r(float(np.mean([s["weights_end"][sym] for s in after_run])))
                                      if after_run else None for sym in symbols},
        }
    return out


SOURCE_LABELS = {"total": "total", "basket_beta": "basket beta", "trader_pnl": "trader pnl", "fees": "fees",
                 "funding_holding": "funding/holding"}


def basket_md(pool: dict[str, Any]) -> list[str]:
    split = pool.get("lp_return_split")
    if not split:
        return []
    lines = ["## The LP's return by source", "",
             "| source | median | mean | VaR 99% |", "|---|---:|---:|---:|"]
    for name in SPLIT:
        row = split[name]
        lines.append(f"| {SOURCE_LABELS[name]} | {row['median']:+.4%} | {row['mean']:+.4%} | {row['var_99']:.4%} |")
    fees = pool["fees_kept_usd"]
    run = pool.get("run")
    after_run = run["weights_end_after_run"] if run and run["paths_with_run"] else None
    lines += ["", f"The sources add up to the total within {pool['split_residual_max_abs']:.1e} on every path "
              f"(docs/studies.md). Fees kept per path: trading {fees['trading']:,.2f} USD, mint and burn "
              f"{fees['mint_burn']:,.2f} USD.", "",
              "| asset | target | weight at the end (mean) |" + (" after a run (mean) |" if after_run else ""),
              "|---|---:|---:|" + ("---:|" if after_run else "")]
    for sym, target in pool["targets_bps"].items():
        lines.append(f"| {sym} | {target / 100:.2f}% | {pool['weights_end'][sym]['mean']:.2%} |"
                     + (f" {after_run[sym]:.2%} |" if after_run else ""))
    if run:
        lines += ["", f"A run in {run['paths_with_run']} of the paths ({run['share_of_paths']:.0%}): "
                  f"{run['withdrawals_per_path']} withdrawals a path, "
                  f"{run['withdrawn_usd_per_path']:,.0f} USD out ("
                  + (", ".join(f"{k} {v:,.0f}" for k, v in run["withdrawn_usd_by_asset_per_path"].items()) or "none")
                  + f"), paying {run['fees_usd_per_path']:,.2f} USD of burn fees; refused: "
                  + (", ".join(f"{k} {v}" for k, v in run["refused"].items()) or "none") + "."]
    return lines + [""]
