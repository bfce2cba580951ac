"""The extreme tier's close fee (leverage 500x to 1001x): at least 3 bp of the close
notional, rounded up. A trader who closes straight away makes no profit, so the minimum is
what they pay; a change of that minimum fails here with the rate the contracts now charge."""

from __future__ import annotations

from decimal import Decimal

from alpsim.testing import balance_change, emits

WAD = 10**18
MIN_CLOSE_FEE_BPS = 3
AMOUNT_USD = 100


def close_notional_wad(closed) -> int:
    return closed.position.qty_wad * closed.exit_price_wad // WAD


def test_extreme_tier_close_fee_is_3_bp_of_the_close_notional(alpsim, trader, lp, prices):
    opened = trader.open("BTC/USD", "long", AMOUNT_USD, 1000)
    closed = trader.close(opened.position.id)

    assert closed.pnl_wad < 0, "closed at the price it opened at: a loss (the spread), so the minimum fee applies"
    notional = close_notional_wad(closed)
    expected_fee = -(-notional * MIN_CLOSE_FEE_BPS // 10_000)
    charged_bps = Decimal(closed.close_fee_wad * 10_000) / Decimal(notional)
    assert closed.close_fee_wad == expected_fee, (
        f"extreme-tier close fee is {charged_bps:.4f} bp of the close notional, expected {MIN_CLOSE_FEE_BPS} bp "
        f"({closed.close_fee_wad} wad charged, {expected_fee} wad expected)")


def test_extreme_tier_close_pays_the_trader_what_the_event_says(alpsim, trader, lp, prices):
    opened = trader.open("ETH/USD", "short", AMOUNT_USD, 1001)
    position_id = opened.position.id
    with emits(alpsim, "PositionClosed", positionId=position_id, trader=trader.address) as capture, \
            balance_change(alpsim, {"trader": trader}) as change:
        closed = trader.close(position_id)

    settlement = capture.event["settlement"]
    assert settlement["closeFeeUsd"] == closed.close_fee_wad
    payout = Decimal(settlement["payoutTokens"]).scaleb(-alpsim.decimals)
    change.check(trader=payout)
    assert closed.close_fee_wad >= -(-close_notional_wad(closed) * MIN_CLOSE_FEE_BPS // 10_000)
