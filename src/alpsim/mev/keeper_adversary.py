"""The keeper as the adversary (docs/mev.md): it decrypts every order, sends the price of every
execution and chooses when, within the request's window, to execute. What it could take within
the rules, measured with real transactions on the real contracts (the embedded EVM), per 1,000
orders of the crowd of `alpsim.mev.leakage` and in bp of notional, and the rule that bounds
each take (contract, function, error).

- Shading: the engine prices every execution at the keeper's price unless it is more than
  `worsePriceBps` (0.1%) from the reference feed, then at the worse of the two for the trader,
  and refuses it beyond `circuitBreakerBps` (1%): a keeper price just inside 1%, against the
  trader, is accepted and used (PriceOracle.guardedPrice). The trader's acceptablePrice and
  take-profit bound it too. The same orders are opened and closed at the honest price and at the
  shaded one; the difference of the payouts is the trader's extra cost, and it goes to the pool.
- Shading a trigger run: the same band, on `runTriggers`, liquidates the positions whose
  liquidation line is within 1% of the price.
- Timing: the keeper may execute any block of the window (1 to `requestExpiryBlocks` blocks
  after the request); with a GBM price path per block at the pair's volatility it picks, with
  hindsight, the worst block for the trader (an upper bound of what waiting can take).
- Front-running with its own order ahead in the same batch: it raises the victim's slippage
  (docs/mechanics.md section 7: per-side open interest) and pays the same slippage itself, both
  to the pool.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from ..errors import AlpsimError, ConfigError
from ..protocol import RejectReason
from ..service import DEFAULT_START_PRICES
from .leakage import CHAINS, FIRST_TRADER, POOL_USD, TRADER_FUNDS_USD, TRADERS, flow_orders

WAD = 10**18
BPS = 10_000
VOLATILITY = {"BTC/USD": 0.6, "ETH/USD": 0.8}
"""Annual volatility of the pairs' GBM (studies/lps_vs_degen_crowd.yaml)."""
YEAR_S = 365 * 24 * 3600
LP_STAKE = Decimal("0.10")
"""The keeper's share of the pool in the "keeper as LP" figures: a placeholder, not a public figure."""
FRONT_RUN_VICTIMS = 10
"""The flow's largest orders the keeper front-runs, with an order of the victim's size."""
MODEL_PATHS = 200_000
MAX_ORDERS = 500
PENDING_STATUS = 1
"""RequestStatus.Pending in Types.sol."""
SHADE_MARGIN_WAD = 10**6
"""How far inside a trader's limit (in 18-decimal price units) the keeper keeps its shade."""


def launch_system(chain: str, seed: int, build: Any = None) -> Any:
    """A fresh system on the embedded EVM: the crowd's pool (5,000,000 USD), its traders and the
    keeper's own account funded and approved, the start prices pushed."""
    from ..client import Alpsim

    sim = Alpsim.launch(chain, seed=seed, accounts=FIRST_TRADER + TRADERS, build=build)
    sim.fund(7, POOL_USD)
    sim.deposit(7, POOL_USD)
    traders = list(range(FIRST_TRADER, FIRST_TRADER + TRADERS))
    for account in traders + [9]:
        sim.fund(account, TRADER_FUNDS_USD)
    sim.approve_collateral(*traders, 9)
    sim.keeper.set_prices(DEFAULT_START_PRICES)
    sim.keeper.push_prices()
    return sim


def _wad(pair: str) -> int:
    return int(DEFAULT_START_PRICES[pair] * WAD)


def keep_price(sim: Any, pair: str, price_wad: int) -> None:
    """The keeper's own price for `pair` (the reference feed stays): no transaction."""
    sim.keeper.set_prices({pair: Decimal(price_wad) / WAD}, reference=False)


def request_order(sim: Any, spec: dict[str, Any], account: int | None = None) -> Any:
    return sim.request_open(spec["account"] if account is None else account, spec["pair"],
                            "long" if spec["is_long"] else "short", spec["amount_usd"], spec["leverage"],
                            take_profit=spec["take_profit"], stop_loss=spec["stop_loss"])


def _opened(sim: Any, receipt: dict, request_id: int) -> dict | None:
    for event in sim.session.events(receipt, "PositionOpened"):
        if event["requestId"] == request_id:
            return event
    return None


