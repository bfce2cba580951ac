"""The bundled keeper: feeds prices, executes requests (decrypting hidden orders with its key),
rejects the orders it cannot use, and runs take-profit, stop-loss and liquidation triggers,
many positions per transaction.

`Keeper` puts together its parts (`RequestBook`, `PriceFeeder`, `Executions`, and a `Round`
per round) on a session, a deployment and a clock, with the keeper's private key; it needs no
trader's client. Every name it has had stays: the parts' state (`prices`, `pending`,
`open_positions`, `cursor`...) reads and writes through it."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Callable

from ..deployment import KEEPER_ACCOUNT
from ..keys import dev_private_key
from ..protocol import RejectReason
from ..units import Number
from .book import PendingRequest, RequestBook
from .executions import Executions
from .prices import PriceFeeder
from .rounds import Round, RoundReport

if TYPE_CHECKING:
    from ..contracts import BoundContract, Session
    from ..deployment import Deployment
    from ..devnet.base import ChainClock


@dataclass
class KeeperState:
    """Everything a Keeper keeps between rounds (`Keeper.state()` / `restore()`)."""

    prices: dict[int, int]
    reference_updated_at: dict[int, int]
    reference_prices: dict[int, int]
    auto_refresh_reference: bool
    open_positions: dict[int, int]
    handled_requests: set[int]
    pending: dict[int, PendingRequest]
    cursor: int | None
    expiry_blocks: int | None
    asset_prices: dict[int, int] | None = None
    online: bool = True


class _Part:
    """An attribute of one of the keeper's parts, read and written through the keeper."""

    def __init__(self, part: str):
        self.part = part

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, keeper: Any, owner: type | None = None) -> Any:
        return self if keeper is None else getattr(getattr(keeper, self.part), self.name)

    def __set__(self, keeper: Any, value: Any) -> None:
        setattr(getattr(keeper, self.part), self.name, value)


