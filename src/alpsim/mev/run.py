"""`alpsim mev`: one seeded order flow played plain and hidden against the same searcher on alpsim's
own anvil with interval mining (docs/mev.md), every attempt a real transaction; the result a
JSON-able dict, per attack and per (size, pair), that the lead extends with more sections.

Sizes are notional USD (margin x leverage): what slippage and depth see. The flow alternates a
deep pair (BTC/USD, 1% depth 100,000,000 USD) and a shallow one (SOL/USD, 10,000,000), both sides,
leverage drawn from `LEVERAGE_MIX` within each pair's cap and notional tier. Each order is played
from the same chain state (a snapshot) once per (attack, mode) and once with no searcher (the
victim's baseline fill)."""

from __future__ import annotations

import random
import time
from decimal import Decimal
from typing import Any, Callable

from ..errors import ConfigError
from ..profiles import get_profile
from .attacks import (HUNT_HOURS, Victim, pair_config, play_baseline, play_hunt, play_jit, play_trader,
                      searcher_leverage, set_lp_cooldown)
from ..orders import is_plain_frame
from .searcher import Searcher

CHAINS = ("bnb", "arbitrum")
DEFAULT_SIZES_USD = (10_000, 250_000, 1_000_000)
DEFAULT_ORDERS = 12
MAX_ORDERS = 500
PAIRS = ("BTC/USD", "SOL/USD")
LEVERAGE_MIX = ((5, 0.25), (10, 0.25), (20, 0.2), (50, 0.15), (100, 0.1), (1001, 0.05))
"""(leverage, weight) of the victims' orders: a placeholder mix (docs/mev.md), capped per pair."""
POOL_USD = 10_000_000
"""The pool's liquidity at its target weights (its payout-token half covers the reserve of a
1,000,000 USD order at 5x, 1,800,000 USD)."""
BACKGROUND_USD = {"long": 600_000, "short": 400_000}
"""Open interest already on each pair before the flow (both sides: funding has an imbalance)."""
BLOCK_TIME_S = 0.5
LP, BACKGROUND, SEARCHER, FIRST_VICTIM, VICTIMS = 7, 2, 10, 11, 4
"""Dev accounts: 0 admin, 7 the pool's LP, 8 the treasury (fees), 9 the keeper: the searcher and
the traders are accounts no role pays."""
ATTACKS = ("trader", "jit_lp", "jit_lp_no_cooldown", "hunt")
MODES = ("plain", "hidden")
PRICES = {"BTC/USD": 60_000, "ETH/USD": 3_000, "SOL/USD": 150, "AAPL/USD": 200}


def parse_sizes(text: str) -> tuple[int, ...]:
    """`--sizes`: a comma list of notional sizes in USD, each 100 to 5,000,000."""
    try:
        sizes = tuple(int(Decimal(s.strip().replace("_", ""))) for s in text.split(","))
    except Exception:  # noqa: BLE001 - any unparsable part
        raise ConfigError(f"--sizes is a comma list of notional sizes in USD (e.g. 10000,250000), got {text!r}") \
            from None
    if not sizes or any(not 100 <= s <= 5_000_000 for s in sizes):
        raise ConfigError(f"each size is a notional of 100 to 5,000,000 USD, got {text!r}")
    return sizes


