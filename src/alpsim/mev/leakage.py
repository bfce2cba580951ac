"""What a hidden open request still shows (docs/mev.md): a seeded crowd of hidden opens played on
an anvil node that mines every `block_time_s` (the chain profile's), so each request sits in the
public mempool before its block; an outsider reads it there (`txpool_content`) and in its receipt
and events, then guesses each order's side, notional and leverage from what it saw.

What an outsider sees of a request before the keeper executes it: the sender and the sender's
public history (every executed position is a `PositionOpened` event), `amountIn` (the escrow, in
the calldata and in `OpenRequested`), the commitment and the 148-byte ciphertext, the gas the
request used, its block and its place in it. Pair, side, leverage and limits are in the
ciphertext only (ECIES to the keeper's key) and in the commitment, a keccak of the order with a
32-byte salt: matching it by brute force means searching 2^256 salts per candidate order.

The crowd: the trader profiles of studies/lps_vs_degen_crowd.yaml (degen, gambler, swing), one
profile per account for the whole flow (a trader keeps a habit, so a public history is worth
something), BTC/USD and ETH/USD, take-profits and stop-losses as the profiles set them.
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table
from scipy import stats

from ..errors import ConfigError
from ..orders import commitment, seal
from ..protocol import Order, RejectReason
from ..service import DEFAULT_START_PRICES
from ..study.crowd import MIN_AMOUNT_USD, draw

CROWD_STUDY = "lps_vs_degen_crowd.yaml"
FIRST_TRADER = 10
"""Dev accounts 10 and up trade (0 deployer, 7 the LP, 8 treasury, 9 the keeper)."""
TRADERS = 40
"""Accounts of the crowd (the study's `accounts`)."""
POOL_USD = 5_000_000
TRADER_FUNDS_USD = 100_000
MAX_PER_BLOCK = 8
"""Requests sent together (one mempool read, then one block) at most; each from another trader."""
MEAN_PER_BLOCK = 3.0
REQUEST_GAS = 500_000
TX_BASE_GAS = 21_000
CALLDATA_ZERO_GAS, CALLDATA_NONZERO_GAS = 4, 16
CHAINS = ("bnb", "arbitrum")
MAX_ORDERS = 2_000
NEIGHBOURS = 15
"""Orders of nearest escrow a prior near the escrow is fitted on."""


# ----- the order flow
def crowd_profiles() -> list[Any]:
    """The trader profiles of the shipped crowd study (`CROWD_STUDY`)."""
    from ..paths import find_project
    from ..study import load_study

    study = load_study(find_project().root / "studies" / CROWD_STUDY)
    return list(study.traders.profiles)


def flow_orders(orders: int, seed: int) -> list[dict[str, Any]]:
    """`orders` hidden opens in blocks of 1 to MAX_PER_BLOCK requests, each block's from distinct
    traders; each trader keeps one profile (drawn by the profiles' weights)."""
    from ..study.spec import PAIRS

    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 29])))
    profiles = crowd_profiles()
    weights = np.array([float(p.weight) for p in profiles])
    habit = [profiles[int(rng.choice(len(profiles), p=weights / weights.sum()))] for _ in range(TRADERS)]
    out: list[dict[str, Any]] = []
    block = 0
    while len(out) < orders:
        count = min(MAX_PER_BLOCK, 1 + int(rng.poisson(MEAN_PER_BLOCK - 1)), orders - len(out))
        for t in rng.choice(TRADERS, size=count, replace=False):
            profile = habit[int(t)]
            pairs = profile.pairs or ["BTC/USD", "ETH/USD"]
            pair = pairs[int(rng.integers(len(pairs)))]
            is_long = bool(rng.random() < float(profile.long_share))
            leverage = int(min(max(1, round(draw(profile.leverage, rng))), PAIRS[pair].max_leverage))
            amount = Decimal(f"{max(draw(profile.amount, rng), MIN_AMOUNT_USD):.2f}")
            start = DEFAULT_START_PRICES[pair]
            sign = 1 if is_long else -1
            tp = sl = Decimal(0)
            if profile.take_profit and rng.random() < float(profile.take_profit.share):
                tp = start * (1 + sign * profile.take_profit.move)
            if profile.stop_loss and rng.random() < float(profile.stop_loss.share):
                sl = start * (1 - sign * profile.stop_loss.move)
            out.append({"block": block, "account": FIRST_TRADER + int(t), "profile": profile.name, "pair": pair,
                        "is_long": is_long, "leverage": leverage, "amount_usd": amount,
                        "take_profit": tp, "stop_loss": sl})
        block += 1
    return out