class Keeper:
    """The keeper of a deployed system, sending from `deployment.keeper` and decrypting orders
    with `private_key` (default: dev account 9's). `clock` is what it needs of time (a devnet's
    `chain_clock`). `prices` holds its current price per pair id (18-decimal USD)."""

    prices = _Part("feeder")
    asset_prices = _Part("feeder")
    """Asset-only price id (128-255: BNB, the stablecoins) -> the keeper's price (18-decimal USD)."""
    reference_updated_at = _Part("feeder")
    reference_prices = _Part("feeder")
    """The reference feeds' answers as this keeper last set them (18-decimal USD)."""
    auto_refresh_reference = _Part("feeder")
    open_positions = _Part("book")
    """Position id -> pair id."""
    handled_requests = _Part("book")
    pending = _Part("book")
    cursor = _Part("book")
    """The last block whose logs the keeper has read; None until `sync()`."""
    expiry_blocks = _Part("book")
    plain_orders = _Part("executions")
    """The research mode (docs/mev.md): plain order frames read instead of decrypted; off by
    default, turned on only by a client on a devnet alpsim started itself."""

    def __init__(self, session: "Session", deployment: "Deployment", clock: "ChainClock",
                 private_key: bytes | None = None, plain_orders: bool = False):
        self.session, self.deployment, self.clock = session, deployment, clock
        self.address = deployment.keeper
        self.private_key = private_key if private_key is not None else dev_private_key(KEEPER_ACCOUNT)
        self.contracts: dict[str, BoundContract] = {
            role: session.contract(entry.name, entry.address, entry.abi) for role, entry in deployment.contracts.items()
        }
        self.book = RequestBook(session, self.trading, deployment, clock)
        self.feeder = PriceFeeder(session, deployment, self.contracts, clock, self.address)
        self.executions = Executions(session, self.trading, self.book, self.feeder, self.address, self.private_key,
                                     plain_orders=plain_orders)
        self.online = True
        """Whether this keeper is at work: off (an outage) it keeps no basket price fresh for LPs."""

    @property
    def trading(self) -> "BoundContract":
        return self.contracts["trading"]

    # ----- state
    def state(self) -> KeeperState:
        """A copy of everything the keeper keeps (for snapshots)."""
        return KeeperState(dict(self.prices), dict(self.reference_updated_at), dict(self.reference_prices),
                           self.auto_refresh_reference, dict(self.open_positions), set(self.handled_requests),
                           dict(self.pending), self.cursor, self.expiry_blocks, dict(self.asset_prices), self.online)

    def restore(self, state: KeeperState) -> None:
        self.prices, self.reference_updated_at = dict(state.prices), dict(state.reference_updated_at)
        self.reference_prices = dict(state.reference_prices)
        self.auto_refresh_reference = state.auto_refresh_reference
        self.open_positions, self.handled_requests = dict(state.open_positions), set(state.handled_requests)
        self.pending, self.cursor, self.expiry_blocks = dict(state.pending), state.cursor, state.expiry_blocks
        self.asset_prices, self.online = dict(state.asset_prices or {}), state.online

    # ----- prices (PriceFeeder)
    def pair_id(self, pair: str | int) -> int:
        return self.feeder.pair_id(pair)

    def price_book(self, price_id: int) -> dict[int, int]:
        """The book an oracle id's price lives in: `asset_prices` (ids 128-255) or `prices`."""
        return self.feeder.book(price_id)

    def price_wad(self, price_id: int) -> int | None:
        """The keeper's price of any oracle id (a pair, or an asset-only id), or None."""
        return self.feeder.price_wad(price_id)

    def aging_prices(self, price_ids: set[int]) -> set[int]:
        """Those of `price_ids` whose price on chain would be about to age by the next block
        (what `fresh_basket_prices` pushes)."""
        return self.executions.aging(set(price_ids))

    def set_prices(self, prices: dict[str | int, Number], *, reference: bool = True) -> None:
        """Moves the keeper's prices (and, by default, the reference feeds) to `prices`."""
        self.feeder.set_prices(prices, reference=reference)

    def set_reference(self, pair: str | int, price: Number) -> None:
        """Moves only the pair's reference feed (the Chainlink mock)."""
        self.feeder.set_reference(pair, price)

    def set_references(self, prices_wad: dict[int, int]) -> None:
        """Moves the reference feeds of the pairs of `prices_wad` (pair id -> 18-decimal USD)."""
        self.feeder.set_references(prices_wad)

    def follow_references(self, max_gap_bps: int) -> list[int]:
        """Moves the reference feeds more than `max_gap_bps` from the keeper's prices; the pairs
        moved (`PriceFeeder.follow_references`)."""
        return self.feeder.follow_references(max_gap_bps)

    def refresh_stale_references(self, pair_ids: set[int] | list[int]) -> list[int]:
        """Refreshes the reference feeds of `pair_ids` about to be older than the heartbeat;
        the pairs refreshed (`PriceFeeder.refresh_stale_references`)."""
        return self.feeder.refresh_stale_references(pair_ids)

    def price_inputs(self, pair_ids: set[int] | list[int]) -> list[tuple[int, int]]:
        """The keeper's prices of `pair_ids` as the engine takes them (a read)."""
        return self.feeder.price_inputs(pair_ids)

    # ----- transactions (Executions)
    def push_prices(self, pair_ids: list[int] | None = None) -> dict:
        """Records the keeper's prices on chain with no trade (indexes accrue)."""
        return self.executions.push_prices(pair_ids)

    def push_asset_prices(self, price_ids: set[int] | list[int] | None = None) -> dict | None:
        """Records the keeper's asset-only prices (BNB, the stablecoins; default all it has) on
        the oracle, their stale reference feeds refreshed first; None when it has none."""
        return self.executions.push_asset_prices(price_ids)

    def push_aging_asset_prices(self) -> dict | None:
        """Pushes the asset-only prices whose on-chain price is about to age (a live keeper's
        loop does it every round, as LPs on any client need them fresh); None when none is."""
        return self.executions.push_asset_prices(self.executions.aging_asset_prices())

    def fresh_basket_prices(self, asset: str | None = None) -> list[dict]:
        """What the keeper does every block on a real chain, done before an LP action: the prices
        the pool will read (every basket asset it holds, and `asset`) pushed when they would be
        stale by then, pair-backed ones (BTC, ETH) settled by a trigger run. Nothing while the
        keeper is offline or for a prices it has none of. The receipts."""
        if not self.deployment.basket or not self.online:
            return []
        self.adopt_asset_prices()
        return self.executions.fresh_basket_prices(self.deployment.basket_asset(asset))

    def adopt_asset_prices(self) -> None:
        """Gives the keeper a price for each of the basket's asset-only ids it has none of: the
        oracle's last keeper price, else the chain profile's start price (a keeper joining a
        running system, or a new devnet). Reference feeds move with them."""
        from ..errors import AlpsimError
        from ..profiles import FIRST_ASSET_PRICE_ID, get_profile

        missing = [e for e in self.deployment.basket
                   if e.price_id >= FIRST_ASSET_PRICE_ID and e.price_id not in self.asset_prices]
        if not missing:
            return
        try:
            start = get_profile(self.deployment.chain).start_asset_prices()
        except AlpsimError:  # a chain with no built-in profile: the oracle's prices only
            start = {}
        prices: dict[str | int, Number] = {}
        for entry in missing:
            on_chain = self.contracts["oracle"].call("keeperPrice", entry.price_id)[0]
            price = Decimal(on_chain) / 10**18 if on_chain else start.get(entry.symbol)
            if price is not None:
                prices[entry.symbol] = price
        self.set_prices(prices)

    def execute_open(self, request_id: int, ciphertext: bytes | None = None) -> dict:
        """Decrypts the request's order and executes it at the keeper's price."""
        return self.executions.execute_open(request_id, ciphertext)

    def execute_open_batch(self, request_ids: list[int], ciphertexts: list[bytes] | None = None) -> dict:
        """Executes the opens `request_ids` in one transaction (`Executions.execute_open_batch`)."""
        return self.executions.execute_open_batch(request_ids, ciphertexts)

    def execute_close(self, request_id: int, position_id: int | None = None) -> dict:
        return self.executions.execute_close(request_id, position_id)

    def execute_close_batch(self, request_ids: list[int], position_ids: list[int] | None = None) -> dict:
        """Executes the closes `request_ids` in one transaction (`Executions.execute_close_batch`)."""
        return self.executions.execute_close_batch(request_ids, position_ids)

    def reject_open(self, request_id: int, reason: RejectReason | int) -> dict:
        """Rejects an open whose order the keeper cannot use; the trader is refunded less the
        execution fee, which the keeper keeps."""
        return self.executions.reject_open(request_id, reason)

    def run_triggers(self, position_ids: list[int] | None = None, price_pairs: set[int] | None = None) -> dict:
        """Runs the triggers of the given (default: every open) position in one transaction,
        recording the prices of their pairs and of `price_pairs`."""
        return self.executions.run_triggers(position_ids, price_pairs)

    def classify(self, request: PendingRequest) -> tuple[tuple, bytes] | RejectReason:
        """The order tuple and salt of a pending open, or why the keeper must reject it."""
        return self.executions.classify(request)

    # ----- following the chain (RequestBook)
    def sync(self) -> None:
        """Rebuilds the books from every log since deployment; the cursor then follows the head."""
        self.book.sync()

    def poll(self, to_block: int | None = None) -> list[int]:
        """Reads the logs of blocks cursor+1 to `to_block` (default: the head); the ids of the
        new requests still pending."""
        return self.book.poll(to_block)

    def observe(self, receipt: dict) -> None:
        """Applies the engine events of one of the keeper's own receipts."""
        self.book.observe(receipt)

    def pending_requests(self) -> list[tuple[int, str, bytes | None]]:
        """The pending requests up to the head: (request id, "open" or "close", ciphertext of
        an open)."""
        return self.book.pending_requests()

    # ----- rounds
    def run_round(self, log: Callable[[str], None] = lambda message: None) -> RoundReport:
        """One round at the keeper's current prices (`Round.run`): logs, prices and triggers,
        then the checked requests executed and the unusable opens rejected."""
        return Round(self.book, self.executions, self.session, self.clock, self.poll, log).run()

    def execute_pending(self, log: Callable[[str], None] = lambda message: None) -> list[dict]:
        """Executes (or rejects) every pending request up to the head, with no trigger run;
        the receipts."""
        return Round(self.book, self.executions, self.session, self.clock, self.poll, log).execute_pending()
