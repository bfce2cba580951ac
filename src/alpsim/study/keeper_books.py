"""The keeper on one study path: when it pushes prices (`PushPolicy`, the study's `keeper.push`)
and what it did, counted from the transactions the chain received from it (`KeeperCounter`).
Nothing here prices gas: the path returns counts, and the driver prices them with the gas
measured once for the study on the exact EVM (`keeper_report`)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ..client import Alpsim
from ..units import WAD
from .keeper_spec import KeeperSpec

PUSH_CALLS = ("runTriggers", "updatePrices")
"""The keeper's transactions that record prices on their own (a push): the round's trigger run
carries every priced pair's price; `updatePrices` is a push with no trigger."""
OPEN_CALLS = ("executeOpen", "executeOpenBatch")
CLOSE_CALLS = ("executeClose", "executeCloseBatch")
CLOSED_BY = {0: "closes", 1: "take_profits", 2: "stop_losses", 3: "liquidations"}
"""Settlement.reason (Types.sol CloseReason) -> the counter it adds to."""


class PushPolicy:
    """Which pairs the keeper pushes at a step. `every_block`: all of them, every step (the
    runner's round, as before). `on_change`: a pair whose price moved at least `push_change`
    from its last pushed price. `seconds`: a pair last pushed `push_every_s` or more ago. In
    both, also a pair whose last push would reach the oracle's maximum age by the next step
    (`now - last + step >= max_age`), so a keeper price is never stale when read."""

    def __init__(self, spec: KeeperSpec, step_s: int, max_age_s: int, start_wad: dict[int, int]):
        self.spec, self.step_s, self.max_age_s = spec, step_s, max_age_s
        self.last: dict[int, tuple[int, int]] = {pid: (wad, 0) for pid, wad in start_wad.items()}
        """pair id -> (its last pushed price, 18 decimals; when, s into the path)"""

    @property
    def every_block(self) -> bool:
        return self.spec.push == "every_block"

    def due(self, prices_wad: dict[int, int], now_s: int) -> set[int]:
        out = set()
        for pid, wad in prices_wad.items():
            last = self.last.get(pid)
            if last is None or now_s - last[1] + self.step_s >= self.max_age_s:
                out.add(pid)
            elif self.spec.push == "on_change":
                if Decimal(abs(wad - last[0])) >= self.spec.push_change * last[0]:
                    out.add(pid)
            elif self.spec.push == "seconds" and now_s - last[1] >= (self.spec.push_every_s or 0):
                out.add(pid)
        return out

    def pushed(self, pair_ids: set[int], prices_wad: dict[int, int], now_s: int) -> None:
        for pid in pair_ids:
            self.last[pid] = (prices_wad[pid], now_s)


def empty_counts() -> dict[str, Any]:
    return {"price_pushes": 0, "pairs_pushed": 0, "opens": 0, "open_batches": {}, "rejects_in_batch": 0,
            "reject_opens": 0, "closes": 0, "close_items": 0, "take_profits": 0, "stop_losses": 0,
            "liquidations": 0, "liquidation_batches": {}, "trigger_runs_closing": 0,
            "execution_fees_usd": 0.0, "bad_debt_usd": 0.0, "bad_debt_positions": 0, "other_calls": {}}


