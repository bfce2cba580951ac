"""The keeper's books of a study (docs/studies.md, "The keeper's books"): each path's counted
operations (`keeper_books.KeeperCounter`) priced with the gas measured once for the study on the
exact embedded EVM (`economics.measure_chain`, cached by chain and build), at the path's gas
price (fixed, or drawn per path from a log-normal with the path's own seeded stream), against
the execution fees the keeper was paid. Runs in the driver only: workers count, never measure."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np

from ..profiles import get_profile
from .stats import percentiles as _pcts, rounded as _r

KEEPER_STREAM = 3
"""The seed stream of a path's gas price draws (prices: none, the crowd: 1, the LPs: 2)."""
_MEASURED: dict[tuple[str, str], dict[str, dict[str, int]]] = {}
"""This process's measured gas by (chain, build key): a study (and a test session) measures once."""
CATEGORIES = ("price_pushes", "opens", "rejects", "closes", "take_profits", "stop_losses", "liquidations")
BATCHED = "per-transaction gas interpolated linearly between the measured batch sizes (1, 10, 50), " \
          "extrapolated beyond 50 along the 10-50 line"


def measured_gas(chain: str, build: Any, cache_dir: Path | None = None) -> dict[str, dict[str, int]]:
    """Each keeper operation's gas (and calldata) on `chain`, measured once per chain and build
    (`economics.measure_chain`, embedded EVM: exact); kept in this process and, with
    `cache_dir`, in `keeper_gas-<chain>-<build>.json` there."""
    key = (chain, build.key)
    path = cache_dir / f"keeper_gas-{chain}-{build.key[:16]}.json" if cache_dir is not None else None
    if key not in _MEASURED and path is not None and path.is_file():
        _MEASURED[key] = json.loads(path.read_text())
    if key not in _MEASURED:
        from ..economics import measure_chain

        _MEASURED[key] = measure_chain(chain, build=build)
    if path is not None and not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(_MEASURED[key], indent=1, sort_keys=True) + "\n")
    return _MEASURED[key]


# ----------------------------------------------------------------------------- the figures
def figures(study: Any) -> dict[str, Any]:
    """The keeper block's figures, each the chain profile's unless the study gives it."""
    profile = get_profile(study.chain)
    gas, spec = profile.gas, study.keeper
    if gas is None:
        raise ValueError(f"chain profile {study.chain!r} has no gas prices: the keeper's books cannot be priced")
    out: dict[str, Any] = {"native_usd": float(spec.native_usd or gas.native_usd),
                           "block_time_s": float(profile.block_time_s)}
    price = spec.gas_price
    if not isinstance(price, Decimal):
        src = price if price is not None else gas
        out["gas_price"] = {"kind": "lognormal", "median_gwei": float(src.median_gwei), "p99_gwei": float(src.p99_gwei),
                            "from": "study" if price is not None else "profile"}
    else:
        out["gas_price"] = {"kind": "fixed", "gwei": float(price), "from": "study"}
    l1 = gas.l1_data
    if l1 is None:
        out["l1_data"] = None
    else:
        given = spec.l1_data
        out["l1_data"] = {name: float(getattr(given, name) if given is not None and getattr(given, name) is not None
                                      else getattr(l1, name))
                          for name in ("blob_base_fee_median_gwei", "blob_base_fee_p99_gwei", "blob_gas_per_byte",
                                       "tx_overhead_bytes")}
    return out