def hidden_request(sim: Any, account: int, spec: dict[str, Any], rng: np.random.Generator) -> tuple[dict, bytes]:
    """The trader's `requestOpen` transaction of a hidden order (a fresh salt and ECIES
    randomness from `rng`) and its ciphertext."""
    trader = sim.address(account)
    order = Order(sim.pair_id(spec["pair"]), spec["is_long"], spec["leverage"], int(spec["take_profit"] * 10**18),
                  int(spec["stop_loss"] * 10**18), int(spec.get("acceptable_price", 0) * 10**18))
    salt = rng.bytes(32)
    ciphertext = seal(order, salt, sim.keeper_public_key, rng.bytes(48))
    trading = sim.contracts["trading"]
    data = trading.encode("requestOpen", commitment(trader, order, salt), ciphertext, sim.to_units(spec["amount_usd"]))
    return {"from": trader, "to": trading.address, "data": data, "gas": REQUEST_GAS}, ciphertext


def calldata_gas(data: bytes) -> int:
    """The calldata's intrinsic gas: 4 a zero byte, 16 any other (EIP-2028)."""
    zeros = data.count(0)
    return zeros * CALLDATA_ZERO_GAS + (len(data) - zeros) * CALLDATA_NONZERO_GAS


def outsider_decode(trading: Any, data: bytes) -> dict[str, Any]:
    """What the engine's ABI gives an outsider of a request's calldata: the function and its
    arguments, and whether the ciphertext's bytes hold any order a packed encoding could (an
    order's first 7 bytes are pair id, side and leverage, section 5.1)."""
    name, args = trading.decode_call(data)
    return {"function": name, "commitment": args["commitment"], "ciphertext": args["encryptedOrder"],
            "amount_in": args["amountIn"], "ciphertext_bytes": len(args["encryptedOrder"])}


# ----- playing it on a node
def play_flow(chain: str, flow: list[dict[str, Any]], seed: int) -> dict[str, Any]:
    """Plays `flow` on a fresh anvil with interval mining: per block, the requests sent, the
    mempool read as an outsider reads it, the receipts awaited, then the keeper's batch. The
    outsider's records (with the truth beside them) and the node's block time."""
    from ..client import Alpsim
    from ..deployment import deploy_system
    from ..devnet import AnvilDevnet
    from ..profiles import get_profile

    profile = get_profile(chain)
    block_time_s = float(profile.block_time_s)
    devnet = AnvilDevnet(profile, stamp_blocks=False, block_time_s=block_time_s, accounts=FIRST_TRADER + TRADERS)
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 29, 1])))
    records: list[dict[str, Any]] = []
    try:
        with devnet.blocks_on_demand():  # set-up in seconds
            deployment, session = deploy_system(devnet)
            sim = Alpsim(devnet, deployment, session, seed=seed)
            sim.fund(7, POOL_USD)
            sim.deposit(7, POOL_USD)
            traders = range(FIRST_TRADER, FIRST_TRADER + TRADERS)
            for account in traders:
                sim.fund(account, TRADER_FUNDS_USD)
            sim.approve_collateral(*traders)
            sim.keeper.set_prices(DEFAULT_START_PRICES)
            sim.keeper.push_prices()
        trading = sim.contracts["trading"]
        for block in sorted({o["block"] for o in flow}):
            specs = [o for o in flow if o["block"] == block]
            escrow_empty = sim.collateral_units(trading.address) == 0  # before this block's requests
            built = [hidden_request(sim, o["account"], o, rng) for o in specs]
            hashes = [devnet.send_unmined(tx) for tx, _ in built]  # each waits in the mempool
            pool = devnet.rpc("txpool_content") or {}
            pending = {tx["hash"].lower(): tx for by_sender in pool.get("pending", {}).values()
                       for tx in by_sender.values()}
            receipts = [devnet.receipt_of(h) for h in hashes]
            ids = [session.events(r, "OpenRequested")[0]["requestId"] for r in receipts]
            first = min(receipts, key=lambda x: (x["blockNumber"], x["transactionIndex"]))  # the block may split
            executed = sim.keeper.execute_open_batch(ids, [ct for _, ct in built])
            opened = {e["requestId"]: e for e in session.events(executed, "PositionOpened")}
            rejected = {e["requestId"]: e for e in session.events(executed, "OpenRejected")}
            for spec, (tx, _), tx_hash, receipt, rid in zip(specs, built, hashes, receipts, ids):
                data = bytes.fromhex(tx["data"][2:])
                seen = pending.get(tx_hash.lower())
                event = session.events(receipt, "OpenRequested")[0]
                position = opened[rid]["position"] if rid in opened else None
                records.append({
                    **{k: spec[k] for k in ("block", "account", "profile", "pair", "is_long", "leverage")},
                    "round": block, "request_id": rid, "trader": tx["from"],
                    "limits": bool(spec["take_profit"] or spec["stop_loss"]),
                    "seen_pending": seen is not None and bytes.fromhex(seen["input"][2:]) == data,
                    "amount_usd": float(Decimal(event["amountIn"]) / 10**sim.decimals),
                    "calldata_bytes": len(data), "calldata_gas": calldata_gas(data),
                    "ciphertext_bytes": outsider_decode(trading, data)["ciphertext_bytes"],  # as the outsider reads it
                    "gas_used": receipt["gasUsed"], "request_block": receipt["blockNumber"],
                    "index_in_block": receipt["transactionIndex"],
                    "escrow_was_empty": escrow_empty and receipt is first,
                    "execute_block": executed["blockNumber"],
                    "notional_usd": float(Decimal(position["notionalUsd"]) / 10**18) if position else None,
                    "rejected": RejectReason(rejected[rid]["reason"]).label if rid in rejected else None,
                })
    finally:
        devnet.close()
    return {"records": records, "block_time_s": block_time_s}


