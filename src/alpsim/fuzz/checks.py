"""The checks the executor runs after every step: conservation per token, the pool's reserve and
escrow, custom errors only, and (prices fixed) E1-E4, the economics no actor may beat
(docs/fuzz.md; tests/test_stateful.py's docstring derives them)."""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING, Any

from ..errors import ContractRevert, ErrorString, Panic, UnknownRevert
from ..keys import decrypt_with
from ..model.math import pnl_usd_floor
from ..model.pool import MINIMUM_LIQUIDITY
from ..model.tokens import ESCROW, POOL
from ..orders import ORDER_ECIES, UndecryptableOrder, commitment, decode_order
from ..protocol import RejectReason

if TYPE_CHECKING:
    from .executor import Executor

WAD = 10**18
BPS = 10_000
CHECK_KINDS = ("invariants", "model", "economics")
"""What a checked scenario may check: the model-independent invariants, chain = model to the unit,
E1-E4 (prices fixed)."""
FAILURE_KINDS = ("invariant", "model", "economics", "revert", "crash")


class CheckFailed(AssertionError):
    """A check that failed: `kind` is one of FAILURE_KINDS."""

    def __init__(self, kind: str, message: str):
        self.kind, self.message = kind, message
        super().__init__(f"{kind}: {message}")


def classify(exc: BaseException) -> tuple[str, str]:
    """(kind, message) of a failure the executor met."""
    from ..mirror_basket import MirrorMismatch

    if isinstance(exc, CheckFailed):
        return exc.kind, exc.message
    if isinstance(exc, MirrorMismatch):
        return "model", str(exc)
    if isinstance(exc, AssertionError):
        return "invariant", str(exc) or repr(exc)
    if isinstance(exc, ContractRevert):
        return "revert", f"an unexpected revert: {exc!r}"
    return "crash", f"{type(exc).__name__}: {exc}"


_ABI_ERRORS: dict[int, frozenset[str]] = {}


def abi_error_names(sim: Any) -> frozenset[str]:
    """The custom errors the deployed contracts' ABIs declare (OpenZeppelin's included)."""
    if id(sim) not in _ABI_ERRORS:
        _ABI_ERRORS[id(sim)] = frozenset(entry["name"] for contract in sim.session.bound.values()
                                         for entry in contract.abi if entry.get("type") == "error")
    return _ABI_ERRORS[id(sim)]


def assert_custom_error(sim: Any, revert: ContractRevert) -> None:
    """Every revert is one of the ABIs' custom errors: never a Panic, a string or undecodable data."""
    if isinstance(revert, (Panic, ErrorString, UnknownRevert)):
        raise CheckFailed("revert", f"not a custom error: {revert!r}")
    if revert.error_name not in abi_error_names(sim):
        raise CheckFailed("revert", f"{revert.error_name} is no error of the ABIs: {revert!r}")


def keeper_verdict(sim: Any, ciphertext: bytes, commitment_: bytes, trader: str) -> RejectReason | None:
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


def invariants(ex: "Executor") -> None:
    """Conservation per token (to the unit, chain and model), the pool's reserve, the escrow
    holding exactly the pending requests and open margins, no request stuck past its window."""
    sim, model = ex.sim, ex.mirror.model
    token = sim.contracts["collateral"]
    holders = {sim.address(a) for a in ex.accounts.values()} | {
        sim.deployment.keeper, sim.deployment.treasury, sim.contracts["pool"].address, sim.contracts["trading"].address}
    held = sum(token.call("balanceOf", h) for h in holders)
    supply = token.call("totalSupply")
    if not held == supply == ex.minted:
        raise CheckFailed("invariant", f"collateral not conserved: held {held}, supply {supply}, minted {ex.minted}")
    pool = sim.pool()
    if pool.balance_units * 10 ** (18 - sim.decimals) * 8_000 < pool.reserve_wad * 10_000:
        raise CheckFailed("invariant", f"the pool does not cover its reserve: balance {pool.balance_units} units, "
                                       f"reserve {pool.reserve_wad} wad")
    pending = sum(r.amount_in for r in model.requests.values() if r.kind == "open" and r.status == "pending")
    margins = sum(p.margin_tokens for p in model.positions.values())
    if model.balances.get(ESCROW, 0) != pending + margins:
        raise CheckFailed("invariant", f"escrow {model.balances.get(ESCROW, 0)} != pending {pending} + margins {margins}")
    if model.balances.get(POOL, 0) != model.pool.pool_balance:
        raise CheckFailed("invariant", "the pool's balance is not its booked balance")
    if sim.collateral_units(sim.contracts["trading"].address) < pending + margins:
        raise CheckFailed("invariant", "the escrow cannot pay back the pending requests and margins")
    pool_addr = sim.contracts["pool"].address
    lps = [sim.address(a) for a in ex.accounts.values()]
    for e in ex.basket_assets:
        asset_token = sim.asset_token(e.symbol)
        on_chain = [asset_token.call("balanceOf", h) for h in [pool_addr, *lps]]
        if not sum(on_chain) == asset_token.call("totalSupply") == ex.asset_minted[e.symbol]:
            raise CheckFailed("invariant", f"{e.symbol} not conserved: held {sum(on_chain)}, minted "
                                           f"{ex.asset_minted[e.symbol]}")
        if sum(model.book_of(e.address).values()) != ex.asset_minted[e.symbol]:
            raise CheckFailed("model", f"the model's {e.symbol} books sum to {sum(model.book_of(e.address).values())}, "
                                       f"not the {ex.asset_minted[e.symbol]} minted")
        if not on_chain[0] == sim.pool_contract.call("holdingsOf", e.address) == model.pool.holdings_of(e.address):
            raise CheckFailed("invariant", f"the pool's {e.symbol} balance {on_chain[0]} is not its booked holdings")