def path_gas_prices(study: Any, index: int, fig: dict[str, Any]) -> tuple[float, float]:
    """The path's execution gas price and blob base fee (gwei): fixed (the blob fee then at its
    median), or each drawn from its log-normal through median and p99 with the path's stream."""
    l1 = fig["l1_data"]
    g = fig["gas_price"]
    if g["kind"] == "fixed":
        return g["gwei"], l1["blob_base_fee_median_gwei"] if l1 else 0.0
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([study.seed, index, KEEPER_STREAM])))
    z, z_blob = rng.standard_normal(2)
    z99 = NormalDist().inv_cdf(0.99)
    gwei = g["median_gwei"] * math.exp(math.log(g["p99_gwei"] / g["median_gwei"]) / z99 * float(z))
    blob = 0.0
    if l1 and l1["blob_base_fee_median_gwei"] > 0:
        sigma = math.log(l1["blob_base_fee_p99_gwei"] / l1["blob_base_fee_median_gwei"]) / z99
        blob = l1["blob_base_fee_median_gwei"] * math.exp(sigma * float(z_blob))
    return gwei, blob


# ----------------------------------------------------------------------------- pricing
def batch_tx(measured: dict[str, dict[str, int]], kind: str, n: int, field: str = "gas") -> float:
    """A transaction of `n` opens (`kind` "open") or liquidations ("liquidation"): its gas (or
    compressed bytes), interpolated between the measured 1, 10 and 50 (see BATCHED)."""
    if n <= 0:
        return 0.0
    points = [(1, measured[kind][field]), (10, 10 * measured[f"{kind}_batch_10"][field]),
              (50, 50 * measured[f"{kind}_batch_50"][field])]
    (x0, y0), (x1, y1) = (points[0], points[1]) if n <= 10 else (points[1], points[2])
    return y0 + (y1 - y0) * (n - x0) / (x1 - x0)


def path_usage(counts: dict[str, Any], measured: dict[str, dict[str, int]], charged_pushes: float,
               overhead_bytes: float) -> dict[str, tuple[float, float]]:
    """Per category: (gas, L1 bytes) of the path's keeper transactions."""
    def alone(op: str, n: float) -> tuple[float, float]:
        return n * measured[op]["gas"], n * (measured[op]["compressed_bytes"] + overhead_bytes)

    def batched(kind: str, sizes: dict[str, int]) -> tuple[float, float]:
        return (sum(k * batch_tx(measured, kind, int(n)) for n, k in sizes.items()),
                sum(k * (batch_tx(measured, kind, int(n), "compressed_bytes") + overhead_bytes) for n, k in sizes.items()))

    return {"price_pushes": alone("price_push", charged_pushes), "opens": batched("open", counts["open_batches"]),
            "rejects": alone("reject_open", counts["reject_opens"]), "closes": alone("close", counts["close_items"]),
            "take_profits": alone("take_profit", counts["take_profits"]),
            "stop_losses": alone("stop_loss", counts["stop_losses"]),
            "liquidations": batched("liquidation", counts["liquidation_batches"])}


def usd(gas: float, l1_bytes: float, gwei: float, blob_gwei: float, fig: dict[str, Any]) -> float:
    """gas x gwei x 1e-9 x native_usd, plus (a rollup) L1 bytes x blob gas a byte x blob fee:
    `economics.gas_cost_usd` for both, as `alpsim economics` prices them."""
    from ..economics import gas_cost_usd

    def cost(gas_units: float, price_gwei: float) -> float:
        return float(gas_cost_usd(Decimal(repr(gas_units)), Decimal(repr(price_gwei)), Decimal(repr(fig["native_usd"]))))

    l1 = fig["l1_data"]
    l1_usd = cost(l1_bytes * l1["blob_gas_per_byte"], blob_gwei) if l1 else 0.0
    return cost(gas, gwei) + l1_usd


def charged_pushes(study: Any, counts: dict[str, Any], fig: dict[str, Any]) -> float:
    """Pushes the books charge: those sent; with every_block each step's push stands for the
    step's blocks (step / block time of them: the study's prices move only at steps)."""
    if study.keeper.push != "every_block":
        return float(counts["price_pushes"])
    return counts["price_pushes"] + study.horizon.steps * (study.horizon.step / fig["block_time_s"] - 1)


