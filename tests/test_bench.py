"""`alpsim bench`: its options and its JSON report, on a small run (the real figures come from
`make bench`; tests assert no times)."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def _bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "alpsim.cli", "bench", *args], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200"})


def test_an_unknown_backend_is_refused_before_any_work(tmp_path):
    out = tmp_path / "bench.json"
    done = _bench("--backend", "geth", "--out", str(out))
    assert done.returncode == 2
    assert "geth" in done.stderr and "embedded, revm, anvil" in done.stderr
    assert not out.exists()


def test_throughput_on_the_chosen_backend_and_gas_on_the_exact_one(tmp_path):
    out = tmp_path / "bench.json"
    done = _bench("--backend", "revm", "--positions", "3", "--round-trips", "20", "--traders", "10",
                  "--study-paths", "4", "--study-rounds", "1", "--out", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(out.read_text())
    assert list(report["throughput"]) == ["revm"]
    revm = report["throughput"]["revm"]
    assert revm["round_trips"] == 20 and revm["fast"]["round_trips_per_s"] > 0
    assert report["revm_vs_embedded_fast"] is None  # no embedded run to compare with in this run
    for chain in ("bnb", "arbitrum"):  # gas from the embedded backend: every operation a figure
        for run in report["gas"][chain].values():
            assert all(isinstance(gas, int) and gas > 21_000 for gas in run.values()), run
    assert report["peak_rss_mb"] > 0
    study = report["study"]  # the reference study, timed on 1 process and 2 workers: the same report
    assert study["paths"] == 4 and study["rounds"] == 1 and study["same_report"] and study["workers_2_paths_per_s"] > 0
    assert "throughput on bnb" in done.stdout
