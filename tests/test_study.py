"""The risk lab (`alpsim study`): the same study gives the same report.json byte for byte in one
process, on a 2-worker local Dask cluster, and on a real `dask scheduler` with two `dask worker`
processes on 127.0.0.1, also when one of those workers is killed mid-study; the command's JSON,
its refusals and its partial report on Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from alpsim.study import load_study, parse_study, run_study

SMALL = """
name: small
chain: bnb
seed: 5
paths: 6
horizon: {duration: 1h, step: 5m}
pool: {liquidity: 1_000_000}
prices:
  BTC/USD: {model: gbm, volatility: 0.8}
  ETH/USD: {model: jump, volatility: 0.6, intensity: 2000, jump_mean: -0.002, jump_std: 0.004}
correlation: [[1, 0.5], [0.5, 1]]
cohort:
  - {pair: BTC/USD, side: long, leverage: 1001, amount: 100}
  - {pair: BTC/USD, side: short, leverage: 100, amount: 200, take_profit: 0.01}
  - {pair: ETH/USD, side: long, leverage: 50, amount: 100, stop_loss: 0.005}
"""


def _dumps(report: dict) -> str:
    return json.dumps(report, sort_keys=True)


@pytest.fixture(scope="module")
def small(build):
    """The small study and its report from one process: the reference."""
    study = parse_study(SMALL)
    return study, run_study(study, Path("."), workers=1, build=build).report


def test_one_process_gives_a_complete_report(small):
    study, report = small
    assert report["paths_done"] == report["paths_requested"] == 6 and not report["partial"]
    assert set(report["cohort"]) == {"BTC/USD long 1001x", "BTC/USD short 100x", "ETH/USD long 50x"}
    for group in report["cohort"].values():
        assert group["opened"] + sum(group["refused"].values()) == 6
        assert len(group["survival"]) == study.horizon.steps + 1
        assert all(a >= b for a, b in zip(group["survival"], group["survival"][1:]))  # survival only falls
    assert len(report["pool"]["alp_price_fan"]["p50"]) == study.horizon.steps + 2
    assert report["pool"]["var"]["99"] >= report["pool"]["var"]["95"]


def test_a_two_worker_local_cluster_gives_the_same_report(small, build):
    study, reference = small
    report = run_study(study, Path("."), workers=2, build=build).report
    assert _dumps(report) == _dumps(reference)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def dask_cluster():
    """A real `dask scheduler` and two `dask worker` processes (no nanny: a killed worker stays
    dead) on 127.0.0.1."""
    from dask.distributed import Client

    address = f"tcp://127.0.0.1:{_free_port()}"
    port = address.rsplit(":", 1)[1]
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                               "--port", port, "--no-dashboard"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        for _ in range(2):
            procs.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads",
                                           "1", "--no-nanny", "--no-dashboard"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
        yield address, procs[1:]
    finally:
        for p in procs:
            p.kill()
            p.wait()


def test_a_dask_scheduler_and_two_workers_give_the_same_report_even_when_a_worker_dies(small, build, dask_cluster):
    study, reference = small
    address, workers = dask_cluster
    assert _dumps(run_study(study, Path("."), scheduler=address, build=build).report) == _dumps(reference)

    killed = []

    def kill_one_worker(result):  # noqa: ANN001 - after the first result of the second run
        if not killed:
            workers[0].send_signal(signal.SIGKILL)
            killed.append(result["index"])

    report = run_study(study, Path("."), scheduler=address, build=build, on_result=kill_one_worker).report
    workers[0].wait(timeout=30)
    assert killed and workers[0].returncode == -signal.SIGKILL
    assert _dumps(report) == _dumps(reference)


def _cli(*args: str, **kw) -> subprocess.CompletedProcess:  # noqa: ANN003
    return subprocess.run([sys.executable, "-m", "alpsim.cli", "study", *args], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200"}, **kw)


def test_cli_json_equals_the_report_and_writes_the_files(small, tmp_path):
    _, reference = small
    study_file = tmp_path / "small.yaml"
    study_file.write_text(SMALL)
    done = _cli(str(study_file), "--workers", "1", "--json", "--report", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == json.loads(_dumps(reference))
    assert (tmp_path / "out" / "report.json").read_text().strip() == json.dumps(reference, indent=1, sort_keys=True)
    for name in ("summary.md", "survival.png", "lp_returns.png", "alp_price_fan.png"):
        assert (tmp_path / "out" / name).stat().st_size > 0, name


def test_cli_refuses_workers_with_a_scheduler_and_an_unknown_backend(tmp_path):
    study_file = tmp_path / "small.yaml"
    study_file.write_text(SMALL)
    both = _cli(str(study_file), "--workers", "2", "--scheduler", "tcp://127.0.0.1:1")
    assert both.returncode == 2 and "give one" in both.stderr
    backend = _cli(str(study_file), "--backend", "geth")
    assert backend.returncode == 2 and "geth" in backend.stderr


def test_ctrl_c_writes_a_partial_report(tmp_path):
    study_file = tmp_path / "long.yaml"
    study_file.write_text(SMALL.replace("paths: 6", "paths: 400"))
    proc = subprocess.Popen([sys.executable, "-m", "alpsim.cli", "study", str(study_file), "--workers", "1",
                             "--report", str(tmp_path / "out")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    time.sleep(12)  # start-up, then a few paths (a fraction of a second each)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["partial"] and 0 < report["paths_done"] < 400
    assert "partial report" in err


def test_the_shipped_studies_are_valid():
    studies = sorted((Path(__file__).parent.parent / "studies").glob("*.yaml"))
    assert studies
    for path in studies:
        assert load_study(path).paths >= 100, path
