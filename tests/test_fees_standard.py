"""Standard tier (leverage < 500): 8 bp of notional to open, 8 bp of close notional to close
(docs/mechanics.md section 4), on both chain profiles, checked against docs/mechanics.md arithmetic and the model."""

from __future__ import annotations

from decimal import Decimal

TRADER = 1


def _units(sim, amount) -> int:
    return sim.to_units(amount)


def test_open_fee_is_8bp_of_notional_out_of_the_amount(mirror):
    sim = mirror.sim
    mirror.fund(TRADER, 1000)
    opened = mirror.open(TRADER, "BTC/USD", "long", 1000, 10)
    p = opened.position
    scale = 10 ** (18 - sim.decimals)
    net = _units(sim, 1000) - opened.execution_fee_tokens
    # docs/mechanics.md §5.3: M = (A - X) / (1 + L x f), rounded down to the token's unit
    expected_margin = int(Decimal(net) / (1 + Decimal(10) * Decimal("0.0008")))
    assert p.margin_tokens == expected_margin
    assert p.notional_wad == 10 * p.margin_wad
    assert opened.open_fee_tokens == net - p.margin_tokens  # the rest of (A - X) is the fee
    # the fee is f x N, rounded up to the token unit
    # (M rounds down, so the fee is at most one token unit x (1 + L f) above f x N)
    assert 0 <= opened.open_fee_wad - p.notional_wad * 8 // 10_000 <= scale
    assert opened.fee_discount_bps == 0


def test_close_fee_is_8bp_of_close_notional(mirror):
    mirror.fund(TRADER, 1000)
    opened = mirror.open(TRADER, "ETH/USD", "short", 1000, 20)
    mirror.set_prices({"ETH/USD": 2_950})
    closed = mirror.close(TRADER, opened.position.id)
    close_notional = closed.position.qty_wad * closed.exit_price_wad // 10**18
    assert closed.close_fee_wad == -(-close_notional * 8 // 10_000)  # rounded up
    assert closed.pnl_wad > 0
    assert closed.payout_wad == closed.position.margin_wad + closed.pnl_wad - closed.close_fee_wad \
        - closed.holding_wad - closed.funding_wad
