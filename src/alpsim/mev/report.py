"""`alpsim mev`'s output: the table (plain against hidden, per attack and per size and pair) as
text for the terminal and as markdown, and the report directory (`mev.json`, `mev.md`).

The markdown is a list of sections: the MEV table first, then one section per further key of
the result that has a writer in `SECTION_WRITERS` (the lead registers "leakage" and "keeper"
with `register_section`), in the order registered."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

ATTACK_TITLES = {
    "trader": "front-run as a trader (same side first, close after the fill)",
    "jit_lp": "just-in-time LP, deployed 48 h cooldown",
    "jit_lp_no_cooldown": "just-in-time LP, cooldown set to 0 (research)",
    "hunt": "position hunting (skew on the victim's side, 8 h hold)",
}
SECTION_WRITERS: dict[str, Callable[[dict], str]] = {}
"""Result key -> a function giving that section's markdown (with its own heading)."""


def register_section(key: str, writer: Callable[[dict], str]) -> None:
    """Appends the section `writer(result[key])` to every report whose result has `key`."""
    SECTION_WRITERS[key] = writer


def _cell(row: dict) -> tuple[str, str, str]:
    cost = row["victim_extra_cost_bps"]
    return (f"{row['acted']}/{row['orders']}" + (f" ({row['blocked']} blocked)" if row["blocked"] else ""),
            f"{row['profit_per_1000_orders_usd']:,.2f}", "n/a" if cost is None else f"{cost:.2f}")


def table_rows(result: dict) -> list[list[str]]:
    """[attack, size @ pair (depth), plain acted, plain profit / 1,000 orders, plain victim bp,
    hidden acted, hidden profit, hidden victim bp] per attack and group ("all" last)."""
    depths = {p: v["depth_usd"] for p, v in result["settings"]["pairs"].items()}
    rows = []
    for attack, modes in result["summary"].items():
        keys = sorted((k for k in modes["plain"] if k != "all"),
                      key=lambda k: (int(k.split("@")[0]), -depths[k.split("@")[1]])) + ["all"]
        for key in keys:
            if key == "all":
                label = "all orders"
            else:
                size, pair = key.split("@")
                label = f"{int(size):,} @ {pair} ({depths[pair] / 1e6:,.0f}M)"
            rows.append([attack, label, *_cell(modes["plain"][key]), *_cell(modes["hidden"][key])])
    return rows


HEADERS = ["attack", "notional USD @ pair", "plain: acted", "plain: searcher USD / 1,000 orders",
           "plain: victim extra bp", "hidden: acted", "hidden: searcher USD / 1,000 orders", "hidden: victim extra bp"]


TERMINAL_HEADERS = ["attack", "notional @ pair", "plain acted", "plain USD/1k", "plain bp", "hidden acted",
                    "hidden USD/1k", "hidden bp"]
"""The terminal's shorter headers: USD/1k is the searcher's profit per 1,000 orders, bp the
victims' extra cost."""


def command_line(result: dict) -> str:
    sizes = ",".join(str(s) for s in result["sizes_usd"])
    return f"alpsim mev --chain {result['chain']} --orders {result['orders']} --sizes {sizes}"


def mev_markdown(result: dict) -> str:
    """The MEV section: settings, the table, the searcher's mempool counts."""
    s = result["settings"]
    lines = [
        f"## MEV on {result['chain']}: plain against hidden orders",
        "",
        f"`{command_line(result)}` (seed {result['seed']}; sizes are notional USD; pool "
        f"{s['pool_usd']:,} USD at its targets; {s['block_time_s']} s blocks on anvil; profits before gas, "
        "from the searcher's balances: payout tokens plus its ALP at the pool's withdrawal quote).",
        "",
        "| " + " | ".join(HEADERS) + " |",
        "|" + "---|" * len(HEADERS),
    ]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(result)]
    seen = result["searcher"]
    lines += ["", f"The searcher read {seen['requests_seen']} open requests from the mempool, "
                  f"{seen['seen_pending']} of them before they were mined; it decoded pair, side and leverage "
                  f"from {seen['plain_decoded']} (plain) and from {seen['hidden_decoded']} hidden ones.", ""]
    return "\n".join(lines)


def markdown(result: dict) -> str:
    """The whole report: the MEV section, then each registered section the result has."""
    parts = [mev_markdown(result)]
    parts += [writer(result[key]) for key, writer in SECTION_WRITERS.items() if key in result]
    return "\n".join(parts)


def write_report(result: dict, directory: Path) -> list[Path]:
    """`mev.json` and `mev.md` in `directory` (made if missing); the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    out = [directory / "mev.json", directory / "mev.md"]
    out[0].write_text(json.dumps(result, indent=1) + "\n")
    out[1].write_text(markdown(result))
    return out


def print_table(console: Any, result: dict) -> None:
    """The table on the terminal (rich)."""
    from rich.table import Table

    table = Table(title=f"MEV on {result['chain']} ({command_line(result)})")
    for i, header in enumerate(TERMINAL_HEADERS):
        table.add_column(header, justify="left" if i < 2 else "right")
    for row in table_rows(result):
        table.add_row(*row)
    console.print(table)
    console.print("USD/1k: the searcher's profit per 1,000 orders (before gas); bp: the victims' extra cost; "
                  "(NM): the pair's 1% depth in millions of USD")
    seen = result["searcher"]
    console.print(f"searcher: {seen['requests_seen']} requests read from the mempool, {seen['seen_pending']} "
                  f"before they were mined; {seen['plain_decoded']} decoded (plain), {seen['hidden_decoded']} hidden")


def _register_sections() -> None:
    """The two further sections of `alpsim mev`: what a hidden request still shows, and the
    keeper as the adversary."""
    from .keeper_adversary import keeper_adversary_markdown
    from .leakage import leakage_markdown

    register_section("leakage", lambda section: "## What a hidden request still shows\n\n" + leakage_markdown(section))
    register_section("keeper", lambda section: "## The keeper as the adversary\n\n"
                     + keeper_adversary_markdown(section))


_register_sections()
