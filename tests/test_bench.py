"""`alpsim bench`: its options and its JSON report, on a small run (the real figures come from
`make bench`; tests assert no times)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


def _bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "alpsim.cli", "bench", *args], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200"})


@pytest.mark.parametrize("flag, value, known", [("--backend", "geth", "embedded, revm, anvil"),
                                                ("--chain", "solana", "bnb, arbitrum")])
def test_an_unknown_backend_or_chain_is_refused_before_any_work(tmp_path, flag, value, known):
    out = tmp_path / "bench.json"
    done = _bench(flag, value, "--out", str(out))
    assert done.returncode == 2
    assert value in done.stderr and known in done.stderr and flag in done.stderr
    assert not out.exists()


def test_throughput_on_the_chosen_backend_and_gas_on_the_exact_one(tmp_path):
    out = tmp_path / "bench.json"
    done = _bench("--backend", "revm", "--chain", "arbitrum", "--positions", "0", "--round-trips", "20",
                  "--traders", "10", "--study-paths", "4", "--study-rounds", "1", "--out", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(out.read_text())
    assert list(report["throughput"]) == ["revm"]
    revm = report["throughput"]["revm"]
    assert revm["round_trips"] == 20 and revm["fast"]["round_trips_per_s"] > 0
    assert report["revm_vs_embedded_fast"] is None  # no embedded run to compare with in this run
    assert list(report["gas"]) == ["arbitrum"]  # --chain: that profile's gas alone
    # gas from the embedded backend: every operation a figure; --positions 0: no loaded run
    assert list(report["gas"]["arbitrum"]) == ["fresh"]
    assert all(isinstance(gas, int) and gas > 21_000 for gas in report["gas"]["arbitrum"]["fresh"].values())
    assert "gas on arbitrum: fresh devnet" in done.stdout
    assert report["peak_rss_mb"] > 0
    study = report["study"]  # the reference study, timed on 1 process and 2 workers: the same report
    assert study["paths"] == 4 and study["rounds"] == 1 and study["same_report"] and study["workers_2_paths_per_s"] > 0
    assert "throughput on bnb" in done.stdout


def test_the_gas_table_shows_each_operation_fresh_and_with_positions_open():
    """The loaded run's column and its change from the fresh devnet (the table alone, on made-up
    figures: tests/test_gas.py measures the real ones)."""
    from rich.console import Console

    from alpsim import bench

    fresh = {op: 100_000 for op in bench.OPS}
    loaded = {**fresh, "deposit": 110_000}
    console = Console(record=True, width=200)
    bench.print_result(console, {"gas": {"bnb": {"fresh": fresh, "with_7_positions": loaded}}, "test_suite_s": None,
                           "bench_s": 1.0, "peak_rss_mb": 1.0}, 7)
    text = console.export_text()
    assert "with 7 positions open" in text
    deposit = next(line for line in text.splitlines() if " deposit " in line)
    assert "110,000" in deposit and "+10.0%" in deposit
    assert text.count("+0.0%") == len(bench.OPS) - 1
