"""The ALP basket's gas per asset (docs/performance.md, "the ALP basket"): on each chain
profile, a deposit of about 1,000 USD and a withdrawal of 100 ALP in every basket asset, the
basket at its target weights, on the bench's fresh devnet and with POSITIONS positions open.
Exact gas (the embedded EVM). `make bench` measures the same among everything else; this is the
basket's part alone, written to build/basket_gas.json.

    .venv/bin/python scripts/basket_gas.py [POSITIONS]
"""

from __future__ import annotations

import json
import sys

from alpsim.bench import fill_basket, measure_basket_gas, measure_gas, open_many, prepare_fresh
from alpsim.client import Alpsim
from alpsim.compiler import compile_contracts
from alpsim.paths import find_project


def main(positions: int = 1_000) -> dict:
    build = compile_contracts()
    out = {}
    for chain in ("bnb", "arbitrum"):
        with Alpsim.launch(chain, build=build, seed=1) as sim:
            prepare_fresh(sim)
            stable_only = measure_gas(sim)
            fill_basket(sim)
            out[chain] = {"stablecoin_only": {op: stable_only[op] for op in ("deposit", "withdraw")},
                          "fresh": measure_basket_gas(sim)}
            open_many(sim, positions)
            out[chain][f"with_{positions}_positions"] = measure_basket_gas(sim)
            print(chain, json.dumps(out[chain]), flush=True)
    path = find_project().build / "basket_gas.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"written: {path}")
    return out


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000)
