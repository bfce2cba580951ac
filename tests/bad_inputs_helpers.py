"""What the bad-input tables (tests/test_bad_inputs_*.py) share.

- `RefusalTable`: runs a table's rows. A row names a prepared state (`conftest.PreparedStates`),
  an optional preparation, the caller, the contract, the call and its arguments, the expected
  error and its fields; arguments and fields may be functions of the deployed system, read just
  before the call. `refused` checks that the call reverts with exactly that error and those
  fields, and that nothing a refusal must leave alone moved: every balance of the ten dev
  accounts, the pool and the engine, the supplies, and what the table adds.
- Values read from the chain for rows (`addr`, `role_of`, `unauthorized`, ...).
- The oracle's and the pool's preparations: a pair's keeper price made *settled* by the
  keeper's trigger run, and each way a settled price can then be unusable for LPs
  (docs/mechanics.md sections 8 and 10). `PriceOracle.settledMarkPrice` checks, in this order:
  PriceStale (keeper price missing or older than the maximum age), ReferenceStale,
  CircuitBreakerTripped, PriceNotSettled (now past `settledUntil`). Each preparation makes exactly
  one of them fail first, for BTC (pair 0, the first pair checked), and ends with a transaction:
  a view called next runs on its block, a transaction sent next on a later one."""

from __future__ import annotations

import weakref
from typing import Any, Callable

import pytest

from alpsim import errors
from alpsim.units import WAD
from conftest import PreparedStates

MAX_UINT = 2**256 - 1
ZERO_ADDRESS = "0x" + "00" * 20
PRICES = {"BTC/USD": 60_000, "ETH/USD": 3_000, "SOL/USD": 150, "AAPL/USD": 200}
ROW_ARGS = "state, prep, caller, contract, function, args, error, fields"


def head_hash(sim) -> bytes:
    """The latest block's hash: the same hash is the same state."""
    return bytes(sim.session.block().hash)


def balances_snapshot(sim) -> dict:
    """Every balance a refusal must leave alone: collateral and platform tokens of the ten dev
    accounts, the pool and the engine; ALP of the accounts and its supply; the pool's books."""
    c = sim.contracts
    eoas = [sim.address(i) for i in range(10)]
    holders = eoas + [c["pool"].address, c["trading"].address]
    return {
        "collateral": [c["collateral"].call("balanceOf", a) for a in holders],
        "alp": [c["alp"].call("balanceOf", a) for a in eoas],
        "alp_supply": c["alp"].call("totalSupply"),
        "pool_balance_units": c["pool"].call("poolBalance"),  # sim.pool().balance_units
        "reserve_wad": c["pool"].call("reserveUsd"),
        "platform": [c["platform_token"].call("balanceOf", a) for a in holders],
    }


class RefusalTable:
    """A table of refusals over the prepared states `builders` makes; `extra(sim)` is what this
    table's refusals must also leave alone (settings, registries, prices ...)."""

    def __init__(self, builders: dict[str, Callable[[Any], None]], extra: Callable[[Any], dict] | None = None):
        self.enter = PreparedStates(builders).enter
        self.extra = extra
        self._snapshots: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()

    def snapshot(self, sim) -> dict:
        """`balances_snapshot` and the table's extra state, memoized by the head block's hash."""
        memo = self._snapshots.setdefault(sim.devnet, {})
        head = head_hash(sim)
        if head not in memo:
            memo[head] = {**balances_snapshot(sim), **(self.extra(sim) if self.extra else {})}
        return memo[head]

    def refused(self, sim, error_class: type, action: Callable[[], Any], **fields: Any) -> errors.ContractRevert:
        """`action` reverts with exactly `error_class`, exactly these `fields`, and changes nothing."""
        before = self.snapshot(sim)
        with pytest.raises(errors.ContractRevert) as info:
            action()
        assert type(info.value) is error_class, f"expected {error_class.__name__}, got {info.value!r}"
        assert info.value.error_args == fields
        assert self.snapshot(sim) == before
        return info.value

    def run_row(self, sim, state, prep, caller, contract, function, args, error, fields, *,
                view: bool = False) -> None:
        """One row: enter its state, run its preparation, resolve its arguments and fields, and
        check the call (a transaction, or a view when `view`) is refused as the row says."""
        self.enter(sim, state)
        if prep:
            prep(sim)
        args = args(sim) if callable(args) else tuple(resolve(a, sim) for a in args)
        fields = {k: resolve(v, sim) for k, v in resolve(fields, sim).items()}
        target = sim.contracts[contract]
        who = sim.address(caller)
        if view:
            action = lambda: target.call(function, *args, sender=who)  # noqa: E731
        else:
            action = lambda: target.transact(function, *args, sender=who)  # noqa: E731
        self.refused(sim, getattr(errors, error), action, **fields)