def close_position(sim: Any, account: int, position_id: int) -> Any:
    """Closes at the keeper's current price: the ClosedPosition (None when the close was refused)."""
    request_id, _ = sim.request_close(account, position_id)
    closed = sim.closed_from(sim.keeper.execute_close(request_id))
    return closed[0] if closed else None


def _close(sim: Any, account: int, position_id: int) -> int:
    """`close_position`'s payout in token units (0 when refused: cannot happen inside the guard)."""
    closed = close_position(sim, account, position_id)
    return closed.payout_tokens if closed else 0


def guard_settings(sim: Any) -> dict[str, int]:
    oracle = sim.contracts["oracle"]
    return {"max_price_age_s": oracle.call("maxPriceAgeSeconds"), "circuit_breaker_bps": oracle.call("circuitBreakerBps"),
            "worse_price_bps": oracle.call("worsePriceBps"),
            "request_expiry_blocks": sim.contracts["trading"].call("settings")["requestExpiryBlocks"]}


def shaded_price_wad(ref_wad: int, is_long: bool, slippage_wad: int, breaker_bps: int, take_profit_wad: int = 0,
                     acceptable_wad: int = 0) -> int:
    """The worst keeper price for the trader the engine accepts: the circuit breaker's edge
    (against the trader: up for a buyer), pulled in so that the fill stays on the right side of
    the trader's take-profit and within its acceptable price."""
    if is_long:
        price = ref_wad * (BPS + breaker_bps) // BPS
        for limit in (take_profit_wad, acceptable_wad):
            if limit:
                price = min(price, limit * WAD // (WAD + slippage_wad) - SHADE_MARGIN_WAD)
        return price
    price = -(-ref_wad * (BPS - breaker_bps) // BPS)
    for limit in (take_profit_wad, acceptable_wad):
        if limit:
            price = max(price, -(-limit * WAD // (WAD - slippage_wad)) + SHADE_MARGIN_WAD)
    return price


def open_and_close(sim: Any, spec: dict[str, Any], open_wad: int, close_wad: int) -> dict[str, Any]:
    """Opens the order at the keeper price `open_wad` and closes it at `close_wad` (the reference
    at the start price), in the state `sim` is in (snapshotted and restored)."""
    snap = sim.snapshot()
    try:
        pair, ref = spec["pair"], _wad(spec["pair"])
        keep_price(sim, pair, ref)
        pending = request_order(sim, spec)
        keep_price(sim, pair, open_wad)
        receipt = sim.keeper.execute_open(pending.request_id, pending.ciphertext)
        event = _opened(sim, receipt, pending.request_id)
        out: dict[str, Any] = {"pool_before": sim.pool_contract.call("poolBalance")}
        if event is None:
            reason = sim.session.events(receipt, "OpenRejected")[0]["reason"]
            return {**out, "rejected": RejectReason(reason).label}
        keep_price(sim, pair, close_wad)
        closed = close_position(sim, spec["account"], event["positionId"])
        payout = closed.payout_tokens
        return {**out, "rejected": None, "fill_wad": event["position"]["entryPrice"],
                "oracle_wad": event["charges"]["oraclePrice"], "qty": event["position"]["qty"],
                "exit_wad": closed.exit_price_wad, "pnl_wad": closed.pnl_wad,
                "slippage_wad": event["charges"]["slippageWad"], "notional_wad": event["position"]["notionalUsd"],
                "margin_wad": event["position"]["marginUsd"], "payout_tokens": payout,
                "pool_after": sim.pool_contract.call("poolBalance")}
    finally:
        sim.revert(snap)


def measure_shading(sim: Any, flow: list[dict[str, Any]], guard: dict[str, int], closes: bool = True) -> dict[str, Any]:
    """Each order opened and closed honestly, with the open shaded, and (`closes`) with both shaded."""
    scale = 10 ** (18 - sim.decimals)
    rows = {"open": [], "open_and_close": []}
    notional_usd = Decimal(0)
    for spec in flow:
        ref = _wad(spec["pair"])
        honest = open_and_close(sim, spec, ref, ref)
        if honest["rejected"]:
            continue
        notional_usd += Decimal(honest["notional_wad"]) / WAD
        shade = shaded_price_wad(ref, spec["is_long"], honest["slippage_wad"], guard["circuit_breaker_bps"],
                                 int(spec["take_profit"] * WAD))
        close_shade = shaded_price_wad(ref, not spec["is_long"], 0, guard["circuit_breaker_bps"])
        for name, close_wad in (("open", ref), ("open_and_close", close_shade))[:2 if closes else 1]:
            shaded = open_and_close(sim, spec, shade, close_wad)
            if shaded["rejected"]:
                raise AlpsimError(f"a shaded open inside the guard was refused: {shaded['rejected']}")
            cost = Decimal((honest["payout_tokens"] - shaded["payout_tokens"]) * scale) / WAD
            pool = Decimal((shaded["pool_after"] - honest["pool_after"]) * scale) / WAD
            rows[name].append((cost, pool, Decimal(honest["notional_wad"]) / WAD))
    return {"rows": rows, "notional_usd": notional_usd}


def open_all(sim: Any, flow: list[dict[str, Any]]) -> list[tuple[dict[str, Any], int]]:
    """Opens the flow honestly, a block of requests and one keeper batch per flow block."""
    out = []
    for block in sorted({o["block"] for o in flow}):
        specs = [o for o in flow if o["block"] == block]
        pending = [request_order(sim, spec) for spec in specs]
        receipt = sim.keeper.execute_open_batch([p.request_id for p in pending], [p.ciphertext for p in pending])
        for spec, p in zip(specs, pending):
            event = _opened(sim, receipt, p.request_id)
            if event is not None:
                out.append((spec, event["positionId"]))
    return out


def measure_trigger_shading(sim: Any, flow: list[dict[str, Any]], guard: dict[str, int]) -> dict[str, Any]:
    """The flow's positions open; for each pair and side, one trigger run at the breaker's edge
    against that side, against closes of the same positions at the honest price."""
    scale = 10 ** (18 - sim.decimals)
    snap = sim.snapshot()
    try:
        positions = open_all(sim, flow)
        liquidated, cost, notional = 0, Decimal(0), Decimal(0)
        for pair in sorted({s["pair"] for s, _ in positions}):
            ref = _wad(pair)
            for is_long in (True, False):
                ids = [(s["account"], pid) for s, pid in positions if s["pair"] == pair and s["is_long"] == is_long]
                if not ids:
                    continue
                inner = sim.snapshot()
                keep_price(sim, pair, shaded_price_wad(ref, not is_long, 0, guard["circuit_breaker_bps"]))
                hit = {c.position.id: c.payout_tokens for c in sim.closed_from(sim.keeper.run_triggers([p for _, p in ids]))
                       if c.reason == "liquidation"}
                sim.revert(inner)
                inner = sim.snapshot()
                keep_price(sim, pair, ref)
                for account, pid in ids:
                    if pid in hit:
                        notional += Decimal(sim.position(pid).notional_wad) / WAD
                        honest = _close(sim, account, pid)
                        cost += Decimal((honest - hit[pid]) * scale) / WAD
                        liquidated += 1
                sim.revert(inner)
        return {"positions": len(positions), "liquidated": liquidated, "cost_usd": cost,
                "liquidated_notional_usd": notional}
    finally:
        sim.revert(snap)


def _path(rng: np.random.Generator, blocks: int, block_time_s: float, volatility: float) -> np.ndarray:
    """Price relative to the request's block, at blocks 1..`blocks` (GBM, zero drift)."""
    dt = block_time_s / YEAR_S
    steps = volatility * np.sqrt(dt) * rng.standard_normal(blocks) - volatility**2 * dt / 2
    return np.exp(np.cumsum(steps))


def measure_timing(sim: Any, flow: list[dict[str, Any]], guard: dict[str, int], seed: int) -> dict[str, Any]:
    """Each order executed at the window's first block and at its worst block for the trader on
    a GBM path, both closed at the path's last price at the same block."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 29, 2])))
    window = guard["request_expiry_blocks"]
    block_time_s = float(sim.profile.block_time_s)
    scale = 10 ** (18 - sim.decimals)
    costs, model = [], []
    for spec in flow:
        path = _path(rng, window, block_time_s, VOLATILITY[spec["pair"]])
        worst = int(np.argmax(path) if spec["is_long"] else np.argmin(path)) + 1
        payouts = []
        for k in (1, worst):
            snap = sim.snapshot()
            try:
                ref = _wad(spec["pair"])
                keep_price(sim, spec["pair"], ref)
                pending = request_order(sim, spec)
                start = pending.receipt["blockNumber"]
                sim.devnet.mine(k - 1)
                keep_price(sim, spec["pair"], int(ref * path[k - 1]))
                receipt = sim.keeper.execute_open(pending.request_id, pending.ciphertext)
                event = _opened(sim, receipt, pending.request_id)
                if event is None:
                    break
                if receipt["blockNumber"] != start + k:
                    raise AlpsimError(f"executed in block {receipt['blockNumber']}, not the window's {start + k}")
                sim.devnet.mine(max(0, start + window - sim.devnet.block_number))
                keep_price(sim, spec["pair"], int(ref * path[-1]))
                payouts.append((_close(sim, spec["account"], event["positionId"]), event["position"]["notionalUsd"]))
            finally:
                sim.revert(snap)
        if len(payouts) == 2:
            cost = Decimal((payouts[0][0] - payouts[1][0]) * scale) / WAD
            costs.append((cost, Decimal(payouts[0][1]) / WAD))
    for pair, vol in VOLATILITY.items():
        paths = np.exp(np.cumsum(vol * np.sqrt(block_time_s / YEAR_S) * rng.standard_normal((MODEL_PATHS, window)), 1))
        model.append((pair, round(float(np.mean(paths.max(1) / paths[:, 0] - 1)) * BPS, 3)))
    return {"costs": costs, "model_bps": dict(model), "window_blocks": window, "block_time_s": block_time_s}


def measure_front_running(sim: Any, flow: list[dict[str, Any]]) -> dict[str, Any]:
    """The flow's FRONT_RUN_VICTIMS largest orders, each executed alone and with the keeper's own
    order of the same size, pair and side first in the same batch; the keeper closes after the
    victim, all at the unchanged price. Keeper's and pool's balances against the honest run."""
    scale = 10 ** (18 - sim.decimals)
    keeper = sim.keeper.address
    by_size = sorted(flow, key=lambda s: s["amount_usd"] * s["leverage"], reverse=True)[:FRONT_RUN_VICTIMS]
    rows = []
    for spec in by_size:
        results = []
        for front in (False, True):
            snap = sim.snapshot()
            try:
                keep_price(sim, spec["pair"], _wad(spec["pair"]))
                keeper_before = sim.collateral_units(keeper)
                mine = request_order(sim, spec, account=9) if front else None
                victim = request_order(sim, spec)
                queue = ([mine] if mine else []) + [victim]
                receipt = sim.keeper.execute_open_batch([p.request_id for p in queue], [p.ciphertext for p in queue])
                event = _opened(sim, receipt, victim.request_id)
                own = _opened(sim, receipt, mine.request_id) if mine else None
                if event is None or (front and own is None):
                    break
                payout = _close(sim, spec["account"], event["positionId"])
                if own is not None:
                    _close(sim, 9, own["positionId"])
                results.append({"payout": payout, "fill": event["position"]["entryPrice"],
                                "notional": event["position"]["notionalUsd"],
                                "keeper": sim.collateral_units(keeper) - keeper_before,
                                "pool": sim.pool_contract.call("poolBalance")})
            finally:
                sim.revert(snap)
        if len(results) == 2:
            honest, front = results
            rows.append({"victim_cost_usd": Decimal((honest["payout"] - front["payout"]) * scale) / WAD,
                         "notional_usd": Decimal(honest["notional"]) / WAD,
                         "keeper_pnl_usd": Decimal((front["keeper"] - honest["keeper"]) * scale) / WAD,
                         "pool_gain_usd": Decimal((front["pool"] - honest["pool"]) * scale) / WAD})
    return {"rows": rows}


def measure_bounds(sim: Any, spec: dict[str, Any], guard: dict[str, int]) -> list[dict[str, Any]]:
    """What the keeper cannot do, each tried once on chain with `spec`'s order."""
    out = []
    ref, pair = _wad(spec["pair"]), spec["pair"]
    scale = Decimal(10) ** sim.decimals

    def attempt(name: str, act: Any, before: Any = None) -> None:
        snap = sim.snapshot()
        try:
            keep_price(sim, pair, ref)
            if before is not None:
                before()
            pending = request_order(sim, spec)
            before = sim.collateral_units(spec["account"]), sim.collateral_units(sim.keeper.address)
            outcome = act(pending)
            refund = sim.collateral_units(spec["account"]) - before[0]
            status = sim.contracts["trading"].call("request", pending.request_id)["status"]
            out.append({"attempt": name, "outcome": outcome, "trader_refund_usd": str(Decimal(refund) / scale),
                        "escrow_usd": str(Decimal(pending.amount_units) / scale),
                        "request_still_pending": status == PENDING_STATUS,
                        "keeper_keeps_usd": str(Decimal(sim.collateral_units(sim.keeper.address) - before[1]) / scale)})
        finally:
            sim.revert(snap)

    def reverted(call: Any) -> str:
        try:
            call()
        except AlpsimError as exc:
            return getattr(exc, "error_name", type(exc).__name__)
        raise AlpsimError("the engine took a call it should have refused")

    def rejected(receipt: dict) -> str:
        return "OpenRejected " + RejectReason(sim.session.events(receipt, "OpenRejected")[0]["reason"]).label

    def change(p: Any) -> str:
        order, salt = sim.keeper.executions.reveal(p.ciphertext)
        return "TradingEngine.executeOpen reverts " + reverted(
            lambda: sim.keeper.executions.execute_open_revealed(p.request_id, (order[0], order[1], order[2] + 1) + order[3:],
                                                                salt))

    def far(p: Any) -> str:
        edge = shaded_price_wad(ref, spec["is_long"], 0, guard["circuit_breaker_bps"])
        keep_price(sim, pair, edge + (1 if spec["is_long"] else -1) * ref // BPS)
        return "PriceOracle.guardedPrice: " + rejected(sim.keeper.execute_open(p.request_id, p.ciphertext))

    def age_reference() -> None:  # the reference's last round older than the maximum age at execution
        sim.keeper.auto_refresh_reference = False
        sim.devnet.advance_time(guard["max_price_age_s"] + 1)

    def stale(p: Any) -> str:
        return "PriceOracle.guardedPrice: " + rejected(sim.keeper.execute_open(p.request_id, p.ciphertext))

    def refuse(p: Any) -> str:
        return "RequestBook.rejectOpen: " + rejected(sim.keeper.reject_open(p.request_id, RejectReason.UNDECRYPTABLE_ORDER))

    def expire(p: Any) -> str:
        sim.devnet.mine(guard["request_expiry_blocks"])
        late = reverted(lambda: sim.keeper.execute_open(p.request_id, p.ciphertext))
        sim.cancel(spec["account"], p.request_id)
        return f"TradingEngine.executeOpen reverts {late}; the trader's cancelRequest refunds the escrow"

    attempt("change the order (leverage + 1)", change)
    attempt("a price 1 bp beyond the breaker", far)
    attempt("a stale reference feed", stale, age_reference)
    attempt("refuse a valid order", refuse)
    attempt("let the window pass", expire)
    return out


def _usd(value: Decimal, places: str = "0.01") -> str:
    return str(value.quantize(Decimal(places)))


def _take_row(take: str, costs: list[tuple[Decimal, Decimal]], gainer: str, bound: str,
              pool_gain: Decimal | None = None) -> dict[str, Any]:
    """A take's row: `costs` are (trader's extra cost, notional) per order measured."""
    n = len(costs)
    cost = sum((c for c, _ in costs), Decimal(0))
    notional = sum((v for _, v in costs), Decimal(0))
    row = {"take": take, "orders": n, "per_1000_orders_usd": _usd(cost * 1000 / n) if n else None,
           "bp_of_notional": _usd(cost / notional * BPS, "0.001") if notional else None, "gainer": gainer, "bound": bound}
    if pool_gain is not None and n:
        row["pool_gain_per_1000_orders_usd"] = _usd(pool_gain * 1000 / n)
        row["keeper_as_lp_per_1000_orders_usd"] = _usd(pool_gain * LP_STAKE * 1000 / n)
    return row


def measure_keeper_adversary(chain: str = "bnb", orders: int = 100, seed: int = 1) -> dict[str, Any]:
    """What a keeper could take within the rules from `orders` of the crowd on `chain` (module
    docstring), each take with the rule that bounds it. JSON-able."""
    if chain not in CHAINS:
        raise ConfigError(f"unknown chain {chain!r} (known: {', '.join(CHAINS)})")
    if isinstance(orders, bool) or not isinstance(orders, int) or not 1 <= orders <= MAX_ORDERS:
        raise ConfigError(f"orders must be a whole number from 1 to {MAX_ORDERS:,}, got {orders!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be a whole number >= 0, got {seed!r}")
    flow = flow_orders(orders, seed)
    sim = launch_system(chain, seed)
    try:
        guard = guard_settings(sim)
        fee_usd = Decimal(sim.contracts["trading"].call("executionFeeTokens")) / Decimal(10) ** sim.decimals
        shading = measure_shading(sim, flow, guard)
        triggers = measure_trigger_shading(sim, flow, guard)
        timing = measure_timing(sim, flow, guard, seed)
        front = measure_front_running(sim, flow)
        bounds = measure_bounds(sim, flow[0], guard)
        # the proposal: the breaker at the worse-price band, so a keeper price can be off by no more
        sim.contracts["oracle"].transact("setGuardSettings", guard["max_price_age_s"], guard["worse_price_bps"],
                                         guard["worse_price_bps"], sender=sim.deployment.deployer)
        tight = measure_shading(sim, flow, guard_settings(sim), closes=False)
    finally:
        sim.stop()
    breaker = f"circuitBreakerBps = {guard['circuit_breaker_bps']}"
    rows = []
    for name, label, extra in (("open", "shade the open price to the breaker's edge", ""),
                               ("open_and_close", "shade the open and the close", "; executeClose: CloseRejected "
                                "CircuitBreaker beyond the band")):
        measured = shading["rows"][name]
        rows.append(_take_row(
            label, [(c, v) for c, _, v in measured], "the pool (LPs); the keeper only as an LP",
            f"PriceOracle.guardedPrice (TradingEngine.executeOpen): OpenRejected CircuitBreaker beyond {breaker} of "
            f"the reference; past worsePriceBps = {guard['worse_price_bps']} the worse price for the trader is used, "
            "the keeper's; the trader's take-profit (TakeProfitWrongSide) and acceptablePrice (SlippageExceeded) pull "
            f"it in{extra}; the loss stops at the margin",
            sum((p for _, p, _ in measured), Decimal(0))))
    rows.append(_take_row(
        f"the same, were the breaker at worsePriceBps = {guard['worse_price_bps']} (a proposal)",
        [(c, v) for c, _, v in tight["rows"]["open"]], "the pool (LPs); the keeper only as an LP",
        f"PriceOracle.setGuardSettings(maxAge, {guard['worse_price_bps']}, {guard['worse_price_bps']}): "
        "OpenRejected CircuitBreaker beyond 0.1% of the reference",
        sum((p for _, p, _ in tight["rows"]["open"]), Decimal(0))))
    per_order = triggers["cost_usd"] / orders if orders else Decimal(0)
    rows.append({"take": "shade a trigger run against each side in turn", "orders": orders,
                 "per_1000_orders_usd": _usd(per_order * 1000),
                 "bp_of_notional": _usd(triggers["cost_usd"] / shading["notional_usd"] * BPS, "0.001")
                 if shading["notional_usd"] else None,
                 "liquidated": f"{triggers['liquidated']} of {triggers['positions']} open positions",
                 "gainer": "the pool (LPs); the keeper only as an LP",
                 "bound": f"PriceOracle.guardedPrice in TradingEngine.runTriggers: the same {breaker} band; a "
                          "position past its liquidation line at the guarded price is liquidated"})
    rows.append(_take_row(
        "wait for the worst block of the window (hindsight; GBM at "
        + ", ".join(f"{v:.0%} a year for {p}" for p, v in VOLATILITY.items()) + ")", timing["costs"],
        "the pool (LPs); the keeper only as an LP",
        f"EngineStorage.executableRequest (TradingEngine.executeOpen): RequestNotExecutable after requestExpiryBlocks = "
        f"{guard['request_expiry_blocks']} blocks ({guard['request_expiry_blocks'] * timing['block_time_s']:g} s); "
        "expected move to the window's worst block, model: "
        + ", ".join(f"{p} {bp} bp" for p, bp in timing["model_bps"].items())))
    fr = front["rows"]
    if fr:
        pnl = sum((r["keeper_pnl_usd"] for r in fr), Decimal(0))
        pool = sum((r["pool_gain_usd"] for r in fr), Decimal(0))
        row = _take_row("front-run with its own order first in the batch",
                        [(r["victim_cost_usd"], r["notional_usd"]) for r in fr],
                        "the pool: both sides' slippage is paid to it (docs/mechanics.md section 7)",
                        "no rule is needed: the keeper pays slippage on its own open and close and the fees, "
                        "and the oracle price does not move", pool)
        row["keeper_pnl_per_order_usd"] = _usd(pnl / len(fr))
        row["keeper_net_at_lp_stake_per_order_usd"] = _usd((pnl + pool * LP_STAKE) / len(fr))
        row["break_even_lp_stake"] = _usd(-pnl / pool, "0.0001") if pool > 0 and pnl < 0 else None
        rows.append(row)
    rows.append({"take": "refuse a valid order (claim it undecryptable)", "orders": orders,
                 "per_1000_orders_usd": _usd(fee_usd * 1000), "bp_of_notional": None,
                 "gainer": "no one beyond the fee the keeper earns on an execution anyway: the trader pays X for no "
                           "position", "bound": "RequestBook.rejectOpen: only UndecryptableOrder or MalformedOrder "
                 "(InvalidRejectReason otherwise); A - X refunded; every rejection is public (OpenRejected): a keeper "
                 "refusing good orders shows as a rejection rate"})
    return {"chain": chain, "orders": orders, "seed": seed, "backend": "embedded", "guard": guard,
            "execution_fee_usd": str(fee_usd), "lp_stake": str(LP_STAKE), "rows": rows, "cannot": bounds}


def _cells(row: dict[str, Any]) -> list[str]:
    extra = []
    if "liquidated" in row:
        extra.append(f"liquidated {row['liquidated']}")
    if "keeper_pnl_per_order_usd" in row:
        extra.append(f"keeper's own P&L {row['keeper_pnl_per_order_usd']} USD an order, "
                     f"{row['keeper_net_at_lp_stake_per_order_usd']} with its LP share of the pool's gain; break-even "
                     f"LP stake {row['break_even_lp_stake']} of the pool")
    elif "keeper_as_lp_per_1000_orders_usd" in row:
        extra.append(f"to the pool {row['pool_gain_per_1000_orders_usd']}, the keeper at its stake "
                     f"{row['keeper_as_lp_per_1000_orders_usd']}")
    return [row["take"], str(row["orders"]), row["per_1000_orders_usd"] or "-", row["bp_of_notional"] or "-",
            "; ".join([row["gainer"]] + extra), row["bound"]]


def print_keeper_adversary(console: Console, result: dict[str, Any]) -> None:
    table = Table(title=f"the keeper as the adversary on {result['chain']} ({result['orders']} orders, seed "
                        f"{result['seed']}; keeper's LP stake {result['lp_stake']})")
    for col in ("take", "orders", "USD / 1,000 orders", "bp of notional", "who gains", "what bounds it"):
        table.add_column(col, justify="right" if col in ("orders", "USD / 1,000 orders", "bp of notional") else "left")
    for row in result["rows"]:
        table.add_row(*_cells(row))
    console.print(table)
    cannot = Table(title="what the keeper cannot do (each tried on chain)")
    for col in ("attempt", "outcome", "escrow", "trader gets back", "keeper keeps", "still pending"):
        cannot.add_column(col)
    for row in result["cannot"]:
        cannot.add_row(row["attempt"], row["outcome"], row["escrow_usd"], row["trader_refund_usd"],
                       row["keeper_keeps_usd"], "yes" if row["request_still_pending"] else "no")
    console.print(cannot)


def keeper_adversary_markdown(result: dict[str, Any]) -> str:
    lines = [f"{result['orders']} orders of the crowd on {result['chain']}, embedded EVM, seed {result['seed']}; the "
             f"keeper's LP stake {result['lp_stake']} (a placeholder):", "",
             "| take | orders | USD per 1,000 orders | bp of notional | who gains | what bounds it |",
             "|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(_cells(row)) + " |" for row in result["rows"]]
    lines += ["", "| the keeper tries | outcome | escrow | the trader gets back | the keeper keeps | still pending |",
              "|---|---|---|---|---|---|"]
    lines += [f"| {r['attempt']} | {r['outcome']} | {r['escrow_usd']} | {r['trader_refund_usd']} | "
              f"{r['keeper_keeps_usd']} | {'yes' if r['request_still_pending'] else 'no'} |" for r in result["cannot"]]
    return "\n".join(lines) + "\n"
