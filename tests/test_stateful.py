"""Invariants under random play (hypothesis RuleBasedStateMachine) on the embedded devnet,
both chain profiles. Every action of every actor is a rule, hostile ones included: a keeper
gap (hours to a week without the keeper, then its round: fresh prices for every pair and the
triggers of every open position in one transaction), a griefer's open requests the keeper
cannot use (random bytes, a well-encrypted garbage plaintext, a real order under a wrong
commitment: each rejected on chain with `rejectOpen`), an LP withdrawing right after a bare
price push (no triggers: refused with PriceNotSettled exactly when the model refuses, i.e. when
the push changed a price, nothing lost), and inputs past the types' limits (`extreme_inputs`:
amounts and prices over 2^128, an unknown pair, settings past their storage types). LPs deposit and
withdraw after the keeper's round (its triggers settle the prices, as LPs need). In the middle
of a gap:

- `reference_outage`: the reference feeds get no new round for 5 to 180 minutes while the
  keeper pushes every minute, a bare `updatePrices` and its trigger round in turn (halfway an
  LP tries to deposit, the other to withdraw and a trader to open: refused or rejected as the
  model says); then the feeds return and the keeper's round runs,
- `breaker_trip`: a reference feed moves 1.01% to 5% from the keeper's price and stays (fresh)
  for 1 to 90 minutes of the same keeper pricing and attempts; then it comes back,
- `fee_raise`: the admin changes the execution fee (0 to 20,000 USD: far above the pending
  amounts) while open requests are pending; their executions, rejections and cancels charge
  the fee each stored when made (the Mirror compares the fees paid and every pending
  request's stored fee with the model's),
- `basket_deposit`, `basket_withdraw`, `move_asset_price`: LPs deposit and withdraw every
  basket asset besides the payout stablecoin (USDC, BNB, ETH, BTC on bnb; USDT, ETH, BTC on
  arbitrum) while asset prices move, the stablecoins' and BNB's too: the keeper's price and
  the reference feed apart, mostly within the 1% breaker and now and then past it (refused as
  the model refuses),
- `settings_change`: after part of a keeper gap the admin changes the maximum price age, the
  circuit breaker or the holding and funding rates, and sets it back after more of it (the
  keeper's round in between or not): the model accrues every pair first, as the contracts
  must, so a setting applied backwards shows as an index mismatch.

After every step:

- the chain equals the reference model (positions, balances, indexes, aggregates, NAV, ALP
  prices, ALP holdings: the Mirror compares after each action),
- conservation: the collateral held by pool, escrow, treasury, keeper, traders, griefer and LPs
  sums to what was minted, to the unit; so does every other basket asset held by the pool and
  the LPs, on chain and in the model, and the pool's balance of each is its booked holdings,
- the pool covers its reserve; the escrow holds exactly the pending requests plus the open
  margins (so every request can still end executed, rejected or cancelled with its refund),
- no trader receives more than margin plus the capped profit,
- a deposit or withdrawal moves the ALP price only up; a deposit mints at most the amount less
  the lowest fee (20 bp), a withdrawal pays at most the ALP's worth at the redemption price
  less the lowest fee,
- a rejected hostile request costs its sender exactly the execution fee its request stored,
- every revert a rule meets is a custom error of the contracts' ABIs: never a Panic, an
  `Error(string)` or undecodable data.

A second machine (`EconomicMachine`: the same rules but `move_price`, `reference_gap` and the
basket rules, so the keeper's prices never move and the pool holds the payout stablecoin alone;
the reference may, in `breaker_trip`, as a tripped breaker is the point) also checks the economics after every step (and between two LP actions of one
rule, so that E3 knows who held ALP when the others paid in), with every open position valued
at the keeper price as if settled now, its close fee left out:

  value  = max(0, margin + pnl - holding - funding)     (the trader's; model.accrued_charges)
  claim  = margin - value = min(margin, holding + funding - pnl)   (the pool's)
  collectible NAV = pool balance + sum of the claims;  collectible price = that / ALP supply

- E1 the collectible price never falls (rounding: 4 wei per position and one token unit of
  NAV). With prices fixed, the pool only gains: fees, trader slippage, holding and funding
  (its share of close fees lands at settlement). It is the yardstick and not the pool's
  `redeemAlpPrice()`, because that price by construction falls while a lighter side accrues
  funding (it keeps what the pool owes that side and leaves out what the heavier side owes),
  and rises back when the heavier side pays (tests/test_lp_attacks.py shows it).
- E2 the traders as a group (t1..t4 and the griefer) never gain: the sum of their collateral,
  pending open escrow and position values never rises (same rounding). Funding only moves
  value from the heavier side to the lighter one and the pool, holding to the pool.
- E3 no LP-only actor (lp5, lp6 never trade) gains by its own actions: its value (collateral +
  ALP x collectible price) never grows by more than its previous ALP x the rise of the
  collectible price (what the others paid into the pool since). Deposits price ALP at NAV
  (>= collectible), withdrawals at the redemption NAV: neither may take value from the others.
- E4 an honest LP (LP-only: lp5, which deposits 2,000,000 at the start, and lp6) can at every
  step redeem its ALP, at the chain's `redeemAlpPrice()` less the burn fee, for at least its
  deposits x (1 - 0.30%) x (1 - 0.30%) (the highest mint and burn fees) less what it withdrew. Rounding: the first deposit's
  locked minimum liquidity (1,000 wei), a wei of price per ALP, 4 wei a position and one token
  unit per withdrawal. The redemption price dips between prices only by what lighter sides
  receive in funding while their price is settled (at most the maximum age after the last
  trigger round), which what the pool has earned covers.

Every machine runs on the revm backend. `make test` runs a fixed, seeded budget (4 machines x 25
examples x 30 steps, at least 2,000 steps); `make soak` a long one (ALPSIM_SOAK_EXAMPLES x ALPSIM_SOAK_STEPS per
machine, default 100 x 60).
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, replace
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule

from alpsim.client import Alpsim, CloseRejected, OrderRejected
from alpsim.errors import ContractRevert, ErrorString, Panic, UnknownRevert
from alpsim.keys import decrypt_with, encrypt_to_seeded
from alpsim.mirror import Mirror
from alpsim.model.math import pnl_usd_floor
from alpsim.model.pool import MINIMUM_LIQUIDITY
from alpsim.model.errors import ModelRefusal
from alpsim.model.tokens import ESCROW, POOL, TREASURY
from alpsim.orders import ORDER_ECIES, UndecryptableOrder, commitment, decode_order, seal
from alpsim.protocol import Order, RejectReason
from alpsim.units import to_units

PAIRS = {"BTC/USD": (60_000, 1001), "ETH/USD": (3_000, 1001), "SOL/USD": (150, 100), "AAPL/USD": (200, 50)}
TRADERS = [1, 2, 3, 4]
LPS = [5, 6]
GRIEFER = 10
"""Sends open requests the keeper cannot use (accounts 8 and 9 are the treasury and keeper)."""
ACCOUNTS = 11
WAD = 10**18
BPS = 10_000
EXAMPLES = int(os.environ.get("ALPSIM_SOAK_EXAMPLES", "25"))
STEPS = int(os.environ.get("ALPSIM_SOAK_STEPS", "30"))
"""The CI budget: 4 machines x 25 examples x up to 30 steps, about 2,800 steps (at least
CI_MIN_STEPS, checked), on revm (a few milliseconds of EVM a step; the model and the checks take
most of the time). `make soak` runs 4 x 100 x 60, about 24,000."""
CI_MIN_STEPS = 2_000
STATS = {"steps": 0, "checks": 0, "economic_checks": 0, "by_machine": {}, "basket": {}}
"""`basket`: the basket rules' outcomes (deposit, withdraw, or the refusal's name)."""

_SIMS: dict[tuple[str, str], Alpsim] = {}
NAMES = {1: "t1", 2: "t2", 3: "t3", 4: "t4", 5: "lp5", 6: "lp6", GRIEFER: "g10"}
NOMINAL_USD = {"USDT": 1, "USDC": 1, "BNB": 600, "ETH": 3_000, "BTC": 60_000}
"""The basket assets' start prices (ETH and BTC: their pairs', PAIRS)."""
BASKET_FUNDS_USD = 500_000
"""What each LP is funded with in each basket asset besides the payout stablecoin, in USD."""
LOWEST_FEE_BPS = 20
"""The pool's lowest mint and burn fee: 25 bp, 5 less on what moves an asset toward its target
weight (5 more on what moves it away; docs/mechanics.md section 10)."""
FAILURE_FILE = "build/stateful-failure.yaml"


@dataclass
class LpFlows:
    """An LP's deposits and withdrawals, in token units (E4)."""

    deposited: int = 0
    withdrawn: int = 0
    withdrawals: int = 0