# ----- the outsider's guesses
def _mode(values: np.ndarray) -> int:
    """The most common value (the smallest of a tie)."""
    uniq, counts = np.unique(values, return_counts=True)
    return int(uniq[int(np.argmax(counts))])


def guess_statistics(records: list[dict[str, Any]], neighbours: int = NEIGHBOURS) -> dict[str, Any]:
    """How well an outsider guesses each executed order's side, notional and leverage.

    Records: `trader`, `round` (orders of a round are requested together, executed after),
    `is_long`, `leverage`, `amount_usd` (escrow) and `notional_usd` (None: rejected, left out).
    Crowd priors are fitted on the other orders (leave-one-out: an outsider who has watched this
    crowd long), over all of them or over the `neighbours` whose escrow is nearest (in log
    terms; ties by order; a tie of sides guesses long); the trader's history is the trader's orders of earlier rounds (public
    once executed), falling back to the crowd prior when there is none. A notional guess is the
    escrow x the median notional-to-escrow ratio (a leverage prior, net of fees); a leverage
    guess the most common leverage (the smallest of a tie); a side guess the majority (a tie
    guesses long; the trader's own tie the crowd's)."""
    done = [r for r in records if r.get("notional_usd")]
    n = len(done)
    if n < 2:
        raise ConfigError(f"the guesses need at least 2 executed orders, got {n}")
    longs = np.array([r["is_long"] for r in done], dtype=bool)
    amount = np.array([r["amount_usd"] for r in done], dtype=float)
    notional = np.array([r["notional_usd"] for r in done], dtype=float)
    leverage = np.array([int(r["leverage"]) for r in done])
    ratio = notional / amount
    guesses: dict[str, list] = {k: [] for k in ("side_crowd", "side_near", "side_hist", "lev_crowd", "lev_near", "lev_hist",
                                                "n_blind", "n_crowd", "n_near", "n_hist")}
    with_history = 0
    for i, r in enumerate(done):
        others = np.array([j for j in range(n) if j != i])
        near = others[np.argsort(np.abs(np.log(amount[others] / amount[i])), kind="stable")[:neighbours]]
        past = np.array([j for j in range(n) if done[j]["trader"] == r["trader"] and done[j]["round"] < r["round"]],
                        dtype=int)
        with_history += bool(len(past))
        crowd_long = bool(longs[others].sum() * 2 >= len(others))
        past_longs = int(longs[past].sum())
        guesses["side_crowd"].append(crowd_long)
        guesses["side_near"].append(bool(longs[near].sum() * 2 >= len(near)))
        guesses["side_hist"].append(past_longs * 2 > len(past) if len(past) and past_longs * 2 != len(past)
                                    else crowd_long)
        guesses["lev_crowd"].append(_mode(leverage[others]))
        guesses["lev_near"].append(_mode(leverage[near]))
        guesses["lev_hist"].append(_mode(leverage[past]) if len(past) else guesses["lev_near"][-1])
        guesses["n_blind"].append(float(np.median(notional[others])))
        guesses["n_crowd"].append(amount[i] * float(np.median(ratio[others])))
        guesses["n_near"].append(amount[i] * float(np.median(ratio[near])))
        guesses["n_hist"].append(amount[i] * float(np.median(ratio[past])) if len(past) else guesses["n_near"][-1])
    base_rate = float(max(longs.mean(), 1 - longs.mean()))

    def side(guess: list[bool]) -> dict[str, Any]:
        hits = int((np.array(guess) == longs).sum())
        return {"accuracy": round(hits / n, 4),
                "p_value_vs_base_rate": round(float(stats.binomtest(hits, n, base_rate, "greater").pvalue), 4)}

    def size(guess: list[float]) -> dict[str, Any]:
        times = np.array(guess) / notional
        return {"median_abs_error_pct": round(float(np.median(np.abs(times - 1))) * 100, 2),
                "within_2x_share": round(float(((times <= 2) & (times >= 0.5)).mean()), 4)}

    def hit(guess: list[int]) -> float:
        return round(float(np.mean(np.array(guess) == leverage)), 4)

    amount_by_side = stats.mannwhitneyu(amount[longs], amount[~longs]) if 0 < longs.sum() < n else None
    return {
        "executed": n, "neighbours": neighbours, "long_share": round(float(longs.mean()), 4),
        "base_rate": round(base_rate, 4), "with_history_share": round(with_history / n, 4),
        "side": {"crowd_majority": side(guesses["side_crowd"]), "majority_near_escrow": side(guesses["side_near"]),
                 "trader_history": side(guesses["side_hist"]),
                 "escrow_by_side_p_value": None if amount_by_side is None else round(float(amount_by_side.pvalue), 4)},
        "notional": {"no_escrow": size(guesses["n_blind"]), "escrow_x_crowd_prior": size(guesses["n_crowd"]),
                     "escrow_x_prior_near_escrow": size(guesses["n_near"]),
                     "escrow_x_trader_history": size(guesses["n_hist"])},
        "leverage": {"crowd_mode": hit(guesses["lev_crowd"]), "mode_near_escrow": hit(guesses["lev_near"]),
                     "trader_history_mode": hit(guesses["lev_hist"])},
    }


