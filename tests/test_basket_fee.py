"""The basket's dynamic fee in the reference model (docs/mechanics.md section 10, "The dynamic
fee"): figures of the curve, and the properties that make it ungameable (splitting, round
trips), over random baskets. The document's worked examples run on chain and in the model in
tests/test_basket_worked_examples.py."""

from __future__ import annotations

import random

import pytest

from alpsim.model.pool import fee_usd, tokens_for_usd, toward_usd, value_usd

U = 10**18


def test_a_deposit_at_target_pays_30_bp():
    # BNB exactly 8% of 1,000,000; 10 BNB in at 600.00 (reference 600.30)
    a = value_usd(10 * U, 18, 600 * U)
    assert a == 6_000 * U
    assert fee_usd(80_000 * U, 1_000_000 * U, 800, a, True) == 18 * U


def test_a_deposit_to_target_pays_20_bp_and_across_it_25():
    assert toward_usd(60_000 * U, 980_000 * U, 800, 10**30, True) == 20_000 * U
    assert fee_usd(60_000 * U, 980_000 * U, 800, 20_000 * U, True) == 40 * U
    assert fee_usd(60_000 * U, 980_000 * U, 800, 40_000 * U, True) == 100 * U


def test_fees_with_usdc_at_088_on_arbitrum():
    usdc_usd = value_usd(600_000 * 10**6, 6, 88 * U // 100)
    assert usdc_usd == 528_000 * U
    total = usdc_usd + 400_000 * U
    assert fee_usd(usdc_usd, total, 6000, 100_000 * U, True) == 228 * U
    assert fee_usd(usdc_usd, total, 6000, 10_000 * U, False) == 30 * U
    fee = fee_usd(300_000 * U, total, 3000, 10_000 * U, False)
    assert fee == 20 * U
    assert tokens_for_usd(10_000 * U - fee, 6, U) == 9_980 * 10**6


def test_one_asset_basket_pays_the_base_fee():
    assert fee_usd(1_000 * U, 1_000 * U, 10_000, 400 * U, True) == 1 * U
    assert fee_usd(1_000 * U, 1_000 * U, 10_000, 400 * U, False) == 1 * U


def _apply(value, total, action, is_deposit):
    sign = 1 if is_deposit else -1
    return value + sign * action, total + sign * action


@pytest.mark.parametrize("seed", range(20))
def test_splitting_never_pays_less(seed):
    rng = random.Random(seed)
    target = rng.choice([500, 800, 3000, 6000])
    total = rng.randrange(10**5, 10**7) * U
    value = total * rng.randrange(0, 2 * target) // 10_000
    is_deposit = rng.random() < 0.5
    action = rng.randrange(1, max(2, value // U if not is_deposit else total // U // 5)) * U
    whole = fee_usd(value, total, target, action, is_deposit)
    pieces, v, t, left = 0, value, total, action
    for _ in range(9):
        part = left // 2
        pieces += fee_usd(v, t, target, part, is_deposit)
        v, t = _apply(v, t, part, is_deposit)
        left -= part
    pieces += fee_usd(v, t, target, left, is_deposit)
    assert pieces >= whole
    assert pieces - whole <= 10 * U // 10**6  # rounding only: a few base units per piece, never more


@pytest.mark.parametrize("seed", range(20))
def test_round_trip_costs_twice_the_base(seed):
    rng = random.Random(seed)
    target = rng.choice([500, 800, 3000, 6000])
    total = rng.randrange(10**5, 10**7) * U
    value = total * rng.randrange(0, 2 * target) // 10_000
    action = rng.randrange(1, total // U // 5) * U
    there = fee_usd(value, total, target, action, True)
    v, t = _apply(value, total, action, True)
    back = fee_usd(v, t, target, action, False)
    assert abs((there + back) - 2 * action * 25 // 10_000) <= 2