def order_flow(orders: int, sizes: tuple[int, ...], seed: int, sim: Any) -> list[Victim]:
    """The seeded flow: sizes x pairs in turn, random side, leverage from LEVERAGE_MIX capped by
    the pair and its notional tier."""
    rng = random.Random(seed)
    out = []
    for i in range(orders):
        size = Decimal(sizes[i % len(sizes)])
        pair = PAIRS[(i // len(sizes)) % len(PAIRS)]
        leverage = rng.choices([lev for lev, _ in LEVERAGE_MIX], [w for _, w in LEVERAGE_MIX])[0]
        leverage = min(leverage, searcher_leverage(sim, pair, size))
        out.append(Victim(FIRST_VICTIM + i % VICTIMS, pair, rng.choice(("long", "short")), size, leverage))
    return out


def _setup(sim: Any, victims: list[Victim], pool_usd: int) -> None:
    with sim.devnet.blocks_on_demand():
        sim.keeper.set_prices(PRICES)
        sim.deposit_at_targets(LP, pool_usd)
        sim.fund(BACKGROUND, 1_000_000)
        sim.approve_collateral(BACKGROUND)
        for pair in PAIRS:
            for side, usd in BACKGROUND_USD.items():
                sim.open(BACKGROUND, pair, side, Decimal(usd) / 50 + sim.profile.execution_fee_usd, 50)
        accounts = sorted({v.account for v in victims})
        for who in accounts:
            sim.fund(who, 2_000_000)
        sim.approve_collateral(*accounts)


def run_mev(chain: str, orders: int = DEFAULT_ORDERS, sizes: tuple[int, ...] | list[int] = DEFAULT_SIZES_USD,
            seed: int = 29, *, attacks: tuple[str, ...] = ATTACKS, block_time_s: float = BLOCK_TIME_S,
            pool_usd: int = POOL_USD,
            log: Callable[[str], None] = lambda line: None) -> dict:
    """Plays `orders` orders of the seeded flow plain and hidden against the searcher; the
    result (JSON-able): settings, per-order plays, and the summary per attack, mode, size
    and pair."""
    from ..client import Alpsim

    if chain not in CHAINS:
        raise ConfigError(f"chain must be one of {', '.join(CHAINS)}, got {chain!r}")
    if not isinstance(orders, int) or not 1 <= orders <= MAX_ORDERS:
        raise ConfigError(f"orders must be 1 to {MAX_ORDERS}, got {orders!r}")
    sizes = tuple(sizes)
    if not sizes or any(not isinstance(s, int) or not 100 <= s <= 5_000_000 for s in sizes):
        raise ConfigError(f"sizes are notional USD of 100 to 5,000,000, got {sizes!r}")
    unknown = [a for a in attacks if a not in ATTACKS]
    if unknown:
        raise ConfigError(f"unknown attack {unknown[0]!r}: {', '.join(ATTACKS)}")
    profile = get_profile(chain)
    started = time.monotonic()
    with Alpsim.launch(chain, backend="anvil", seed=seed, block_time_s=block_time_s,
                       accounts=FIRST_VICTIM + VICTIMS) as sim:
        victims = order_flow(orders, sizes, seed, sim)
        _setup(sim, victims, pool_usd)
        searcher = Searcher(sim, SEARCHER)
        depth = {p: int(Decimal(pair_config(sim, sim.pair_id(p))["depth1PctUsd"]) / 10**18) for p in PAIRS}
        start = [sim.snapshot()]

        def back_to_start() -> None:  # anvil may consume a snapshot it reverts to: take it again
            sim.revert(start[0])
            start[0] = sim.snapshot()

        plays = []
        for i, victim in enumerate(victims):
            row: dict[str, Any] = {"order": i, "pair": victim.pair, "depth_usd": depth[victim.pair],
                                   "side": victim.side, "notional_usd": int(victim.notional_usd),
                                   "leverage": victim.leverage, "margin_usd": float(victim.margin_usd)}
            back_to_start()
            row["baseline"] = play_baseline(sim, searcher, victim, plain=False)
            for attack in attacks:
                for mode in MODES:
                    back_to_start()
                    if attack == "jit_lp_no_cooldown":
                        set_lp_cooldown(sim, 0)
                    if attack == "trader":
                        out = play_trader(sim, searcher, victim, mode == "plain")
                    elif attack.startswith("jit_lp"):
                        out = play_jit(sim, searcher, victim, mode == "plain")
                    else:
                        out = play_hunt(sim, searcher, victim, mode == "plain", hunt=True)
                        if mode == "plain":  # the same hold without the searcher: positions are public
                            back_to_start()
                            row.setdefault("hunt_baseline", play_hunt(sim, searcher, victim, False, hunt=False))
                    out["victim_extra_cost_bps"] = extra_cost_bps(victim, row, attack, out)
                    row[f"{attack}/{mode}"] = out
            plays.append(row)
            log(f"mev {chain}: order {i + 1}/{orders} {victim.pair} {victim.side} {int(victim.notional_usd):,} USD "
                f"x{victim.leverage}: " + ", ".join(
                    f"{a} {row[f'{a}/plain']['searcher_profit_usd']:+.2f}/{row[f'{a}/hidden']['searcher_profit_usd']:+.2f}"
                    for a in attacks) + " USD (plain/hidden)")
        back_to_start()
        pending_seen = sum(1 for s in searcher.seen if s.pending_when_read)
        return {
            "chain": chain, "seed": seed, "orders": orders, "sizes_usd": list(sizes), "size_unit": "notional USD",
            "settings": {"pairs": {p: {"depth_usd": depth[p]} for p in PAIRS}, "pool_usd": pool_usd,
                         "background_oi_usd": BACKGROUND_USD, "leverage_mix": [list(x) for x in LEVERAGE_MIX],
                         "block_time_s": block_time_s, "hunt_hours": HUNT_HOURS,
                         "execution_fee_usd": float(profile.execution_fee_usd), "attacks": list(attacks)},
            "searcher": {"requests_seen": len(searcher.seen), "seen_pending": pending_seen,
                         "plain_decoded": sum(1 for s in searcher.seen if s.order is not None),
                         "hidden_decoded": sum(1 for s in searcher.seen
                                               if s.order is not None and not is_plain_frame(s.frame))},
            "plays": plays,
            "summary": summarise(plays, attacks, profile),
            "seconds": round(time.monotonic() - started, 1),
        }


def extra_cost_bps(victim: Victim, row: dict, attack: str, out: dict) -> float | None:
    """The victim's extra cost against its baseline, in bp of its notional: a worse fill (trader)
    or a smaller payout after the hold (hunt); None when it did not open."""
    if attack == "hunt":
        base, hunted = row.get("hunt_baseline", {}), out
        if "victim_payout_usd" not in base or "victim_payout_usd" not in hunted:
            return None
        return round((base["victim_payout_usd"] - hunted["victim_payout_usd"]) / float(victim.notional_usd) * 1e4, 4)
    base = row["baseline"].get("victim_entry_wad")
    entry = out.get("victim_entry_wad")
    if base is None or entry is None:
        return None
    worse = (entry - base) if victim.side == "long" else (base - entry)
    return round(worse / base * 1e4, 4)


def summarise(plays: list[dict], attacks: tuple[str, ...], profile: Any) -> dict:
    """Per attack and mode, overall and per (size, pair): the searcher's profit per 1,000
    orders (USD, before gas), how often it acted, the victims' mean extra cost (bp), and the
    searcher's gas at the profile's median gas price."""
    from ..economics import gas_cost_usd

    gas_model = profile.gas
    out: dict[str, Any] = {}
    for attack in attacks:
        out[attack] = {}
        for mode in MODES:
            groups: dict[str, list[dict]] = {"all": []}
            for row in plays:
                groups["all"].append(row[f"{attack}/{mode}"])
                groups.setdefault(f"{row['notional_usd']}@{row['pair']}", []).append(row[f"{attack}/{mode}"])
            out[attack][mode] = {}
            for key, rows in groups.items():
                costs = [r["victim_extra_cost_bps"] for r in rows if r.get("victim_extra_cost_bps") is not None]
                gas = sum(r["searcher_gas"] for r in rows)
                out[attack][mode][key] = {
                    "orders": len(rows),
                    "acted": sum(1 for r in rows if r["acted"]),
                    "profit_per_1000_orders_usd": round(sum(r["searcher_profit_usd"] for r in rows) / len(rows) * 1000, 2),
                    "victim_extra_cost_bps": round(sum(costs) / len(costs), 4) if costs else None,
                    "blocked": sum(1 for r in rows if r.get("blocked")),
                    "victim_rejected": sum(1 for r in rows if r.get("rejected") is not None),
                    "victim_liquidated": sum(1 for r in rows if r.get("victim_liquidated")),
                    "gas_per_1000_orders_usd": (round(float(gas_cost_usd(gas, gas_model.median_gwei,
                                                                         gas_model.native_usd)) / len(rows) * 1000, 2)
                                                if gas_model else "not measured"),
                }
    return out