def params(rows: list[tuple]) -> dict:
    """pytest.mark.parametrize's arguments for `rows` (each row's first item is its id)."""
    return {"argvalues": [r[1:] for r in rows], "ids": [r[0] for r in rows]}


def engine_books(sim, lp: int, requests=(), positions=()) -> dict:
    """What a refused call to the engine must leave as it was (the request and execution tables):
    collateral and platform tokens of the dev accounts, the engine and the pool; the pool's books
    (booked balance, reserve, ALP supply, `lp`'s ALP); the request counter; the requests and
    positions involved."""
    trading, pool = sim.contracts["trading"], sim.contracts["pool"]
    holders = [sim.address(i) for i in range(10)] + [trading.address, pool.address]
    collateral, platform = sim.contracts["collateral"], sim.contracts["platform_token"]
    return {
        "collateral": {a: collateral.call("balanceOf", a) for a in holders},
        "platform_token": {a: platform.call("balanceOf", a) for a in holders},
        "pool": (pool.call("poolBalance"), pool.call("reserveUsd"), sim.contracts["alp"].call("totalSupply"),
                 sim.alp_balance_wad(lp)),
        "counters": trading.call("nextRequestId"),
        "requests": {r: trading.call("request", r) for r in requests},
        "positions": {p: (trading.call("position", p), trading.call("pendingClose", p)) for p in positions},
    }


# ------------------------------------------------------------------ values read from the chain

def resolve(value: Any, sim) -> Any:
    return value(sim) if callable(value) else value


def addr(i: int) -> Callable:
    return lambda s: s.address(i)


def role_of(contract: str, name: str) -> Callable:
    return lambda s: s.contracts[contract].call(name)


def unauthorized(who: int, contract: str, role: str) -> dict:
    return {"account": addr(who), "neededRole": role_of(contract, role)}


# ------------------------------------------------------------------ the pool's and tokens' funded state

COOLDOWN_S = 48 * 3600  # docs/mechanics.md section 10
ADMIN, TRADER, HOLDER, TRADER3, LP, TREASURY, KEEPER = 0, 1, 2, 3, 7, 8, 9
"""The dev accounts of `build_funded` (the pool's and the tokens' tables)."""


def build_funded(sim) -> None:
    """LP holds 10,000 USD of ALP past its cooldown and tokens approved to the pool; HOLDER holds
    ALP still in its cooldown; TRADER, HOLDER and TREASURY hold platform tokens; TRADER has
    tokens and no allowance; the keeper holds nothing."""
    platform = sim.contracts["platform_token"]
    for who, amount in ((TRADER, 5_000), (HOLDER, 1_000), (TRADER3, 1_000), (LP, 20_000)):
        sim.fund(who, amount)
    for who in (TRADER, HOLDER, TREASURY):
        platform.transact("mint", sim.address(who), 1_000 * WAD, sender=sim.address(ADMIN))
    sim.deposit(LP, 10_000)
    sim.devnet.advance_time(COOLDOWN_S + 1)
    sim.deposit(HOLDER, 100)
    sim.contracts["collateral"].transact("approve", sim.pool_contract.address, MAX_UINT, sender=sim.address(LP))


# ------------------------------------------------------------------ the clock and settled prices

MAX_AGE_S = 60  # docs/mechanics.md §8
BTC = 0


def smallest_breaking_withdrawal(rule: Callable[[int], tuple[int, bool]], alp_held: int) -> int:
    """The smallest ALP amount (1 to `alp_held`) whose withdrawal breaks `rule` (its second
    value), by bisection: the rule holds for 1 and breaks for `alp_held`, monotonically."""
    lo, hi = 1, alp_held
    assert rule(hi)[1] and not rule(lo)[1]
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if rule(mid)[1] else (mid, hi)
    return hi


def wait_until_next_block_at(sim, timestamp: int) -> None:
    """Moves the clock so that the next transaction's block is stamped `timestamp`."""
    clock = sim.devnet.clock
    target_ms = timestamp * 1000 - clock.block_time_ms
    assert target_ms > clock.head_ms, (timestamp, clock.head_ms)
    sim.devnet.advance_time((target_ms - clock.head_ms) / 1000)
    assert clock.next_timestamp == timestamp