class KeeperCounter:
    """Listens to the session while a path runs and counts each transaction the keeper sent the
    trading engine: price pushes (a trigger run or `updatePrices`; the pairs they carried),
    opens by batch size (`open_batches`: items in the transaction -> transactions; an item is an
    open executed or one rejected by a check at execution), rejections (`rejectOpen`), closes,
    take-profits, stop-losses, liquidations (`liquidation_batches`: liquidations in one trigger
    run -> runs), the execution fees paid to it (USD: the collateral at 1 USD) and the bad debt
    of every settlement. Reference-feed answers (Chainlink's on a real chain, not the keeper's)
    and basket asset prices (`setAssetPrices`) are not the trading engine's and are not counted."""

    def __init__(self, sim: Alpsim):
        self.sim = sim
        self.keeper = sim.deployment.keeper.lower()
        self.trading = sim.contracts["trading"].address.lower()
        self.decimals = sim.decimals
        self.counts = empty_counts()
        sim.session.receipt_listeners.append(self._heard)

    def close(self) -> dict[str, Any]:
        """Stops listening; the counts, batch sizes as text keys (JSON)."""
        if self._heard in self.sim.session.receipt_listeners:
            self.sim.session.receipt_listeners.remove(self._heard)
        c = self.counts
        for key in ("open_batches", "liquidation_batches"):
            c[key] = {str(k): v for k, v in sorted(c[key].items())}
        return c

    def _heard(self, tx: dict, receipt: dict) -> None:
        if str(tx.get("from", "")).lower() != self.keeper or str(tx.get("to", "")).lower() != self.trading:
            return
        session, c = self.sim.session, self.counts
        function = session.describe_call(tx["to"], tx.get("data"))[1]
        events = session.events(receipt, ("PriceUpdated", "PositionOpened", "OpenRejected", "PositionClosed",
                                          "CloseRejected"))
        kinds = [e["event"] for e in events]
        for e in events:
            if e["event"] == "PositionOpened":
                c["execution_fees_usd"] += e["charges"]["executionFeeTokens"] / 10**self.decimals
            elif e["event"] == "OpenRejected":
                c["execution_fees_usd"] += e["executionFeeTokens"] / 10**self.decimals
            elif e["event"] == "PositionClosed":
                self._settled(e)
        if function in PUSH_CALLS:
            c["price_pushes"] += 1
            c["pairs_pushed"] += kinds.count("PriceUpdated")
            liquidated = sum(1 for e in events if e["event"] == "PositionClosed" and e["settlement"]["reason"] == 3)
            if liquidated:
                c["liquidation_batches"][liquidated] = c["liquidation_batches"].get(liquidated, 0) + 1
            c["trigger_runs_closing"] += int("PositionClosed" in kinds)
        elif function in OPEN_CALLS:
            items = kinds.count("PositionOpened") + kinds.count("OpenRejected")
            c["opens"] += kinds.count("PositionOpened")
            c["rejects_in_batch"] += kinds.count("OpenRejected")
            c["open_batches"][items] = c["open_batches"].get(items, 0) + 1
        elif function == "rejectOpen":
            c["reject_opens"] += 1
        elif function in CLOSE_CALLS:
            c["close_items"] += kinds.count("PositionClosed") + kinds.count("CloseRejected")
        else:
            c["other_calls"][str(function)] = c["other_calls"].get(str(function), 0) + 1

    def _settled(self, event: dict) -> None:
        """One settlement: its kind, and its bad debt: the loss beyond the margin that nobody
        pays, `-(margin + pnl - holding - funding)` when below zero (Settlement.sol's
        waterfall: the close fee is cut first; the trader gets nothing)."""
        c, st = self.counts, event["settlement"]
        c[CLOSED_BY[st["reason"]]] += 1
        available_wad = event["position"]["marginUsd"] + st["pnlUsd"] - st["holdingUsd"] - st["fundingUsd"]
        if available_wad < 0:
            c["bad_debt_usd"] += -available_wad / WAD
            c["bad_debt_positions"] += 1


def receipt_items(sim: Alpsim, receipt: dict) -> dict[str, int]:
    """Per receipt, the batch sizes a study's rows record: opens executed or rejected in it
    (`open`) and settlements by reason (`close`, `take_profit`, ...)."""
    events = sim.session.events(receipt, ("PositionOpened", "OpenRejected", "PositionClosed"))
    out = {"open": sum(1 for e in events if e["event"] in ("PositionOpened", "OpenRejected"))}
    for e in events:
        if e["event"] == "PositionClosed":
            reason = ("close", "take_profit", "stop_loss", "liquidation")[e["settlement"]["reason"]]
            out[reason] = out.get(reason, 0) + 1
    return out