def order_cost_usd(row: dict[str, Any], measured: dict[str, dict[str, int]], gwei: float, blob_gwei: float,
                   fig: dict[str, Any]) -> float | None:
    """One order's own keeper cost: its open (its share of its batch) and its end (close,
    take-profit, stop-loss, liquidation: its share of its trigger run), no pushes. None: never
    reached the keeper (expired, or pending at the horizon)."""
    n = row.get("open_batch")
    if n is None:
        return None
    overhead = fig["l1_data"]["tx_overhead_bytes"] if fig["l1_data"] else 0.0
    gas = batch_tx(measured, "open", n) / n
    l1_bytes = (batch_tx(measured, "open", n, "compressed_bytes") + overhead) / n
    end = row.get("closed_by")
    if end == "liquidation":
        m = row.get("end_batch", 1)
        gas += batch_tx(measured, "liquidation", m) / m
        l1_bytes += (batch_tx(measured, "liquidation", m, "compressed_bytes") + overhead) / m
    elif end is not None:
        op = {"take_profit": "take_profit", "stop_loss": "stop_loss"}.get(end, "close")
        gas += measured[op]["gas"]
        l1_bytes += measured[op]["compressed_bytes"] + overhead
    return usd(gas, l1_bytes, gwei, blob_gwei, fig)


def keeper_section(study: Any, results: list[dict[str, Any]], measured: dict[str, dict[str, int]] | None) -> dict[str, Any]:
    """The report's `keeper`: the figures, the operations per path, the books per path, per
    1,000 orders and per order, and the bad debt per path. Without `measured`: the counts, and
    every USD figure "not measured"."""
    spec = study.keeper
    fig = figures(study)
    push = {"mode": spec.push, **({"push_change": float(spec.push_change)} if spec.push == "on_change" else {}),
            **({"push_every_s": spec.push_every_s} if spec.push == "seconds" else {})}
    counted = [res for res in results if res.get("keeper") is not None]
    out: dict[str, Any] = {"push": push, **fig, "blocks_per_step": _r(study.horizon.step / fig["block_time_s"]),
                           "paths": len(counted), "batched_gas": BATCHED}
    if not counted:
        return out
    keys = ("price_pushes", "pairs_pushed", "opens", "rejects_in_batch", "reject_opens", "close_items",
            "take_profits", "stop_losses", "liquidations", "execution_fees_usd", "bad_debt_usd", "bad_debt_positions")
    out["operations_per_path"] = {k: _r(float(np.mean([r["keeper"][k] for r in counted]))) for k in keys}
    out["operations_per_path"]["price_pushes_charged"] = _r(float(np.mean([charged_pushes(study, r["keeper"], fig)
                                                                           for r in counted])))
    for key in ("open_batches", "liquidation_batches"):
        merged: dict[str, int] = {}
        for r in counted:
            for n, k in r["keeper"][key].items():
                merged[n] = merged.get(n, 0) + k
        out[f"{key}_all_paths"] = dict(sorted(merged.items(), key=lambda kv: int(kv[0])))
    bad = np.array([r["keeper"]["bad_debt_usd"] for r in counted], dtype=float)
    out["bad_debt_per_path_usd"] = {"mean": _r(float(bad.mean())), "max": _r(float(bad.max())), **_pcts(bad)}
    out["paths_with_bad_debt_share"] = _r(float(np.mean(bad > 0)))
    if measured is None:
        out["books"] = "not measured"
        return out
    out["gas_measured"] = {op: row["gas"] for op, row in measured.items()}
    out["gas_source"] = "embedded EVM (exact), measured once for the study (economics.measure_chain)"
    profits, revenues, costs, pushes_usd, gweis = [], [], [], [], []
    by_category = dict.fromkeys(CATEGORIES, 0.0)
    orders = at_loss = 0
    overhead = fig["l1_data"]["tx_overhead_bytes"] if fig["l1_data"] else 0.0
    for res in counted:
        gwei, blob = path_gas_prices(study, res["index"], fig)
        usage = path_usage(res["keeper"], measured, charged_pushes(study, res["keeper"], fig), overhead)
        cost = {cat: usd(g, b, gwei, blob, fig) for cat, (g, b) in usage.items()}
        for cat, value in cost.items():
            by_category[cat] += value
        revenue = res["keeper"]["execution_fees_usd"]
        total = sum(cost.values())
        profits.append(revenue - total), revenues.append(revenue), costs.append(total)
        pushes_usd.append(cost["price_pushes"]), gweis.append(gwei)
        for row in res["positions"] + res.get("crowd", []):
            own = order_cost_usd(row, measured, gwei, blob, fig)
            if own is not None:
                orders += 1
                at_loss += own > row["fees"].get("execution", 0.0)
    profit = np.array(profits)
    out["at_median_gas"] = _at_median(study, counted, measured, fig, overhead)
    all_orders = sum(len(r["positions"]) + len(r.get("crowd", [])) for r in counted)
    per_1000 = 1000 / all_orders if all_orders else None
    out.update({
        "gas_price_gwei": {"mean": _r(float(np.mean(gweis))), **_pcts(np.array(gweis))},
        "revenue_per_path_usd": _r(float(np.mean(revenues))),
        "cost_per_path_usd": _r(float(np.mean(costs))),
        "cost_per_path_by_kind_usd": {cat: _r(v / len(counted)) for cat, v in by_category.items()},
        "push_cost_share": _r(sum(pushes_usd) / sum(costs)) if sum(costs) else None,
        "profit_per_path_usd": {"mean": _r(float(profit.mean())), **_pcts(profit)},
        "loss_share": _r(float(np.mean(profit < 0))),
        "profits_usd": [_r(float(p)) for p in profit],
        "orders": all_orders, "orders_per_path": _r(all_orders / len(counted)),
        "per_1000_orders_usd": None if per_1000 is None else {
            "revenue": _r(sum(revenues) * per_1000), "cost": _r(sum(costs) * per_1000),
            "pushes": _r(sum(pushes_usd) * per_1000), "profit": _r(float(profit.sum()) * per_1000)},
        "orders_executed": orders,
        "orders_at_loss_share": _r(at_loss / orders) if orders else None,
    })
    return out