def price_at(pair_id: int) -> Callable:
    """The time of the pair's keeper price (`keeperPrice(pairId).updatedAt`)."""
    return lambda s: s.contracts["oracle"].call("keeperPrice", pair_id)[1]


def keeper_price(pair_id: int) -> Callable:
    return lambda s: s.contracts["oracle"].call("keeperPrice", pair_id)[0]


def reference_price(pair_id: int) -> Callable:
    return lambda s: s.contracts["oracle"].call("referencePrice", pair_id)[0]


def reference_at(pair_id: int) -> Callable:
    """The time of the pair's reference round."""
    return lambda s: s.contracts["oracle"].call("referencePrice", pair_id)[1]


def settled_until(pair_id: int) -> Callable:
    return lambda s: s.contracts["oracle"].call("settledUntil", pair_id)


def open_pairs(sim) -> list[int]:
    """The pairs the keeper's open positions are on (those with open interest)."""
    return sorted(set(sim.keeper.open_positions.values()))


def settle(sim, pairs: list[int] | None = None) -> dict:
    """The keeper's trigger run (`runTriggers`) at its current prices over the open positions of
    `pairs` (default: all), reference rounds older than 30 s refreshed first: their prices are
    settled. Nothing closes, and each of those pairs is settled now."""
    pairs = open_pairs(sim) if pairs is None else pairs
    ids = sorted(pid for pid, pair in sim.keeper.open_positions.items() if pair in pairs)
    assert ids, "no open position to run the triggers of"
    receipt = sim.keeper.run_triggers(ids)
    assert sim.session.events(receipt, "PositionClosed") == []
    now = sim.devnet.timestamp
    for pair in pairs:
        assert settled_until(pair)(sim) >= now, (pair, settled_until(pair)(sim), now)
    return receipt


def reference_stale(sim) -> None:
    """Settled, then 61 s after BTC's reference round the keeper pushes the same prices again
    without a new reference round (`updatePrices` straight on the engine): the keeper price is
    fresh, the reference is not (and the settlement, tied to that round, has lapsed too:
    ReferenceStale is checked first)."""
    settle(sim)
    ref_at = reference_at(BTC)(sim)
    wait_until_next_block_at(sim, ref_at + MAX_AGE_S + 1)
    oracle = sim.contracts["oracle"]
    prices = [(pair, oracle.call("keeperPrice", pair)[0]) for pair in open_pairs(sim)]
    sim.contracts["trading"].transact("updatePrices", prices, sender=sim.keeper.address)
    assert reference_at(BTC)(sim) == ref_at
    assert price_at(BTC)(sim) == sim.devnet.timestamp  # fresh


def breaker(sim) -> None:
    """Settled, then BTC's reference round moves 1.67% away from the keeper's 60,000 (past the
    1% circuit breaker) and the keeper's next round finds the breaker tripped: the keeper price
    stays fresh, and is no longer settled (until then the window granted stands: see
    test_pool_books)."""
    settle(sim)
    assert keeper_price(BTC)(sim) == 60_000 * WAD
    sim.keeper.set_reference("BTC/USD", 61_000)
    receipt = sim.keeper.run_triggers(sorted(sim.keeper.open_positions))
    assert sim.session.events(receipt, "PositionClosed") == []
    assert settled_until(BTC)(sim) == 0 and price_at(BTC)(sim) == sim.devnet.timestamp


def new_price_unsettled(sim) -> None:
    """Settled, then a new BTC price (60,100, its reference along) recorded by a bare
    `updatePrices` (the keeper's `push_prices`), no triggers since: not settled."""
    settle(sim)
    sim.keeper.set_prices({"BTC/USD": 60_100})
    sim.keeper.push_prices([BTC])
    assert keeper_price(BTC)(sim) == 60_100 * WAD
    assert settled_until(BTC)(sim) == 0


def settlement_aged(sim) -> None:
    """Settled, then 61 s past BTC's settlement the keeper pushes the same prices with
    `updatePrices` (a fresh reference round first): keeper price and reference are fresh, but
    `settledUntil` does not move with a same-price update, so the price is no longer settled."""
    settle(sim)
    until = settled_until(BTC)(sim)
    wait_until_next_block_at(sim, until + 1)
    price = keeper_price(BTC)(sim)
    sim.keeper.push_prices()
    assert keeper_price(BTC)(sim) == price
    assert price_at(BTC)(sim) > until and reference_at(BTC)(sim) > until  # both fresh again
    assert settled_until(BTC)(sim) == until < sim.devnet.timestamp
