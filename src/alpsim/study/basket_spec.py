"""The basket's part of a study file (docs/studies.md, "The basket"): which names a study may
price (pairs, and the chain's asset-only basket symbols; BTC and ETH the assets are their pairs),
the pool's `basket_targets`, the LP's `lp.basket` and the run's `lps.run.assets`."""

from __future__ import annotations

import difflib
from decimal import Decimal
from functools import cache
from typing import Any

from ..model.pair_registry import default_pairs
from ..profiles import get_profile
from ..yamlfile import line_for

PAIRS = {p.name: p for p in default_pairs()}


@cache
def chain_basket(chain: str) -> dict[str, Any]:
    """The chain profile's basket by symbol (BasketAsset), in listing order."""
    return {a.symbol: a for a in get_profile(chain).basket}


def basket_pairs(chain: str) -> set[str]:
    """The pairs whose prices are basket assets' (BTC/USD, ETH/USD)."""
    return {a.pair for a in chain_basket(chain).values() if a.pair is not None}


def asset_problem(chain: str, name: str, *, priced: bool) -> str | None:
    """Why `name` is not a price key (`priced`: a pair or an asset-only basket symbol) or not a
    basket symbol (not `priced`); None when it is one."""
    basket = chain_basket(chain)
    if not priced:
        if name in basket:
            return None
        return f"{name!r} is not in {chain}'s basket; basket assets: {', '.join(basket)}" + _close(name, list(basket))
    asset = basket.get(name)
    if name in PAIRS or (asset is not None and asset.pair is None):
        return None
    if asset is not None:
        return f"{name} the asset is the pair {asset.pair} (one price): give its model under {asset.pair}"
    known = list(PAIRS) + [s for s, a in basket.items() if a.pair is None]
    return f"unknown pair or basket asset {name!r}; known: {', '.join(known)}" + _close(name, known)


def _close(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def basket_problems(study: Any, lines: dict) -> list[tuple[int, str]]:
    """The targets', the LP's split's and the run's assets' problems: (line, reason) each."""
    problems: list[tuple[int, str]] = []

    def check_percent(table: dict[str, Decimal], field: str, whole_bp: bool) -> None:
        loc = tuple(field.split("."))
        for symbol, pct in table.items():
            problem = asset_problem(study.chain, symbol, priced=False)
            if problem is not None:
                problems.append((line_for((*loc, symbol), lines), f"{field}: {problem}"))
            elif pct < 0 or pct > 100:
                problems.append((line_for((*loc, symbol), lines),
                                 f"{field}.{symbol}: a share in % from 0 to 100, got {pct}"))
            elif whole_bp and pct * 100 != (pct * 100).to_integral_value():
                problems.append((line_for((*loc, symbol), lines),
                                 f"{field}.{symbol}: targets are whole basis points (0.01% steps), got {pct}"))
        if sum(table.values()) != 100:
            problems.append((line_for(loc, lines),
                             f"{field}: the shares must sum to 100 (%), got {sum(table.values())}"))

    if study.basket_targets is not None:
        check_percent(study.basket_targets, "basket_targets", whole_bp=True)
    if study.lp.basket is not None:
        check_percent(study.lp.basket, "lp.basket", whole_bp=False)
    if study.lps is not None and study.lps.run is not None and study.lps.run.assets is not None:
        assets = study.lps.run.assets
        for i, symbol in enumerate(assets):
            problem = asset_problem(study.chain, symbol, priced=False)
            if problem is not None:
                problems.append((line_for(("lps", "run", "assets", i), lines), f"lps.run.assets: {problem}"))
        if len(set(assets)) != len(assets) or not assets:
            problems.append((line_for(("lps", "run", "assets"), lines),
                             f"lps.run.assets: give each asset once, at least one: {assets}"))
    return problems
