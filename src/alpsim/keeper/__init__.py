"""The keeper: prices, executions and triggers for a deployed system (`Keeper`), in parts:

- `book`: the request book (pending requests and open positions from the engine's logs, the log
  cursor, expiry);
- `prices`: the keeper's prices and the reference feeds it moves and refreshes;
- `executions`: checking open requests (decrypting the hidden order) and the engine
  transactions (execute, reject, triggers, price pushes) with their batching;
- `rounds`: a round (`run_round`, `execute_pending`) putting the three together;
- `keeper`: the `Keeper` itself, built from a session, a deployment and a clock."""

from .book import MAX_LOG_RANGE_BLOCKS, WATCHED_EVENTS, PendingRequest, RequestBook, event_topics
from .executions import BATCH_GAS_PER_ITEM, MAX_BATCH_REQUESTS, REJECT_GAS, REJECTED_STATUS, Executions
from .keeper import Keeper, KeeperState
from .prices import REFERENCE_DECIMALS, REFERENCE_GAS, REFERENCE_REFRESH_S, PriceFeeder
from .rounds import Round, RoundReport

__all__ = ["BATCH_GAS_PER_ITEM", "MAX_BATCH_REQUESTS", "MAX_LOG_RANGE_BLOCKS", "REFERENCE_DECIMALS", "REFERENCE_GAS",
           "REFERENCE_REFRESH_S", "REJECTED_STATUS", "REJECT_GAS", "WATCHED_EVENTS", "Executions", "Keeper",
           "KeeperState", "PendingRequest", "PriceFeeder", "RequestBook", "Round", "RoundReport", "event_topics"]