def gas_and_length(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Whether the ciphertext's length or the request's gas vary with the order. A request's gas
    is 21,000 + its calldata's gas (zero bytes 4, others 16: `amountIn`'s digits and the random
    bytes of commitment and ciphertext, `calldata_gas`) + its execution; the execution part is
    grouped by what the chain's state sets (`escrow_was_empty`: the request writes the engine's
    empty escrow balance) and then by each field of the order. It depends on the order when two
    requests of the same state differ."""
    execution = [r["gas_used"] - TX_BASE_GAS - r["calldata_gas"] for r in records]
    by_state = {flag: sorted({g for g, r in zip(execution, records) if r["escrow_was_empty"] == flag})
                for flag in (True, False)}
    spread: dict[str, dict[str, list[int]]] = {}
    for key in ("pair", "is_long", "leverage", "limits"):
        groups: dict[str, list[int]] = {}
        for r, g in zip(records, execution):
            if not r["escrow_was_empty"]:
                groups.setdefault(str(r[key]), []).append(g)
        spread[key] = {v: [min(gs), max(gs)] for v, gs in sorted(groups.items())}
    used = np.array([r["gas_used"] for r in records])
    return {
        "ciphertext_bytes": sorted({r["ciphertext_bytes"] for r in records}),
        "calldata_bytes": sorted({r["calldata_bytes"] for r in records}),
        "gas_used_min": int(used.min()), "gas_used_max": int(used.max()),
        "calldata_gas_min": min(r["calldata_gas"] for r in records),
        "calldata_gas_max": max(r["calldata_gas"] for r in records),
        "execution_gas_escrow_empty": by_state[True], "execution_gas": by_state[False],
        "execution_gas_by_order_field": spread,
        "execution_gas_depends_on_order": any(len(v) > 1 for v in by_state.values()),
    }


def measure_leakage(chain: str = "bnb", orders: int = 200, seed: int = 1) -> dict[str, Any]:
    """The crowd's hidden opens on an interval-mined anvil of `chain`, and what an outsider
    learns of them (module docstring). JSON-able."""
    if chain not in CHAINS:
        raise ConfigError(f"unknown chain {chain!r} (known: {', '.join(CHAINS)})")
    if isinstance(orders, bool) or not isinstance(orders, int) or not 2 <= orders <= MAX_ORDERS:
        raise ConfigError(f"orders must be a whole number from 2 to {MAX_ORDERS:,}, got {orders!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be a whole number >= 0, got {seed!r}")
    played = play_flow(chain, flow_orders(orders, seed), seed)
    records = played["records"]
    waits = Counter(r["execute_block"] - r["request_block"] for r in records)
    return {
        "chain": chain, "orders": orders, "seed": seed, "backend": "anvil",
        "block_time_s": str(Decimal(str(played["block_time_s"]))), "crowd": CROWD_STUDY, "traders": TRADERS,
        "requests": len(records), "seen_pending_share": round(sum(r["seen_pending"] for r in records) / len(records), 4),
        "rejected": dict(Counter(r["rejected"] for r in records if r["rejected"])),
        "blocks_to_execution": {str(k): v for k, v in sorted(waits.items())},
        "public": ["sender and its executed positions (PositionOpened)", "amountIn (calldata, OpenRequested)",
                   "commitment (32 bytes)", "ciphertext (148 bytes)", "gas used", "block, index in block, timing"],
        "length_and_gas": gas_and_length(records),
        "guesses": guess_statistics(records),
    }


# ----- output
def _rows(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    g, lg = result["guesses"], result["length_and_gas"]
    s, no, lev = g["side"], g["notional"], g["leverage"]
    return [
        ("side: always the crowd's majority", f"{s['crowd_majority']['accuracy']:.1%}",
         f"base rate {g['base_rate']:.1%} (longs {g['long_share']:.1%})"),
        ("side: the trader's majority so far", f"{s['trader_history']['accuracy']:.1%}",
         f"p = {s['trader_history']['p_value_vs_base_rate']} against the base rate"),
        ("side: the majority near that escrow", f"{s['majority_near_escrow']['accuracy']:.1%}",
         f"p = {s['majority_near_escrow']['p_value_vs_base_rate']} against the base rate (escrow by side, "
         f"Mann-Whitney p = {s['escrow_by_side_p_value']})"),
        ("notional: crowd median, no escrow", f"{no['no_escrow']['median_abs_error_pct']}%",
         f"within 2x: {no['no_escrow']['within_2x_share']:.1%}"),
        ("notional: escrow x crowd leverage prior", f"{no['escrow_x_crowd_prior']['median_abs_error_pct']}%",
         f"within 2x: {no['escrow_x_crowd_prior']['within_2x_share']:.1%}"),
        ("notional: escrow x prior near that escrow", f"{no['escrow_x_prior_near_escrow']['median_abs_error_pct']}%",
         f"within 2x: {no['escrow_x_prior_near_escrow']['within_2x_share']:.1%}"),
        ("notional: escrow x the trader's past leverage", f"{no['escrow_x_trader_history']['median_abs_error_pct']}%",
         f"within 2x: {no['escrow_x_trader_history']['within_2x_share']:.1%}"),
        ("leverage: the crowd's mode", f"{lev['crowd_mode']:.1%}", "exact hits"),
        ("leverage: the mode near that escrow", f"{lev['mode_near_escrow']:.1%}", "exact hits"),
        ("leverage: the trader's past mode", f"{lev['trader_history_mode']:.1%}",
         f"exact hits ({g['with_history_share']:.0%} of orders have a history)"),
        ("ciphertext length", ", ".join(map(str, lg["ciphertext_bytes"])) + " bytes", "every order"),
        ("requestOpen gas", f"{lg['gas_used_min']:,} to {lg['gas_used_max']:,}",
         "depends on the order: " + ("YES" if lg["execution_gas_depends_on_order"] else "no")
         + f" (execution part {lg['execution_gas']}; {lg['execution_gas_escrow_empty']} into an empty escrow)"),
    ]


def print_leakage(console: Console, result: dict[str, Any]) -> None:
    table = Table(title=f"what a hidden request still shows: {result['requests']} hidden opens on {result['chain']} "
                        f"(anvil, {result['block_time_s']} s blocks, seed {result['seed']})")
    for col in ("the outsider's guess", "score", "against"):
        table.add_column(col, justify="right" if col == "score" else "left")
    for row in _rows(result):
        table.add_row(*row)
    console.print(table)
    console.print(f"seen in the mempool before their block: {result['seen_pending_share']:.0%}; blocks from request "
                  f"to execution: {result['blocks_to_execution']}; rejected: {result['rejected'] or 'none'}")


def leakage_markdown(result: dict[str, Any]) -> str:
    lines = [f"{result['requests']} hidden opens of the `{result['crowd']}` crowd ({result['traders']} traders) on "
             f"{result['chain']}, anvil mining every {result['block_time_s']} s, seed {result['seed']}:", "",
             "| the outsider's guess | score | against |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in _rows(result)]
    lines += ["", f"Seen in the mempool before their block: {result['seen_pending_share']:.0%}; blocks from request to "
                  f"execution: {result['blocks_to_execution']}; rejected: {result['rejected'] or 'none'}."]
    return "\n".join(lines) + "\n"