class Economics:
    """The E1-E4 quantities of one state, in 18-decimal USD: every open position valued at the
    keeper price as if settled now (its close fee left out); the collectible NAV is the pool's
    balance plus the positions' claims."""

    def __init__(self, ex: "Executor") -> None:
        sim, model = ex.sim, ex.mirror.model
        now, scale = sim.devnet.timestamp, model.scale
        traders = {sim.address(a) for a in ex.traders}
        self.supply = model.pool.alp_supply
        self.positions = len(model.positions)
        self.traders = sum(model.balances.get(t, 0) for t in traders) * scale
        self.traders += sum(r.amount_in for r in model.requests.values()
                            if r.kind == "open" and r.status == "pending" and r.trader in traders) * scale
        nav = model.pool.pool_balance * scale
        for p in model.positions.values():
            pnl = pnl_usd_floor(p.is_long, p.qty, p.entry_price, model.keeper_prices[p.pair_id][0])
            holding, funding = model.accrued_charges(p, now)
            claim = min(p.margin_usd, holding + funding - pnl)
            nav += claim
            self.traders += p.margin_usd - claim
        self.nav = nav
        self.price = Fraction(nav * WAD, self.supply) if self.supply else None
        self.alp = {lp: model.pool.alp.get(sim.address(lp), 0) for lp in ex.lps}
        self.lps = {lp: model.balances.get(sim.address(lp), 0) * scale + Fraction(self.alp[lp] * nav, self.supply or 1)
                    for lp in ex.lps}
        redeem_price = sim.pool_contract.call("redeemAlpPrice")
        burn = model.pool.burn_fee_bps + model.pool.fee_spread_bps  # the highest burn fee
        self.alp_chain = {lp: sim.alp_balance_wad(lp) for lp in ex.lps}
        self.redeemable = {lp: self.alp_chain[lp] * redeem_price * (BPS - burn) // (WAD * BPS) for lp in ex.lps}


def economics_hold(ex: "Executor") -> None:
    """E1-E4 between the previous evaluation and now (prices fixed): E1 the collectible ALP price
    never falls, E2 the traders as a group never gain, E3 no LP-only actor gains by more than its
    ALP's share of the price's rise, E4 an honest LP can always redeem its deposits less both fees."""
    now, before = Economics(ex), ex.economics
    ex.economics = now
    model = ex.mirror.model
    scale = model.scale
    mint = burn = model.pool.mint_fee_bps + model.pool.fee_spread_bps
    for lp in ex.lps:
        flows = ex.lp_flows[lp]
        if not flows.deposited:
            continue
        owed = flows.deposited * scale * (BPS - mint) * (BPS - burn) // BPS**2 - flows.withdrawn * scale
        # rounding: the first deposit's locked minimum liquidity, a wei of price per ALP, 4 wei a
        # position, one token unit per withdrawal
        slack = MINIMUM_LIQUIDITY + now.alp_chain[lp] // WAD + 4 * now.positions + 4 + scale * (1 + flows.withdrawals)
        if now.redeemable[lp] < owed - slack:
            raise CheckFailed("economics", f"E4: {ex.name_of(lp)} cannot redeem its deposits less fees (short by "
                                           f"{float(Fraction(owed - now.redeemable[lp], WAD)):.6f} USD)")
    if before is None or before.price is None or now.price is None:
        return
    tolerance = 4 * (before.positions + now.positions) + 4 + scale
    if now.price < before.price - Fraction(tolerance * WAD, now.supply):
        raise CheckFailed("economics", f"E1: the collectible ALP price fell from {float(before.price / WAD):.12f} to "
                                       f"{float(now.price / WAD):.12f}")
    if now.traders > before.traders + tolerance:
        raise CheckFailed("economics", f"E2: the traders gained {float(Fraction(now.traders - before.traders, WAD)):.6f}"
                                       " USD at fixed prices")
    for lp in ex.lps:
        allowed = before.lps[lp] + before.alp[lp] * (now.price - before.price) / WAD + tolerance
        if now.lps[lp] > allowed:
            raise CheckFailed("economics", f"E3: {ex.name_of(lp)} gained {float((now.lps[lp] - allowed) / WAD):.6f} USD")
