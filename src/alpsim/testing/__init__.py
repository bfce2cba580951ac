"""alpsim's testing kit for contract developers: assertions for tests of the contracts
(`reverts`, `emits` / `assert_event`, `balance_change`) and the pytest plugin
(`alpsim.testing.plugin`: fixtures `alpsim`, `trader`, `lp`, `keeper`, `prices`, `basket`; options
`--alpsim-chain`, `--alpsim-backend`, `--alpsim-contracts`, `--gas-report`, `--gas-snapshot`,
`--gas-check`, `--gas-tolerance`). See docs/testing.md."""

from .actors import DEFAULT_PRICES_USD, Actor, Basket, PriceControl
from .assertions import BalanceChange, EventCapture, RevertInfo, assert_event, balance_change, emits, reverts

__all__ = ["DEFAULT_PRICES_USD", "Actor", "BalanceChange", "Basket", "EventCapture", "PriceControl", "RevertInfo",
           "assert_event", "balance_change", "emits", "reverts"]