def _at_median(study: Any, counted: list[dict[str, Any]], measured: dict[str, dict[str, int]], fig: dict[str, Any],
               overhead: float) -> dict[str, Any]:
    """The same books at the median gas price (and blob fee) on every path: the expectation
    without the draw's noise; and the order flow that breaks even, `pushes an hour / (fee - an
    order's own cost)` from this cell's figures (None: the fee does not cover an order's own)."""
    g, l1 = fig["gas_price"], fig["l1_data"]
    gwei = g["gwei"] if g["kind"] == "fixed" else g["median_gwei"]
    blob = l1["blob_base_fee_median_gwei"] if l1 else 0.0
    push_usd = other_usd = revenue = 0.0
    orders = 0
    for res in counted:
        usage = path_usage(res["keeper"], measured, charged_pushes(study, res["keeper"], fig), overhead)
        cost = {cat: usd(gas, b, gwei, blob, fig) for cat, (gas, b) in usage.items()}
        push_usd += cost.pop("price_pushes")
        other_usd += sum(cost.values())
        revenue += res["keeper"]["execution_fees_usd"]
        orders += len(res["positions"]) + len(res.get("crowd", []))
    n, hours = len(counted), study.horizon.duration / 3600
    margin = (revenue - other_usd) / orders if orders else None
    return {"gwei": gwei, "profit_per_path_usd": _r((revenue - push_usd - other_usd) / n),
            "push_cost_per_hour_usd": _r(push_usd / n / hours),
            "margin_per_order_usd": _r(margin) if margin is not None else None,
            "break_even_orders_per_hour": _r(push_usd / n / hours / margin) if margin and margin > 0 else None}

