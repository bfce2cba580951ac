"""The mutation study's catalog: single-line mutants of the shipped contracts, and the code
that makes one (a copy of `contracts/` where exactly one line differs).

A site names its file (under `contracts/`), an anchor that finds exactly one line of it (the
line's text without its indentation, or `re:` and a regular expression searched in each line),
the operator (`operators.py`) and the piece of the line it acts on (`target`; the whole line
when empty).
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from .operators import MutationError, apply_operator

__all__ = ["CATALOG", "Mutant", "Site", "by_ids", "locate", "make_mutant", "mutate_text"]


@dataclass(frozen=True)
class Site:
    id: str
    file: str
    """Path under the contracts folder, e.g. `pool/AlpPool.sol`."""
    anchor: str
    operator: str
    target: str
    description: str


@dataclass(frozen=True)
class Mutant:
    site: Site
    line_no: int
    """1-based line number in the file."""
    original: str
    mutated: str


S = Site
CATALOG: tuple[Site, ...] = (
    # ---- AlpPool: deposits, withdrawals, reserve, fees
    S("M01", "pool/AlpPool.sol", "uint256 public constant MINIMUM_LIQUIDITY = 1_000;", "constant", "1_000",
      "the first deposit locks one ALP unit more than its MINIMUM_LIQUIDITY"),
    S("M02", "pool/AlpPool.sol", "if (amountOut > balance || balanceAfterUsd * maxReserveBps < reserveUsd * BPS) {",
      "check-deleted", "", "a withdrawal no longer checks the pool balance and the reserve it must cover"),
    S("M03", "pool/AlpPool.sol", "alpOut = Math.mulDiv(q.netUsdTimesBps, q.supply, navUsd * BPS);", "rounding",
      "Math.mulDiv(q.netUsdTimesBps, q.supply, navUsd * BPS)",
      "ALP out of a deposit rounds up (against the pool) instead of down"),
    S("M04", "pool/AlpPool.sol", "return amountUsd * (BPS - baseBps - spread) + 2 * spread * toward;", "arithmetic",
      "baseBps - spread", "the dynamic mint fee adds its spread where it subtracts it"),
    S("M05", "pool/AlpPool.sol", "uint16 public mintFeeBps = 25;", "constant", "25",
      "the mint fee is one basis point higher (26 bp)"),
    S("M06", "pool/AlpPool.sol", "outUsd = Math.mulDiv(alpAmount * (BPS - baseBps - spread), navUsd, supply * BPS);",
      "rounding", "Math.mulDiv(alpAmount * (BPS - baseBps - spread), navUsd, supply * BPS)", "a withdrawal's USD out rounds up (against the pool) instead of down"),
    S("M07", "pool/AlpPool.sol", "uint16 public maxReserveBps = 8_000;", "constant", "8_000",
      "the reserve may use one basis point more of the pool balance (80.01%)"),
    S("M08", "pool/AlpPool.sol", "if (block.timestamp < unlocksAt) revert Errors.CooldownActive(holder, unlocksAt);",
      "check-deleted", "", "the withdrawal cooldown is not enforced"),
    # ---- OpenPipeline: admission checks, reserve, cost basis
    S("M09", "trading/OpenPipeline.sol",
      "if (ctx.pool.reserveCapacityUsd() < c.maxProfitUsd) return RejectReason.ReserveExceeded;",
      "check-deleted", "", "an open no longer checks the pool's reserve capacity"),
    S("M10", "trading/OpenPipeline.sol",
      "if (order.leverage == 0 || order.leverage > c.pair.maxLeverage) return RejectReason.LeverageOutOfRange;",
      "relational", "order.leverage > c.pair.maxLeverage", "an open at exactly the pair's maximum leverage is rejected"),
    S("M11", "trading/OpenPipeline.sol", "c.extreme = order.leverage >= s.extremeLeverage;", "relational",
      "order.leverage >= s.extremeLeverage",
      "an open at exactly the extreme-tier leverage (500x) is priced as standard"),
    S("M12", "trading/OpenPipeline.sol", "uint256 costUsd = Math.mulDiv(c.qty, c.fill, WAD);", "rounding", "Math.mulDiv(c.qty, c.fill, WAD)",
      "the cost basis booked in the market at open rounds up instead of down"),
    # ---- Settlement, EngineSettings: fees, payouts
    S("M13", "trading/Settlement.sol",
      "uint256 treasuryAmount = amount * (BPS - $.settings.poolFeeShareBps) / BPS;", "fee-split",
      "(BPS - $.settings.poolFeeShareBps)",
      "an open fee's split sends one basis point of it more to the treasury, less to the pool"),
    S("M14", "trading/EngineSettings.sol", "s.poolFeeShareBps = 5000;", "constant", "5000",
      "the pool's share of every fee is one basis point higher (50.01%)"),
    S("M15", "trading/Settlement.sol",
      "uint256 collateralFee = Units.usdToTokenUp(st.closeFeeUsd, ctx.tokenToUsdScale);", "rounding",
      "usdToTokenUp(",
      "the close fee in collateral tokens rounds down instead of up"),
    S("M16", "trading/Settlement.sol", "st.payoutUsd = st.reason == CloseReason.Liquidation || available <= 0",
      "relational", "st.reason == CloseReason.Liquidation",
      "closes pay out nothing unless liquidated, and liquidations pay out"),
    S("M17", "trading/EngineSettings.sol", "s.closeFeeBps = 8;", "constant", "8",
      "the standard close fee is one basis point higher (9 bp)"),
    # ---- Market and the engine: funding and holding accrual
    S("M18", "trading/TradingEngine.sol", "market.accrue(pairId).updatedAt; // the new indexes are emitted by the market",
      "call-deleted", "", "a new keeper price no longer accrues the pair's indexes first"),
    S("M19", "trading/Market.sol", "uint256 private constant HOUR = 3600;", "constant", "3600",
      "holding and funding accrue per 3,601 seconds instead of per hour"),
    S("M20", "trading/Market.sol", "if (settledElapsed == elapsed) {", "relational", "settledElapsed == elapsed",
      "the lighter side receives funding for time its pair's price was not settled"),
    S("M21", "trading/Market.sol", "return a >= 0 ? a / b : -((-a + b - 1) / b);", "rounding", "(-a + b - 1)",
      "the pool claim's floor division of negative funding rounds toward zero"),
    # ---- PriceOracle: guards
    S("M22", "oracle/PriceOracle.sol",
      "if (kp.price == 0 || ref == 0 || block.timestamp > kp.updatedAt + maxAge || block.timestamp > refAt + maxAge) {",
      "check-deleted", "", "the trade guard's freshness check is removed (stale prices execute)"),
    S("M23", "oracle/PriceOracle.sol", "if (gapTimesBps > worsePriceBps * ref) {", "check-deleted", "",
      "the worse-price rule is removed (the keeper price always executes)"),
    S("M24", "oracle/PriceOracle.sol",
      "if (ref == 0 || block.timestamp > refAt + maxAge) revert Errors.ReferenceStale(priceId, refAt, maxAge);",
      "check-deleted", "", "a basket asset's reference price is used however stale"),
    S("M25", "oracle/PriceOracle.sol", "uint32 public circuitBreakerBps = 100;", "constant", "100",
      "the circuit breaker trips one basis point later (101 bp)"),
    # ---- RequestBook: escrow, refunds, expiry
    S("M26", "trading/RequestBook.sol",
      "if (amountIn <= feeTokens) revert Errors.AmountBelowExecutionFee(amountIn, feeTokens);", "relational",
      "amountIn <= feeTokens", "a request of exactly the execution fee is accepted"),
    S("M27", "trading/RequestBook.sol", "uint256 refund = r.amountIn - feeTokens;", "arithmetic", "r.amountIn - feeTokens",
      "a rejected undecryptable order refunds amount + fee instead of amount - fee"),
    S("M28", "trading/RequestBook.sol",
      "if (block.number <= expiresAfter) revert Errors.RequestNotExpired(requestId, expiresAfter);", "relational",
      "block.number <= expiresAfter", "a request can be cancelled in the last block the keeper may still execute it"),
    # ---- TradeMath, Units, Triggers: rounding, pnl, triggers
    S("M29", "libraries/TradeMath.sol", "return -int256(Math.mulDiv(uint256(-a), b, WAD, Math.Rounding.Ceil));",
      "rounding", "Math.Rounding.Ceil", "a negative pnl rounds toward zero (in the trader's favour)"),
    S("M30", "libraries/TradeMath.sol", "if (a >= 0) return int256(Math.mulDiv(uint256(a), b, WAD, Math.Rounding.Ceil));",
      "rounding", "Math.Rounding.Ceil", "a holding or funding charge rounds down (in the trader's favour)"),
    S("M31", "libraries/TradeMath.sol",
      "return spreadBps * BP_WAD + Math.mulDiv(sideOiUsd + notionalUsd, WAD / 100, depth1PctUsd, Math.Rounding.Ceil);",
      "constant", "WAD / 100", "price impact is computed per 1/101 instead of per 1% of depth"),
    S("M32", "libraries/TradeMath.sol",
      "int256 move = isLong ? int256(exitPrice) - int256(entryPrice) : int256(entryPrice) - int256(exitPrice);",
      "arithmetic", "int256(entryPrice) - int256(exitPrice)", "a short's pnl adds the prices instead of subtracting"),
    S("M33", "libraries/Units.sol", "return Math.ceilDiv(usd, tokenToUsdScale);", "rounding", "Math.ceilDiv(usd, tokenToUsdScale)",
      "USD -> collateral for charges rounds down (the execution fee, the close fee)"),
    S("M34", "trading/Triggers.sol", "if (p.isLong ? price >= p.takeProfit : price <= p.takeProfit) {", "relational",
      "price >= p.takeProfit", "a long's take-profit does not trigger at exactly its price"),
    S("M35", "trading/Triggers.sol", "if (cache.reason != RejectReason.None) return false;", "check-deleted", "",
      "triggers run at a price the guard refused (stale, breaker)"),
)


def by_ids(ids: list[str] | None) -> list[Site]:
    """The sites named (all when None), in catalog order; a ValueError names an unknown id."""
    if not ids:
        return list(CATALOG)
    known = {s.id: s for s in CATALOG}
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise ValueError(f"unknown mutant id(s): {', '.join(unknown)} (known: {CATALOG[0].id} to {CATALOG[-1].id})")
    wanted = set(ids)
    return [s for s in CATALOG if s.id in wanted]


def _matches(anchor: str, line: str) -> bool:
    if anchor.startswith("re:"):
        return re.search(anchor[3:], line) is not None
    return line.strip() == anchor


def locate(site: Site, text: str) -> int:
    """The 0-based index of the one line of `text` the site's anchor finds; MutationError when
    it finds none or more than one."""
    hits = [i for i, line in enumerate(text.split("\n")) if _matches(site.anchor, line)]
    if len(hits) != 1:
        raise MutationError(f"{site.id}: anchor {site.anchor!r} matches {len(hits)} lines of {site.file}, not one")
    return hits[0]


def mutate_text(site: Site, text: str) -> tuple[str, Mutant]:
    """`text` (the site's file) with the site's line mutated, and the mutant's record."""
    lines = text.split("\n")
    index = locate(site, text)
    original = lines[index]
    mutated = apply_operator(site.operator, original, site.target or None)
    lines[index] = mutated
    return "\n".join(lines), Mutant(site, index + 1, original, mutated)


def make_mutant(site: Site, source: Path, dest: Path) -> Mutant:
    """Copies the contracts folder `source` to `dest` (replaced if there) with the site's line
    mutated; `source` is left as it is."""
    path = Path(source) / site.file
    if not path.is_file():
        raise MutationError(f"{site.id}: no file {site.file} under {source}")
    text, mutant = mutate_text(site, path.read_text())
    dest = Path(dest)
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(source, dest)
    (dest / site.file).write_text(text)
    return mutant