def _dump_on_failure(method):  # noqa: ANN001, ANN201
    """On a failure, the sequence so far is written (and printed) as a scenario file; the last
    one written is hypothesis's shrunk sequence."""
    import functools

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        try:
            return method(self, *args, **kwargs)
        except Exception:
            self.write_scenario()
            raise

    return wrapper


def _sim(chain: str, backend: str) -> Alpsim:
    if (chain, backend) not in _SIMS:
        _SIMS[chain, backend] = Alpsim.launch(chain, backend, seed=99, accounts=ACCOUNTS)
    return _SIMS[chain, backend]


def keeper_verdict(sim: Alpsim, ciphertext: bytes, commitment_: bytes, trader: str) -> RejectReason | None:
    """What the keeper makes of an open request: UndecryptableOrder when its key does not open
    the ciphertext, MalformedOrder when the plaintext is no order or not the committed one,
    None for a usable order."""
    try:
        payload = decrypt_with(sim.keeper.private_key, ciphertext, ORDER_ECIES)
    except Exception:  # noqa: BLE001 - eciespy raises ValueError and cryptography errors
        return RejectReason.UNDECRYPTABLE_ORDER
    try:
        order, salt = decode_order(payload)
    except UndecryptableOrder:
        return RejectReason.MALFORMED_ORDER
    if commitment(trader, order, salt) != commitment_:
        return RejectReason.MALFORMED_ORDER
    return None


_ABI_ERRORS: dict[int, frozenset[str]] = {}


def abi_error_names(sim: Alpsim) -> frozenset[str]:
    """The custom errors the deployed contracts' ABIs declare (OpenZeppelin's included)."""
    if id(sim) not in _ABI_ERRORS:
        _ABI_ERRORS[id(sim)] = frozenset(entry["name"] for contract in sim.session.bound.values()
                                         for entry in contract.abi if entry.get("type") == "error")
    return _ABI_ERRORS[id(sim)]


def assert_custom_error(sim: Alpsim, revert: ContractRevert) -> None:
    """No entry point reverts with a Panic, a string or undecodable data: every revert is one
    of the ABIs' custom errors."""
    assert not isinstance(revert, (Panic, ErrorString, UnknownRevert)), f"not a custom error: {revert!r}"
    assert revert.error_name in abi_error_names(sim), f"{revert.error_name} is no error of the ABIs: {revert!r}"


