"""Where the gas of a lone keeper execution goes, on anvil (the figures in docs/performance.md).

    .venv/bin/python scripts/gas_profile.py [--chain bnb] [--positions 40]

On a fresh devnet (`bench.prepare_fresh`) with `--positions` open, traces a lone executeOpen
of the bench's anchor trade, its executeClose, a single liquidation and a deposit, three ways:
- per callee (`callTracer`): gas used by each call, and by the caller itself;
- per opcode group and call depth (struct logs; anvil runs with `--steps-tracing`);
- cold storage reads per contract.
Then, on a second fresh devnet, the gas of NAV's `poolClaimUsd` as sides open one at a time.
"""

from __future__ import annotations

import argparse
from collections import Counter

from alpsim import bench
from alpsim.client import Alpsim
from alpsim.devnet import anvil

CALLS = ("CALL", "STATICCALL", "DELEGATECALL")
GROUPS = ("SLOAD", "SSTORE", "LOG")
COLD_SLOAD_GAS = 2_100


def _with_steps_tracing() -> None:
    """Struct logs need anvil's `--steps-tracing`; the profile's anvil gets it."""
    init = anvil.AnvilProcess.__init__

    def patched(self, *args, extra_args=None, **kwargs):
        init(self, *args, extra_args=[*(extra_args or []), "--steps-tracing"], **kwargs)

    anvil.AnvilProcess.__init__ = patched


def _tx_hash(receipt) -> str:
    h = receipt["transactionHash"]
    h = h if isinstance(h, str) else h.hex()
    return h if h.startswith("0x") else "0x" + h


def per_callee(sim, names: dict[str, str], receipt) -> None:
    trace = sim.devnet.rpc("debug_traceTransaction", [_tx_hash(receipt), {"tracer": "callTracer"}])

    def walk(frame, depth):
        used = int(frame["gasUsed"], 16)
        children = frame.get("calls", [])
        own = used - sum(int(c["gasUsed"], 16) for c in children)
        label = "  " * depth + f"{names.get(frame['to'].lower(), frame['to'][:10])} {frame.get('input', '0x')[:10]}"
        print(f"  {label:52s} {used:>9,}   own {own:>9,}")
        for child in children:
            walk(child, depth + 1)

    walk(trace, 0)


def per_opcode(sim, names: dict[str, str], receipt) -> None:
    logs = sim.devnet.rpc("debug_traceTransaction", [_tx_hash(receipt), {"disableMemory": True, "disableStorage": True}])["structLogs"]
    by_group: Counter = Counter()
    cold: Counter = Counter()
    frames = [receipt["to"].lower()]  # storage context per depth (a delegatecall keeps its caller's)
    for i, step in enumerate(logs):
        depth, op = step["depth"], step["op"]
        del frames[depth:]
        nxt = next((j for j in range(i + 1, len(logs)) if logs[j]["depth"] <= depth), None)
        if nxt is None or logs[nxt]["depth"] < depth:  # the frame's last step
            cost = step["gasCost"]
        elif op in CALLS and nxt > i + 1:
            # the call's own cost: what the caller lost, less what the callee used
            last = max(j for j in range(i + 1, nxt) if logs[j]["depth"] == depth + 1)
            used_by_callee = logs[i + 1]["gas"] - (logs[last]["gas"] - logs[last]["gasCost"])
            cost = step["gas"] - logs[nxt]["gas"] - used_by_callee
        else:
            cost = step["gas"] - logs[nxt]["gas"]
        group = next((g for g in GROUPS if op.startswith(g)), "other")
        by_group[(depth, group)] += cost
        if op == "SLOAD" and cost >= COLD_SLOAD_GAS:
            cold[names.get(frames[-1], frames[-1][:10])] += 1
        if op in ("CALL", "STATICCALL"):
            frames.append("0x" + step["stack"][-2][2:].rjust(40, "0")[-40:].lower())
        elif op == "DELEGATECALL":
            frames.append(frames[-1])
    executed = sum(by_group.values())
    totals = Counter()
    for (_, group), gas in by_group.items():
        totals[group] += gas
    print(f"  intrinsic and calldata, less refunds {receipt['gasUsed'] - executed:,}")
    for group in (*GROUPS, "other"):
        print(f"  {group:8s} {totals[group]:>9,}   by depth: "
              + ", ".join(f"{d}: {g:,}" for (d, grp), g in sorted(by_group.items()) if grp == group))
    print("  cold storage reads: " + ", ".join(f"{k} {v}" for k, v in sorted(cold.items())))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chain", default="bnb")
    parser.add_argument("--positions", type=int, default=40)
    args = parser.parse_args()
    _with_steps_tracing()
    with Alpsim.launch(args.chain, "anvil", seed=1) as sim:
        bench.prepare_fresh(sim)
        names = {e.address.lower(): role for role, e in sim.deployment.contracts.items()}
        names.update({address.lower(): name for name, address in sim.deployment.libraries.items()})
        sim.fund(1, 100_000)
        if args.positions:
            bench._open_many(sim, args.positions)

        def show(label, receipt):
            print(f"== {label}: {receipt['gasUsed']:,} gas")
            per_callee(sim, names, receipt)
            per_opcode(sim, names, receipt)

        bench._next_second(sim)
        pending = sim.request_open(1, "BTC/USD", "long", 1_000, 50)
        show("executeOpen", sim.keeper.execute_open(pending.request_id, pending.ciphertext))
        bench._next_second(sim)
        close_id, _ = sim.request_close(1, pending.request_id)
        bench._next_second(sim)
        show("executeClose", sim.keeper.execute_close(close_id))
        doomed = sim.open(1, "BTC/USD", "long", 100, 1001).position.id
        sim.keeper.set_prices({"BTC/USD": 59_900})
        bench._next_second(sim)
        show("runTriggers, one liquidation", sim.keeper.run_triggers([doomed]))
        # a deposit (not the LP's first) priced at NAV over every pair with open interest
        sim.fund(bench.NEW_LP, 10_000)
        sim.deposit(bench.NEW_LP, 1)
        lp = sim.address(bench.NEW_LP)
        sim.contracts["collateral"].transact("approve", sim.pool_contract.address, sim.to_units(1_000), sender=lp)
        sim.keeper.push_prices()
        bench._next_second(sim)
        show("deposit", sim.pool_contract.transact("deposit", sim.to_units(1_000), 0, sender=lp))
    nav_by_side(args.chain)


def nav_by_side(chain: str) -> None:
    """NAV's gas (`debug_traceCall` of `poolClaimUsd`) with nothing open, then as BTC's long,
    BTC's short, ETH's short and ETH's long open one at a time."""
    with Alpsim.launch(chain, "anvil", seed=1) as sim:
        bench.prepare_fresh(sim)
        market = sim.contracts["market"]
        call = {"to": market.address, "data": market.encode("poolClaimUsd")}

        def nav_gas() -> int:
            trace = sim.devnet.rpc("debug_traceCall", [call, "latest", {"tracer": "callTracer"}])
            return int(trace["gasUsed"], 16)

        sim.fund(1, 100_000)
        readings = [("none", nav_gas())]
        for pair, side in [("BTC/USD", "long"), ("BTC/USD", "short"), ("ETH/USD", "short"), ("ETH/USD", "long")]:
            sim.open(1, pair, side, 1_000, 10)
            readings.append((f"+{pair} {side}", nav_gas()))
        print("== poolClaimUsd as sides open: " + ", ".join(f"{label} {gas:,}" for label, gas in readings))


if __name__ == "__main__":
    main()