class ExchangeMachine(RuleBasedStateMachine):
    chain = "bnb"
    prices_fixed = False
    """The keeper's prices never move (EconomicMachine)."""
    basket_rules = True
    """LPs deposit and withdraw the basket's other assets (not in EconomicMachine)."""
    backend = "revm"  # the same bytecode as eth-tester's (the scenario and throughput parity tests prove it), faster
    pendings = Bundle("pendings")

    def __init__(self) -> None:
        super().__init__()
        self.sim = _sim(self.chain, self.backend)
        self.snap = self.sim.snapshot()
        self.mirror = Mirror(self.sim)
        self.minted = 0
        self.prices = {pair: Decimal(p) for pair, (p, _) in PAIRS.items()}
        self.basket_assets = [e for e in self.sim.deployment.basket if e.role != "collateral"]
        """The basket's assets besides the payout stablecoin (the basket rules' choice)."""
        self.asset_minted = {e.symbol: 0 for e in self.basket_assets}
        self.asset_prices = {e.symbol: Decimal(NOMINAL_USD[e.symbol]) for e in self.sim.deployment.basket
                             if e.price_id >= 128}
        """The keeper's prices of the asset-only ids (the stablecoins, BNB)."""
        self.script: list[str] = []
        self.scenario_ids: dict[int, str] = {}  # position id -> scenario id
        self.request_ids: dict[int, str] = {}
        self.flags: dict[int, dict] = {}
        self.lp_flows = {lp: LpFlows() for lp in LPS}
        """Each LP's deposits and withdrawals (token units), for E4."""

    def step(self, line: str) -> None:
        self.script.append(line)

    def write_scenario(self) -> None:
        from pathlib import Path

        funds = ", ".join(f"{NAMES[a]}: {50_000 if a in TRADERS else 2_000_000}" for a in TRADERS + LPS)
        text = "\n".join([f"name: stateful failure ({self.chain})", f"chain: {self.chain}", "seed: 99",
                          f"funds: {{{funds}}}", "steps:", *("  " + line for line in self.script)]) + "\n"
        Path(FAILURE_FILE).parent.mkdir(exist_ok=True)
        Path(FAILURE_FILE).write_text(text)
        print(f"\n--- the failing sequence as a scenario ({FAILURE_FILE}) ---\n{text}")

    def teardown(self) -> None:
        self.sim.revert(self.snap)

    # ----- helpers
    def _fund(self, who: int, amount: int) -> None:
        self.mirror.fund(who, amount)
        self.minted += self.sim.to_units(amount)

    def _same_refusal(self, chain_action, model_action) -> str | None:  # noqa: ANN001
        """The chain reverts exactly when the model refuses, with the same error (a custom
        error of the ABIs); the error's name, None when both went through."""
        model = self.mirror.model.copy()
        try:
            model_action(model)
            model_error = None
        except ModelRefusal as refusal:
            model_error = refusal.name
        try:
            chain_action()
        except ContractRevert as revert:
            assert_custom_error(self.sim, revert)
            assert revert.error_name == model_error, (revert, model_error)
            return model_error
        assert model_error is None, f"the model refuses ({model_error}) what the chain did"
        return None

    def _revert(self, revert: ContractRevert, *expected: str) -> None:
        """A revert the machine expects: a custom error, one of `expected`."""
        assert_custom_error(self.sim, revert)
        assert revert.error_name in expected, (revert, expected)

    def _payouts_capped(self, closed: list) -> None:  # noqa: ANN001
        for c in closed:
            p = c.position
            assert c.payout_wad <= p.margin_wad + p.max_profit_wad

    def _checkpoint(self) -> None:
        """Between two LP actions of one rule: the EconomicMachine evaluates its economics
        here too, so that E3 sees which LP held what when the others paid into the pool."""

    def _keeper_round(self) -> None:
        """The keeper's round: its prices and every trigger in one transaction (settles them)."""
        self._payouts_capped(self.mirror.keeper_round())

    # ----- set-up
    @initialize()
    def start(self) -> None:
        for lp in LPS:
            self._fund(lp, 2_000_000)
        self.mirror.deposit(LPS[0], 2_000_000)
        self.lp_flows[LPS[0]].deposited += self.sim.to_units(2_000_000)
        for trader in TRADERS:
            self._fund(trader, 50_000)
        self._fund(GRIEFER, 1_000)
        if self.basket_rules:
            for e in self.basket_assets:
                for lp in LPS:
                    whole = BASKET_FUNDS_USD // NOMINAL_USD[e.symbol]
                    self.mirror.fund(lp, whole, e.symbol)
                    self.asset_minted[e.symbol] += whole * 10**e.decimals
                self.step(f"# lp5 and lp6 each hold {BASKET_FUNDS_USD} USD of {e.symbol} (no scenario step for it)")
        self.mirror.set_prices({p: v for p, v in self.prices.items()})
        self.step("- prices: {" + ", ".join(f"{p}: {v}" for p, v in self.prices.items()) + "}")
        self.step(f"- deposit: {{who: {NAMES[LPS[0]]}, amount: 2000000}}")
        self.mirror.set_platform_token_price(1)

    # ----- LPs
    @rule(lp=st.sampled_from(LPS), amount=st.integers(min_value=1, max_value=500_000))
    @_dump_on_failure
    def deposit(self, lp: int, amount: int) -> None:
        if self.sim.collateral_units(lp) < self.sim.to_units(amount):
            return
        self.step(f"- deposit: {{who: {NAMES[lp]}, amount: {amount}}}")
        self._settle_prices()
        before = self.sim.pool().alp_price_wad
        result = self._deposit(lp, amount)
        if result:  # the depositor gets at most the amount less the fee, at the ALP price (which
            # only grows between the read and the deposit's block: fees accrue to the pool)
            value_in = self.sim.to_units(amount) * 10 ** (18 - self.sim.decimals)
            got = result[0].alp_out_wad * before // 10**18
            assert got <= value_in * (BPS - LOWEST_FEE_BPS) // BPS + 1, (got, value_in)
        self._alp_price_never_falls(before)

    @rule(lp=st.sampled_from(LPS), share=st.integers(min_value=1, max_value=100))
    @_dump_on_failure
    def withdraw(self, lp: int, share: int) -> None:
        held = self.sim.alp_balance_wad(lp)
        if held == 0:
            return
        alp = max(held * share // 100, 1)
        self.step(f"- withdraw: {{who: {NAMES[lp]}, alp: {Decimal(alp) / 10**18}}}")
        self._settle_prices()
        before = self.sim.pool().alp_price_wad
        result = self._withdraw(lp, alp)
        pool_after = self.sim.pool()
        if result and pool_after.alp_supply_wad:
            # the LP gets at most its ALP's worth less the fee; priced after the withdrawal,
            # which is at least the price in the withdrawal's own block (the fee stays)
            got = result[0].amount_out_units * 10 ** (18 - self.sim.decimals)
            worth = alp * pool_after.alp_price_wad // 10**18
            assert got <= worth * (BPS - LOWEST_FEE_BPS) // BPS + 1, (got, worth)
        self._alp_price_never_falls(before)

    def _alp_price_never_falls(self, before: int) -> None:
        """Deposits and withdrawals leave their fee in the pool: the ALP price moves only up,
        by the fee kept (1 wei of rounding)."""
        if before and self.sim.pool().alp_supply_wad:
            assert self.sim.pool().alp_price_wad >= before - 1

    def _settle_prices(self) -> None:
        """Deposits and withdrawals need settled prices: the keeper's round first (as the
        scenario runner's deposit and withdraw steps), and its asset-only prices (the stablecoins',
        BNB's) recorded."""
        self._keeper_round()
        self.mirror.push_asset_prices()

    def _deposit(self, lp: int, amount: Decimal | int, asset: str | None = None) -> list:
        """`lp` deposits `amount` (whole tokens) of the payout stablecoin or basket `asset`, after
        the keeper's fresh prices, refused exactly when the model refuses; refused, nothing
        moves. [the DepositResult] or []."""
        sim, mirror = self.sim, self.mirror
        before = (sim.asset_units(lp, asset), sim.alp_balance_wad(lp))
        units = to_units(amount, sim.asset_decimals(asset))
        key = mirror.asset_key(asset)
        mirror.fresh_basket_prices(key)  # the keeper's pushes, as the client's, played in the model first
        result = []
        self.last_refusal = self._same_refusal(lambda: result.append(mirror.deposit_units(lp, units, asset)),
                                               lambda m: m.deposit(sim.address(lp), units,
                                                                   sim.devnet.clock.next_timestamp, asset=key))
        if result:
            if asset is None:  # E4's flows are the payout stablecoin's
                self.lp_flows[lp].deposited += units
        else:  # nothing lost
            assert (sim.asset_units(lp, asset), sim.alp_balance_wad(lp)) == before
        return result

    def _withdraw(self, lp: int, alp: int, asset: str | None = None) -> list:
        """`lp` withdraws `alp` (wei) for the payout stablecoin or basket `asset`, after the
        keeper's fresh prices, refused exactly when the model refuses; refused, nothing moves.
        [the WithdrawResult] or []."""
        sim, mirror = self.sim, self.mirror
        before = (sim.asset_units(lp, asset), sim.alp_balance_wad(lp))
        key = mirror.asset_key(asset)
        mirror.fresh_basket_prices(key)
        result = []
        self.last_refusal = self._same_refusal(lambda: result.append(mirror.withdraw_wad(lp, alp, asset)),
                                               lambda m: m.withdraw(sim.address(lp), alp,
                                                                    sim.devnet.clock.next_timestamp, asset=key))
        if result and asset is None:
            flows = self.lp_flows[lp]
            flows.withdrawn += result[0].amount_out_units
            flows.withdrawals += 1
        elif not result:  # nothing lost
            assert (sim.asset_units(lp, asset), sim.alp_balance_wad(lp)) == before
        return result

    # ----- the basket's other assets
    def _count(self, action: str, result: list) -> None:
        outcome = action if result else f"{action} refused ({self.last_refusal})"
        STATS["basket"][outcome] = STATS["basket"].get(outcome, 0) + 1

    def _basket_asset(self, index: int):  # noqa: ANN202
        return self.basket_assets[index % len(self.basket_assets)]

    @rule(lp=st.sampled_from(LPS), index=st.integers(min_value=0, max_value=3),
          usd=st.sampled_from([1, 100, 5_000, 50_000, 200_000]), dust=st.booleans())
    @_dump_on_failure
    def basket_deposit(self, lp: int, index: int, usd: int, dust: bool) -> None:
        """`lp` deposits `usd` worth (at the asset's start price, and one token unit more when
        `dust`) of a basket asset: to the unit as the model, or refused as it refuses."""
        e = self._basket_asset(index)
        amount = (Decimal(usd) / NOMINAL_USD[e.symbol]).quantize(Decimal(1).scaleb(-min(e.decimals, 8)))
        if dust:
            amount += Decimal(1).scaleb(-e.decimals)
        if self.sim.asset_units(lp, e.symbol) < to_units(amount, e.decimals):
            return
        self.step(f"- deposit: {{who: {NAMES[lp]}, asset: {e.symbol}, amount: {amount}}}")
        self._settle_prices()
        before = self.sim.pool().alp_price_wad
        result = self._deposit(lp, amount, e.symbol)
        self._count("deposit", result)
        if result:
            q = self.mirror.model.pool.last_quote
            assert result[0].alp_out_wad == q.alp_out and result[0].fee_wad == q.fee_usd
        self._alp_price_never_falls(before)

    @rule(lp=st.sampled_from(LPS), index=st.integers(min_value=0, max_value=3),
          share=st.integers(min_value=1, max_value=100))
    @_dump_on_failure
    def basket_withdraw(self, lp: int, index: int, share: int) -> None:
        """`lp` withdraws `share`% of its ALP in a basket asset the pool holds (when it holds none,
        `lp` deposits 50,000 USD of one first), once its cooldown is over (it
        waits, the keeper away, as long as it must: every deposit restarts it): to the unit as
        the model, or refused as it refuses (BasketHoldingsShort when the basket holds too
        little of it, a stale or tripped price)."""
        held = self.sim.alp_balance_wad(lp)
        if held == 0:
            return
        held_assets = [a for a in self.basket_assets if self.mirror.model.pool.holdings_of(a.address)]
        if not held_assets:  # the pool holds none: `lp` brings some in first
            self.basket_deposit(lp=lp, index=index, usd=50_000, dust=False)
            held_assets = [a for a in self.basket_assets if self.mirror.model.pool.holdings_of(a.address)]
        e = held_assets[index % len(held_assets)] if held_assets else self._basket_asset(index)
        # `share`% of its ALP, at most `share`% of the ALP the basket's holdings of the asset are
        # worth at the keeper's price (the LPs' ALP is mostly the stablecoin's): all of it at 100%,
        # which the fee and the higher price of the way out may just exceed (BasketHoldingsShort)
        sim, pool = self.sim, self.sim.pool_contract
        asset_usd = pool.call("holdingsOf", e.address) * 10 ** (18 - e.decimals) \
            * sim.contracts["oracle"].call("keeperPrice", e.price_id)[0] // WAD
        nav, supply = pool.call("nav"), sim.contracts["alp"].call("totalSupply")
        worth_alp = supply * asset_usd // nav if nav else 0
        alp = max(min(held, worth_alp) * share // 100, 1)
        unlocks = self.sim.contracts["alp"].call("unlocksAt", self.sim.address(lp))
        if unlocks > self.sim.devnet.timestamp:
            self.step(f"- wait: {{seconds: {unlocks - self.sim.devnet.timestamp}}}  # {NAMES[lp]}'s cooldown")
            self.mirror.wait(unlocks - self.sim.devnet.timestamp)
        self.step(f"- withdraw: {{who: {NAMES[lp]}, alp: {Decimal(alp) / 10**18}, asset: {e.symbol}}}")
        self._settle_prices()
        before = self.sim.pool().alp_price_wad
        result = self._withdraw(lp, alp, e.symbol)
        self._count("withdraw", result)
        if result:
            assert result[0].amount_out_units == self.mirror.model.pool.last_quote.amount_out
        self._alp_price_never_falls(before)

    @rule(index=st.integers(min_value=0, max_value=4), bps=st.one_of(st.integers(-30, 30), st.integers(-800, 800)),
          gap_bps=st.one_of(st.integers(-90, 90), st.sampled_from([-150, 150])))
    @_dump_on_failure
    def move_asset_price(self, index: int, bps: int, gap_bps: int) -> None:
        """An asset-only price (a stablecoin's, BNB's; the stablecoins by a tenth as much) moves
        and its reference feed settles `gap_bps` away from it: within the 1% breaker, or past it
        (every LP action that reads it is then refused, as the model refuses). ETH and BTC the
        assets are their pairs: `move_price` and `reference_gap` move them."""
        symbols = sorted(self.asset_prices)
        symbol = symbols[index % len(symbols)]
        step_bps = bps if NOMINAL_USD[symbol] > 1 else bps // 10
        price = (self.asset_prices[symbol] * (BPS + step_bps) / BPS).quantize(Decimal("0.0001"))
        self.asset_prices[symbol] = price
        reference = (price * (BPS + gap_bps) / BPS).quantize(Decimal("0.0001"))
        self.step(f"- prices: {{{symbol}: {price}}}  # its reference feed at {reference}")
        self.mirror.set_prices({symbol: price}, reference=False)
        self.mirror.set_reference(symbol, reference)

    # ----- traders
    @rule(trader=st.sampled_from(TRADERS), pair=st.sampled_from(sorted(PAIRS)), long=st.booleans(),
          leverage=st.sampled_from([1, 3, 10, 50, 100, 250, 499, 500, 777, 999, 1000, 1001, 1500]),
          amount=st.integers(min_value=1, max_value=20_000), tp=st.sampled_from([None, 0.002, 0.05, 5.0]),
          sl=st.sampled_from([None, 0.001, 0.02]))
    @_dump_on_failure
    def open(self, trader: int, pair: str, long: bool, leverage: int, amount: int, tp, sl) -> None:  # noqa: ANN001
        if self.sim.collateral_units(trader) < self.sim.to_units(amount):
            return
        price = self.prices[pair]
        sign = 1 if long else -1
        take_profit = 0 if tp is None else (price * (1 + sign * Decimal(str(tp)))).quantize(Decimal("0.0001"))
        stop_loss = 0 if sl is None else (price * (1 - sign * Decimal(str(sl)))).quantize(Decimal("0.0001"))
        take_profit, stop_loss = max(take_profit, 0), max(stop_loss, 0)
        sid = f"p{len(self.script)}"
        flags = "".join(f", {k}: true" for k, v in self.flags.get(trader, {}).items() if v)
        self.step(f"- open: {{id: {sid}, who: {NAMES[trader]}, pair: {pair}, side: {'long' if long else 'short'}, "
                  f"amount: {amount}, leverage: {leverage}"
                  + (f", tp: {take_profit}" if take_profit else "") + (f", sl: {stop_loss}" if stop_loss else "")
                  + flags + "}")
        try:
            opened = self.mirror.open(trader, pair, "long" if long else "short", amount, leverage,
                                      take_profit=take_profit, stop_loss=stop_loss)
            self.scenario_ids[opened.position.id] = sid
        except OrderRejected:
            pass
        except ContractRevert as revert:  # a request the contract refuses outright
            self._revert(revert, "AmountBelowExecutionFee")

    @rule(target=pendings, trader=st.sampled_from(TRADERS), pair=st.sampled_from(sorted(PAIRS)),
          long=st.booleans(), leverage=st.sampled_from([5, 50, 500, 1001]),
          amount=st.integers(min_value=10, max_value=5_000))
    def request_during_keeper_outage(self, trader: int, pair: str, long: bool, leverage: int, amount: int):
        if self.sim.collateral_units(trader) < self.sim.to_units(amount):
            return None
        leverage = min(leverage, PAIRS[pair][1])
        sid = f"r{len(self.script)}"
        self.step("- keeper: {online: false}")
        self.step(f"- open: {{id: {sid}, who: {NAMES[trader]}, pair: {pair}, side: {'long' if long else 'short'}, "
                  f"amount: {amount}, leverage: {leverage}}}")
        self.step("- keeper: {online: true}  # (the machine leaves it pending until keeper_back)")
        return self._request_open(trader, pair, long, amount, leverage, sid)

    def _request_open(self, trader: int, pair: str, long: bool, amount: int, leverage: int, sid: str):  # noqa: ANN202
        """An open request left pending (None when refused: the execution fee may be raised
        above `amount`, then chain and model both refuse it)."""
        pending = []
        self._same_refusal(
            lambda: pending.append(self.mirror.request_open(trader, pair, "long" if long else "short", amount,
                                                            leverage)),
            lambda m: m.request_open(self.sim.address(trader), self.sim.to_units(amount), b"",
                                     self.sim.devnet.block_number + 1))
        if not pending:
            return None
        self.request_ids[pending[0].request_id] = sid
        return pending[0]

    @rule(pending=pendings)
    @_dump_on_failure
    def keeper_back(self, pending) -> None:  # noqa: ANN001
        if pending is None or self.mirror.model.requests[pending.request_id].status != "pending":
            return
        model = self.mirror.model
        expired = self.sim.devnet.block_number + 1 > model.requests[pending.request_id].block + 10
        if expired:
            with pytest.raises(ContractRevert) as info:
                self.sim.keeper.execute_open(pending.request_id, pending.ciphertext)
            self._revert(info.value, "RequestNotExecutable")
            return
        try:
            self.mirror.execute_open(pending)
        except OrderRejected:
            pass

    @rule(pending=pendings)
    @_dump_on_failure
    def cancel(self, pending) -> None:  # noqa: ANN001
        if pending is None:
            return
        self.step(f"- cancel: {{id: {self.request_ids.get(pending.request_id, pending.request_id)}}}")
        self._same_refusal(
            lambda: self.mirror.cancel(pending.trader, pending.request_id),
            lambda m: m.cancel_request(pending.trader, pending.request_id, self.sim.devnet.block_number + 1))

    @rule(index=st.integers(min_value=0, max_value=50))
    @_dump_on_failure
    def close(self, index: int) -> None:
        ids = sorted(self.mirror.model.positions)
        if not ids:
            return
        pid = ids[index % len(ids)]
        self.step(f"- close: {{id: {self.scenario_ids.get(pid, pid)}}}")
        trader = self.mirror.model.positions[pid].trader
        try:
            closed = self.mirror.close(trader, pid)
        except CloseRejected:
            return
        p = closed.position
        assert closed.payout_wad <= p.margin_wad + p.max_profit_wad

    @rule(trader=st.sampled_from(TRADERS))
    def bind_referral(self, trader: int) -> None:
        self.flags.setdefault(trader, {})["referral"] = True
        if self.sim.address(trader) not in self.mirror.model.referred:
            self.mirror.bind_referral(trader, 0)

    @rule(trader=st.sampled_from(TRADERS), enabled=st.booleans(), funded=st.booleans())
    def platform_token_fees(self, trader: int, enabled: bool, funded: bool) -> None:
        if funded:
            self.mirror.fund_platform_token(trader, 1_000)
        self.mirror.set_fee_in_token(trader, enabled)
        self.flags.setdefault(trader, {})["fee_token"] = enabled

    # ----- market and keeper
    @rule(pair=st.sampled_from(sorted(PAIRS)), bps=st.one_of(st.integers(-30, 30), st.integers(-800, 800)))
    @_dump_on_failure
    def move_price(self, pair: str, bps: int) -> None:
        self.prices[pair] = (self.prices[pair] * (10_000 + bps) / 10_000).quantize(Decimal("0.0001"))
        self.step(f"- prices: {{{pair}: {self.prices[pair]}}}")
        self.mirror.set_prices({pair: self.prices[pair]})

    @rule(pair=st.sampled_from(sorted(PAIRS)), bps=st.integers(min_value=101, max_value=500), up=st.booleans())
    def reference_gap(self, pair: str, bps: int, up: bool) -> None:
        """The reference feed jumps away from the keeper's price: over 1% trips the breaker."""
        factor = (10_000 + bps) if up else (10_000 - bps)
        self.step(f"# the reference feed of {pair} jumps {'+' if up else '-'}{bps} bp (no scenario step for it)")
        self.mirror.set_reference(pair, (self.prices[pair] * factor / 10_000).quantize(Decimal("0.0001")))

    @rule(seconds=st.sampled_from([1, 30, 61, 600, 3600, 86_400, 172_800]))
    @_dump_on_failure
    def time_passes(self, seconds: int) -> None:
        self.step(f"- wait: {{seconds: {seconds}}}")
        self.mirror.wait(seconds)

    @rule()
    @_dump_on_failure
    def keeper_runs_triggers(self) -> None:
        self.step("- keeper: {}")
        self._payouts_capped(self.mirror.run_triggers())

    # ----- hostile actors
    @rule(seconds=st.sampled_from([3600, 6 * 3600, 86_400, 3 * 86_400, 7 * 86_400]))
    @_dump_on_failure
    def keeper_gap(self, seconds: int) -> None:
        """Hours to a week with no keeper (positions come to owe more than their margin), then
        its round: fresh prices for every pair and every trigger in one transaction."""
        self.step(f"- wait: {{seconds: {seconds}}}  # no keeper")
        self.step("- keeper: {}")
        self.mirror.wait(seconds)
        self._keeper_round()

    @rule(kind=st.sampled_from(["random_bytes", "garbage_plaintext", "wrong_commitment"]),
          amount=st.integers(min_value=1, max_value=50), seed=st.integers(min_value=0, max_value=2**32 - 1))
    @_dump_on_failure
    def bad_order(self, kind: str, amount: int, seed: int) -> None:
        """The griefer escrows an open request the keeper cannot use; the keeper rejects it on
        chain: refunded less the execution fee, which the keeper keeps."""
        sim = self.sim
        griefer = sim.address(GRIEFER)
        if sim.collateral_units(griefer) < sim.to_units(amount):
            return
        rnd = random.Random(seed)  # the bytes follow from hypothesis's draw: reproducible
        key = sim.keeper_public_key
        if kind == "random_bytes":  # as long as an order's ciphertext
            ciphertext, committed = rnd.randbytes(148), rnd.randbytes(32)
        elif kind == "garbage_plaintext":  # decrypts, but to no order
            payload = rnd.randbytes(rnd.choice([0, 1, 86, 87, 88, 300]))
            ciphertext = encrypt_to_seeded(key, payload, rnd.randbytes(44), ORDER_ECIES)
            committed = rnd.randbytes(32)
        else:  # a real order, committed as another one
            order = Order(rnd.randrange(4), rnd.random() < 0.5, rnd.choice([5, 50, 1000]))
            salt = rnd.randbytes(32)
            ciphertext = seal(order, salt, key, rnd.randbytes(44))
            committed = commitment(griefer, replace(order, leverage=order.leverage + 1), salt)
        self.step(f"# g10 sends an open request of {amount} with {kind.replace('_', ' ')}: the keeper rejects it "
                  "(no scenario step for it)")
        before = sim.collateral_units(griefer)
        rid = self._griefer_request(amount, ciphertext, committed)
        if rid is None:  # the execution fee was raised above the amount: refused, nothing moved
            assert sim.collateral_units(griefer) == before
            return
        verdict = keeper_verdict(sim, ciphertext, committed, griefer)
        expected = RejectReason.UNDECRYPTABLE_ORDER if kind == "random_bytes" else RejectReason.MALFORMED_ORDER
        assert verdict is expected, (kind, verdict)
        self._reject(rid, verdict, before)

    def _griefer_request(self, amount: int, ciphertext: bytes, committed: bytes) -> int | None:
        """The griefer's raw open request; None when refused (chain and model alike)."""
        rid = []
        self._same_refusal(
            lambda: rid.append(self.mirror.request_open_raw(GRIEFER, amount, ciphertext, committed)),
            lambda m: m.request_open(self.sim.address(GRIEFER), self.sim.to_units(amount), committed,
                                     self.sim.devnet.block_number + 1))
        return rid[0] if rid else None

    def _reject(self, rid: int, verdict: RejectReason, balance_before_request: int) -> None:
        """The keeper rejects the griefer's request on chain: it costs the griefer exactly the
        execution fee stored in the request, whatever the fee is now."""
        fee = self.mirror.model.requests[rid].execution_fee_tokens
        event = self.mirror.reject_open(rid, verdict)
        assert event["reason"] == verdict and event["executionFeeTokens"] == fee
        assert self.sim.collateral_units(GRIEFER) == balance_before_request - fee

    @rule(lp=st.sampled_from(LPS), share=st.integers(min_value=1, max_value=100),
          seconds=st.sampled_from([0, 61, 3600, 86_400]), move_bps=st.sampled_from([0, 3, -25]))
    @_dump_on_failure
    def lp_withdraws_after_price_push(self, lp: int, share: int, seconds: int, move_bps: int) -> None:
        """After a while without the keeper (and where prices move, a new price: keeper and
        reference), a bare price push (no triggers: positions may owe more than their margin)
        and at once the other LP deposits and this one withdraws: each refused exactly when the
        model refuses (PriceNotSettled where the push changed the price of a pair with open
        interest), nothing lost."""
        held = self.sim.alp_balance_wad(lp)
        if held == 0:
            return
        alp = max(held * share // 100, 1)
        if seconds:
            self.step(f"- wait: {{seconds: {seconds}}}  # no keeper")
            self.mirror.wait(seconds)
        model = self.mirror.model
        if move_bps and not self.prices_fixed:
            traded = sorted({p.pair_id for p in model.positions.values()})
            pair = self.sim.deployment.pairs[traded[0]] if traded else "BTC/USD"
            self.prices[pair] = (self.prices[pair] * (10_000 + move_bps) / 10_000).quantize(Decimal("0.0001"))
            self.step(f"- prices: {{{pair}: {self.prices[pair]}}}")
            self.mirror.set_prices({pair: self.prices[pair]})
        self.step("# a bare price push, no triggers (no scenario step for it)")
        settled_before = dict(model.settled_until)
        self.mirror.push_prices()
        # a pair with open interest whose price the push changed is no longer settled
        unsettled = [pid for pid in range(len(model.pairs))
                     if (model.side(pid, True).oi_usd or model.side(pid, False).oi_usd)
                     and settled_before.get(pid, 0) and not model.settled_until.get(pid, 0)]
        other = LPS[1] if lp == LPS[0] else LPS[0]
        if self.sim.collateral_units(other) >= self.sim.to_units(1_000):
            self.step(f"- deposit: {{who: {NAMES[other]}, amount: 1000}}  # (after the bare push)")
            assert not (unsettled and self._deposit(other, 1_000)), f"deposited at the unsettled prices of {unsettled}"
            self._checkpoint()
        self.step(f"- withdraw: {{who: {NAMES[lp]}, alp: {Decimal(alp) / 10**18}}}")
        result = self._withdraw(lp, alp)
        assert not (unsettled and result), f"withdrew at the unsettled prices of pairs {unsettled}"
        if result and self.sim.pool().alp_supply_wad:
            # at most the ALP's worth at the redemption price of its own block (read after it:
            # the fee stayed), less the fee
            got = result[0].amount_out_units * 10 ** (18 - self.sim.decimals)
            worth = alp * self.sim.pool_contract.call("redeemAlpPrice") // WAD
            assert got <= worth * (BPS - LOWEST_FEE_BPS) // BPS + 1, (got, worth)

    # ----- reference outages, breaker trips, fee raises, settings changes
    def _keeper_minutes(self, minutes: int, mid=None) -> None:  # noqa: ANN001
        """The keeper prices every minute for `minutes` minutes, alternating a bare
        `updatePrices` and its trigger round (the whole state compared every 60 of them);
        `mid()` runs halfway. Time is held (`Devnet.hold_time`): each minute is one empty block
        stamped a minute later, then the keeper's transaction at that time, not the 32 blocks
        of a free-running clock (a 180-minute run costs little). The scenario gets the waits."""
        half = minutes // 2
        self.step(f"- wait: {{seconds: {60 * half}}}")
        with self.mirror.checks_every(60), self.sim.devnet.hold_time():
            for minute in range(minutes):
                if minute == half:
                    self.step(f"- wait: {{seconds: {60 * (minutes - half)}}}")
                    if mid is not None:
                        mid()
                self.sim.devnet.advance_time(60)
                if minute % 2 == 0:
                    self.mirror.push_prices()
                else:
                    self._keeper_round()

    def _mid_gap_attempts(self, lp: int, trader: int, pair: str, long: bool) -> None:
        """What tries its luck while the guard is failing: an LP's deposit and the other's
        withdrawal (refused as the model refuses: ReferenceStale, CircuitBreakerTripped...) and
        a trader's open (rejected when the pair's guard fails, at the fee the request stored)."""
        other = LPS[1] if lp == LPS[0] else LPS[0]
        if self.sim.collateral_units(other) >= self.sim.to_units(1_000):
            self.step(f"- deposit: {{who: {NAMES[other]}, amount: 1000}}")
            self._deposit(other, 1_000)
            self._checkpoint()
        held = self.sim.alp_balance_wad(lp)
        if held:
            alp = max(held // 2, 1)
            self.step(f"- withdraw: {{who: {NAMES[lp]}, alp: {Decimal(alp) / 10**18}}}")
            self._withdraw(lp, alp)
            self._checkpoint()
        if self.sim.collateral_units(trader) >= self.sim.to_units(20):
            sid = f"p{len(self.script)}"
            self.step(f"- open: {{id: {sid}, who: {NAMES[trader]}, pair: {pair}, side: {'long' if long else 'short'}, "
                      "amount: 20, leverage: 5}")
            pending = self._request_open(trader, pair, long, 20, 5, sid)
            if pending is not None:
                try:
                    opened = self.mirror.execute_open(pending)
                    self.scenario_ids[opened.position.id] = sid
                except OrderRejected:
                    pass

    @rule(minutes=st.sampled_from([5, 10, 30, 60, 180]), lp=st.sampled_from(LPS),
          trader=st.sampled_from(TRADERS), pair=st.sampled_from(sorted(PAIRS)), long=st.booleans())
    @_dump_on_failure
    def reference_outage(self, minutes: int, lp: int, trader: int, pair: str, long: bool) -> None:
        """The reference feeds get no new round for `minutes` minutes while the keeper pushes
        its prices every minute (a bare push and its trigger round in turn): past the maximum
        age nothing is settled, LPs wait, opens are rejected, the lighter sides receive no
        funding. Then the feeds return and the keeper's round runs."""
        self.step(f"# the reference feeds get no new round for {minutes} minutes; the keeper prices every minute, "
                  "a bare push and its trigger round in turn (no scenario step for it)")
        with self.mirror.reference_outage():
            self._keeper_minutes(minutes, lambda: self._mid_gap_attempts(lp, trader, pair, long))
        self.step("- keeper: {}  # the reference feeds are back")
        self.mirror.refresh_references()
        self._keeper_round()

    @rule(pair=st.sampled_from(sorted(PAIRS)), bps=st.integers(min_value=101, max_value=500), up=st.booleans(),
          minutes=st.sampled_from([1, 5, 15, 30, 90]), lp=st.sampled_from(LPS), trader=st.sampled_from(TRADERS),
          long=st.booleans())
    @_dump_on_failure
    def breaker_trip(self, pair: str, bps: int, up: bool, minutes: int, lp: int, trader: int, long: bool) -> None:
        """The reference feed moves 1.01% to 5% away from the keeper's price and stays there
        (fresh) while the keeper prices every minute with its triggers: the breaker is tripped,
        nothing of the pair is settled. Then the feed comes back to the keeper's price and the
        keeper's round runs."""
        keeper_price = self.prices[pair]
        factor = (10_000 + bps) if up else (10_000 - bps)
        self.step(f"# the reference feed of {pair} moves {'+' if up else '-'}{bps} bp from the keeper's price for "
                  f"{minutes} minutes; the keeper prices every minute (no scenario step for it)")
        self.mirror.set_reference(pair, (keeper_price * factor / 10_000).quantize(Decimal("0.0001")))
        self._keeper_minutes(minutes, lambda: self._mid_gap_attempts(lp, trader, pair, long))
        self.step(f"- keeper: {{}}  # the reference feed of {pair} is back at the keeper's price")
        self.mirror.set_reference(pair, keeper_price)
        self._keeper_round()

    @rule(target=pendings, fee=st.sampled_from(["0", "0.01", "0.2", "5", "100", "20000"]),
          then=st.sampled_from(["execute", "cancel", "leave"]), restore=st.booleans(),
          trader=st.sampled_from(TRADERS), pair=st.sampled_from(sorted(PAIRS)), long=st.booleans(),
          amount=st.integers(min_value=10, max_value=5_000), griefer_amount=st.integers(min_value=1, max_value=50),
          seed=st.integers(min_value=0, max_value=2**32 - 1))
    @_dump_on_failure
    def fee_raise(self, fee: str, then: str, restore: bool, trader: int, pair: str, long: bool, amount: int,
                  griefer_amount: int, seed: int):  # noqa: ANN201
        """The admin changes the execution fee (up to far above the pending amounts) while open
        requests are pending: a trader's and a griefer's unusable one. Each is charged the fee
        it stored when made: the trader's executed now, cancelled once expired, or left
        pending for `keeper_back` and `cancel`; the griefer's rejected."""
        sim, model = self.sim, self.mirror.model
        pending = None
        if sim.collateral_units(trader) >= sim.to_units(amount):
            sid = f"r{len(self.script)}"
            self.step("- keeper: {online: false}")
            self.step(f"- open: {{id: {sid}, who: {NAMES[trader]}, pair: {pair}, side: {'long' if long else 'short'}, "
                      f"amount: {amount}, leverage: 5}}")
            pending = self._request_open(trader, pair, long, amount, 5, sid)
        griefer_before, rid = sim.collateral_units(GRIEFER), None
        if griefer_before >= sim.to_units(griefer_amount):
            rnd = random.Random(seed)
            self.step(f"# g10 sends an open request of {griefer_amount} with random bytes (no scenario step for it)")
            rid = self._griefer_request(griefer_amount, rnd.randbytes(148), rnd.randbytes(32))
        old_fee = Decimal(model.settings.execution_fee_usd) / WAD
        self.step(f"# the admin sets the execution fee to {fee} USD (no scenario step for it)")
        self.mirror.set_execution_fee(Decimal(fee))
        if rid is not None:
            self._reject(rid, RejectReason.UNDECRYPTABLE_ORDER, griefer_before)
        if pending is not None and then == "execute":
            self.step("- keeper: {online: true}")
            try:
                opened = self.mirror.execute_open(pending)
                self.scenario_ids[opened.position.id] = self.request_ids[pending.request_id]
            except OrderRejected:
                pass
            pending = None
        elif pending is not None and then == "cancel":
            before = sim.collateral_units(trader)
            self.mirror.mine(model.settings.request_expiry_blocks + 1)
            self.step(f"- cancel: {{id: {self.request_ids[pending.request_id]}}}")
            assert self._same_refusal(
                lambda: self.mirror.cancel(pending.trader, pending.request_id),
                lambda m: m.cancel_request(pending.trader, pending.request_id, sim.devnet.block_number + 1)) is None
            assert sim.collateral_units(trader) == before + pending.amount_units  # the whole escrow back
            pending = None
        if restore:
            self.step(f"# the admin sets the execution fee back to {old_fee} USD (no scenario step for it)")
            self.mirror.set_execution_fee(old_fee)
        return pending

    @rule(kind=st.sampled_from(["max_age", "breaker", "rates"]), level=st.integers(min_value=0, max_value=2),
          before=st.sampled_from([30, 600, 3600, 86_400]), after=st.sampled_from([30, 600, 3600, 86_400]),
          mid_round=st.booleans())
    @_dump_on_failure
    def settings_change(self, kind: str, level: int, before: int, after: int, mid_round: bool) -> None:
        """In the middle of a keeper gap the admin changes a guard setting (the maximum price
        age, the circuit breaker) or the holding and funding rates, then sets it back after
        more of the gap (the keeper's round in between or not). Accrual never applies a
        setting backwards: the model accrues every pair first, and the mirror compares the
        indexes to the unit."""
        mirror, model = self.mirror, self.mirror.model
        self.step(f"- wait: {{seconds: {before}}}  # no keeper")
        mirror.wait(before)
        if kind == "rates":
            old = (model.holding_rate_per_hour_wad, model.funding_rate_per_hour_wad)
            new = [(0, 0), (old[0] * 10, old[1] * 10), (old[0], old[1] * 100)][level]
            self.step(f"# the admin sets the holding and funding rates to {new} (no scenario step for it)")
            mirror.set_rates(*new)
        else:
            old = (model.max_price_age_s, model.circuit_breaker_bps)
            if kind == "max_age":
                mirror.set_price_guards(max_age_s=[30, 600, 3600][level])
            else:
                mirror.set_price_guards(breaker_bps=[50, 300, 1000][level])
            self.step(f"# the admin sets the price guard's maximum age and breaker to "
                      f"{(model.max_price_age_s, model.circuit_breaker_bps)} (no scenario step for it)")
        if mid_round:
            self.step("- keeper: {}")
            self._keeper_round()
        self.step(f"- wait: {{seconds: {after}}}  # no keeper")
        mirror.wait(after)
        self.step("# the admin sets it back (no scenario step for it)")
        if kind == "rates":
            mirror.set_rates(*old)
        else:
            mirror.set_price_guards(max_age_s=old[0], breaker_bps=old[1])
        self.step("- keeper: {}")
        self._keeper_round()

    @rule(kind=st.sampled_from(["request_amount", "request_max", "deposit_amount", "price_high", "price_zero",
                                "price_pair", "withdraw_more", "guard_age", "rates"]))
    @_dump_on_failure
    def extreme_inputs(self, kind: str) -> None:
        """Inputs at and past the types' limits: each entry point refuses with a custom error
        (the model's where it has one), never a Panic."""
        sim, model = self.sim, self.mirror.model
        trading, keeper = sim.contracts["trading"], sim.keeper.address
        griefer, lp = sim.address(GRIEFER), sim.address(LPS[1])
        block, now = sim.devnet.block_number + 1, sim.devnet.clock.next_timestamp
        self.step(f"# an extreme input ({kind.replace('_', ' ')}), refused (no scenario step for it)")
        if kind in ("request_amount", "request_max"):
            amount = 2**128 if kind == "request_amount" else 2**256 - 1
            refused = self._same_refusal(
                lambda: trading.transact("requestOpen", b"\0" * 32, b"", amount, sender=griefer),
                lambda m: m.request_open(griefer, amount, b"\0" * 32, block))
        elif kind == "deposit_amount":
            amount = 2**256 - 1
            refused = self._same_refusal(lambda: sim.pool_contract.transact("deposit", sim.pool_contract.call("collateral"), amount, 0, sender=lp),
                                         lambda m: m.deposit(lp, amount, now))
        elif kind == "withdraw_more":
            alp = model.pool.alp.get(lp, 0) + 1
            refused = self._same_refusal(lambda: sim.pool_contract.transact("withdraw", alp, sim.pool_contract.call("collateral"), 0, sender=lp),
                                         lambda m: m.withdraw(lp, alp, now))
        elif kind.startswith("price"):
            pair_id, price = {"price_high": (0, 2**128), "price_zero": (1, 0), "price_pair": (len(PAIRS), 10**18)}[kind]
            refused = self._same_refusal(
                lambda: trading.transact("updatePrices", [(pair_id, price)], sender=keeper),
                lambda m: m.apply_prices({pair_id: price}, now))
        else:  # admin settings past their storage types
            deployer = sim.deployment.deployer
            try:
                if kind == "guard_age":
                    sim.contracts["oracle"].transact("setGuardSettings", 2**64, 100, 10, sender=deployer)
                else:
                    sim.contracts["market"].transact("setRates", 2**64, 0, sender=deployer)
            except ContractRevert as revert:
                assert_custom_error(sim, revert)
                refused = revert.error_name
            else:
                refused = None
        assert refused is not None, f"{kind} went through"

    # ----- invariants
    @invariant()
    @_dump_on_failure
    def chain_equals_model_and_value_is_conserved(self) -> None:
        STATS["steps"] += 1
        by_machine = STATS["by_machine"]
        by_machine[type(self).__name__] = by_machine.get(type(self).__name__, 0) + 1
        self.mirror.check_if_moved()  # (after the rule's last action the Mirror compared already)
        sim, model = self.sim, self.mirror.model
        token = sim.contracts["collateral"]
        holders = {sim.address(a) for a in TRADERS + LPS + [GRIEFER]} | {sim.deployment.keeper, sim.deployment.treasury,
                                                              sim.contracts["pool"].address,
                                                              sim.contracts["trading"].address}
        held = sum(token.call("balanceOf", h) for h in holders)
        assert held == token.call("totalSupply") == self.minted
        pool = sim.pool()
        assert pool.balance_units * 10 ** (18 - sim.decimals) * 8_000 >= pool.reserve_wad * 10_000
        pending = sum(r.amount_in for r in model.requests.values() if r.kind == "open" and r.status == "pending")
        margins = sum(p.margin_tokens for p in model.positions.values())
        assert model.balances.get(ESCROW, 0) == pending + margins
        assert model.balances.get(POOL, 0) == model.pool.pool_balance
        lps, pool_addr = [sim.address(a) for a in LPS], sim.contracts["pool"].address
        for e in self.basket_assets:  # per asset: the pool's and the LPs' balances are what was minted
            asset_token = sim.asset_token(e.symbol)
            on_chain = [asset_token.call("balanceOf", h) for h in [pool_addr, *lps]]
            assert sum(on_chain) == asset_token.call("totalSupply") == self.asset_minted[e.symbol], e.symbol
            assert on_chain[0] == sim.pool_contract.call("holdingsOf", e.address) == model.pool.holdings_of(e.address)
            assert sum(model.book_of(e.address).values()) == self.asset_minted[e.symbol], e.symbol
        assert TREASURY  # the treasury's balance is compared by the mirror
        STATS["checks"] += 1


class Economics:
    """The E1-E3 quantities of one state (module docstring), in 18-decimal USD."""

    def __init__(self, sim: Alpsim, model) -> None:  # noqa: ANN001
        now = sim.devnet.timestamp
        scale = model.scale
        traders = {sim.address(a) for a in TRADERS + [GRIEFER]}
        self.supply = model.pool.alp_supply
        self.positions = len(model.positions)
        self.traders = sum(model.balances.get(t, 0) for t in traders) * scale
        self.traders += sum(r.amount_in for r in model.requests.values()
                            if r.kind == "open" and r.status == "pending" and r.trader in traders) * scale
        nav = model.pool.pool_balance * scale
        for p in model.positions.values():
            assert p.trader in traders, p
            pnl = pnl_usd_floor(p.is_long, p.qty, p.entry_price, model.keeper_prices[p.pair_id][0])
            holding, funding = model.accrued_charges(p, now)
            claim = min(p.margin_usd, holding + funding - pnl)
            nav += claim
            self.traders += p.margin_usd - claim
        self.nav = nav
        self.price = Fraction(nav * WAD, self.supply) if self.supply else None
        self.alp = {lp: model.pool.alp.get(sim.address(lp), 0) for lp in LPS}
        self.lps = {lp: model.balances.get(sim.address(lp), 0) * scale + Fraction(self.alp[lp] * nav, self.supply or 1)
                    for lp in LPS}
        # E4: what each LP's ALP redeems for now, at the chain's redemption price less the burn fee
        redeem_price = sim.pool_contract.call("redeemAlpPrice")
        burn = model.pool.burn_fee_bps + model.pool.fee_spread_bps  # the highest burn fee
        self.redeemable = {lp: sim.alp_balance_wad(lp) * redeem_price * (BPS - burn) // (WAD * BPS) for lp in LPS}
        self.alp_chain = {lp: sim.alp_balance_wad(lp) for lp in LPS}


class EconomicMachine(ExchangeMachine):
    """The same actors with prices that never move (no `move_price`, no `reference_gap`),
    checking E1-E3 of the module docstring after every step."""

    move_price = None
    reference_gap = None
    basket_deposit = basket_withdraw = move_asset_price = None
    prices_fixed = True
    basket_rules = False

    def __init__(self) -> None:
        super().__init__()
        self.economics: Economics | None = None

    @rule(seconds=st.sampled_from([1, 30, 61, 600, 3600, 86_400, 172_800]))
    @_dump_on_failure
    def time_passes(self, seconds: int) -> None:  # noqa: D417
        """Time passes with a live keeper: its round (every priced pair and every trigger in one
        transaction) ends the wait, as SPEC 5.8's keeper runs before anything can use a fresh
        price. Without it, an open executed after a long wait records a fresh price while a
        bankrupt heavier side is still open, and for up to a minute the lighter side receives
        funding the heavier side cannot pay (`keeper_gap` is the keeper away, then its round)."""
        self.step(f"- wait: {{seconds: {seconds}}}")
        self.step("- keeper: {}")
        self.mirror.wait(seconds)
        self._keeper_round()

    @invariant()
    @_dump_on_failure
    def nobody_gains_at_fixed_prices(self) -> None:
        self._economics_hold()

    def _checkpoint(self) -> None:
        self._economics_hold()

    def _economics_hold(self) -> None:
        """E1-E4 between the previous evaluation and now."""
        now, before = Economics(self.sim, self.mirror.model), self.economics
        self.economics = now
        # E4: an honest LP can always redeem for its deposits less both fees, less what it took
        model = self.mirror.model
        scale = model.scale
        mint = burn = model.pool.mint_fee_bps + model.pool.fee_spread_bps  # the highest: 30 bp
        for lp in LPS:
            flows = self.lp_flows[lp]
            if not flows.deposited:
                continue
            owed = flows.deposited * scale * (BPS - mint) * (BPS - burn) // BPS**2 - flows.withdrawn * scale
            # rounding: the locked minimum liquidity of the first deposit, a wei of price per
            # ALP, 4 wei a position, one token unit per withdrawal
            slack = (MINIMUM_LIQUIDITY + now.alp_chain[lp] // WAD + 4 * now.positions + 4
                     + scale * (1 + flows.withdrawals))
            assert now.redeemable[lp] >= owed - slack, \
                (f"{NAMES[lp]} cannot redeem its deposits less fees", float(Fraction(now.redeemable[lp] - owed, WAD)))
        if before is None or before.price is None or now.price is None:
            return
        # rounding: each charge and pnl is one floor or ceil (4 wei a position), and the
        # token conversions of a settlement or withdrawal one token unit
        tolerance = 4 * (before.positions + now.positions) + 4 + self.mirror.model.scale
        # E1: the collectible price never falls
        assert now.price >= before.price - Fraction(tolerance * WAD, now.supply), \
            ("collectible ALP price fell", float(before.price / WAD), float(now.price / WAD))
        # E2: the traders as a group never gain
        assert now.traders <= before.traders + tolerance, \
            ("traders gained", float(Fraction(now.traders - before.traders, WAD)))
        # E3: no LP-only actor gains by more than its ALP's share of the price's rise
        for lp in LPS:
            allowed = before.lps[lp] + before.alp[lp] * (now.price - before.price) / WAD + tolerance
            assert now.lps[lp] <= allowed, (f"{NAMES[lp]} gained", float((now.lps[lp] - allowed) / WAD))
        STATS["economic_checks"] += 1


class BnbMachine(ExchangeMachine):
    chain = "bnb"


class ArbitrumMachine(ExchangeMachine):
    chain = "arbitrum"


class BnbEconomicMachine(EconomicMachine):
    chain = "bnb"


class ArbitrumEconomicMachine(EconomicMachine):
    chain = "arbitrum"


SETTINGS = settings(max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None, derandomize=True,
                    suppress_health_check=list(HealthCheck))

TestBnb = BnbMachine.TestCase
TestBnb.settings = SETTINGS
TestArbitrum = ArbitrumMachine.TestCase
TestArbitrum.settings = SETTINGS
TestBnbEconomic = BnbEconomicMachine.TestCase
TestBnbEconomic.settings = SETTINGS
TestArbitrumEconomic = ArbitrumEconomicMachine.TestCase
TestArbitrumEconomic.settings = SETTINGS


def test_report_budget():
    """Prints what the run did (visible with -s; `make soak` shows it)."""
    machines = ", ".join(f"{name} {n}" for name, n in sorted(STATS["by_machine"].items()))
    print(f"stateful: {STATS['steps']} steps ({machines}), {STATS['checks']} invariant checks, "
          f"{STATS['economic_checks']} economic checks; basket rules {STATS['basket']}")
    assert STATS["steps"] > 0
    if len(STATS["by_machine"]) == 4 and (EXAMPLES, STEPS) == (25, 30):  # the whole CI budget ran
        assert STATS["steps"] >= CI_MIN_STEPS
        assert STATS["basket"].get("deposit", 0) >= 10 and STATS["basket"].get("withdraw", 0) >= 10, STATS["basket"]


def test_a_recorded_sequence_is_a_valid_scenario_file(tmp_path, monkeypatch):
    """What a failure prints is a scenario `alpsim run` accepts."""
    from alpsim.scenario import load_scenario

    monkeypatch.setattr(__import__(__name__), "FAILURE_FILE", str(tmp_path / "failure.yaml"))
    machine = BnbMachine()
    try:
        machine.start()
        machine.open(trader=1, pair="BTC/USD", long=True, leverage=100, amount=100, tp=0.05, sl=0.02)
        machine.move_price(pair="BTC/USD", bps=-30)
        machine.time_passes(seconds=600)
        machine.keeper_runs_triggers()
        machine.close(index=0)
        machine.write_scenario()
    finally:
        machine.teardown()
    scenario = load_scenario(tmp_path / "failure.yaml")
    assert [s.kind for s in scenario.steps] == ["prices", "deposit", "open", "prices", "wait", "keeper", "close"]
    assert scenario.accounts == ["t1", "t2", "t3", "t4", "lp5", "lp6"]
