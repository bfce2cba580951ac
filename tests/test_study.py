"""The risk lab (`alpsim study`): the same study gives the same report.json byte for byte in one
process, on a 2-worker local Dask cluster, and on a real `dask scheduler` with two `dask worker`
processes on 127.0.0.1, also when one of those workers is killed mid-study; the command's JSON,
its refusals and its partial report on Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from alpsim.paths import find_project
from alpsim.study import load_study, parse_study, run_study
from conftest import default_sigint

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
traders:
  arrivals_per_hour: 24
  accounts: 6
  profiles:
    - {name: degen, weight: 2, leverage: {choice: [500, 1001]}, amount: {lognormal: {median: 80, sigma: 0.8}},
       holding: {exponential: {mean: 20m}}, take_profit: {share: 0.5, move: 0.002}}
    - {name: careful, weight: 1, pairs: [ETH/USD], long_share: 0.2, leverage: {uniform: [2, 20]},
       amount: {fixed: 500}, holding: {fixed: 30m}, stop_loss: {share: 1, move: 0.01}}
    - {name: reckless, weight: 1, pairs: [ETH/USD], leverage: {fixed: 5000}, amount: {fixed: 50}, holding: {fixed: 1h}}
lps:
  deposits_per_day: 120
  amount: {lognormal: {median: 20000, sigma: 1}}
  stay: {exponential: {mean: 15m}}
  accounts: 3
settings:
  pool: {cooldownSeconds: 1200}
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
    crowd = report["crowd"]
    assert set(crowd["by_profile"]) == {"degen", "careful", "reckless"} and crowd["orders"] > 0
    for group in crowd["by_profile"].values():  # every order opened or refused (none left pending)
        assert group["opened"] + sum(group["refused"].values()) == group["orders"]
        assert sum(group["closed_by"].values()) == group["opened"]  # and every opened one closed
    # 5000x is past every pair's maximum: clamped to ETH/USD's 1001x by the crowd's slider
    assert set(crowd["by_leverage"]) <= {"500x", "1001x"} | {f"{n}x" for n in range(2, 21)}
    assert crowd["by_profile"]["degen"]["fees_usd"]["execution"] > 0
    flows = report["pool"]["lp_flows"]  # LPs came and went; some withdrawals met the 20-minute cooldown
    assert flows["deposits_per_path"] > 0 and flows["withdrawals_per_path"] > 0
    assert set(flows["withdrawals_refused"]) <= {"CooldownActive"}


def test_a_two_worker_local_cluster_gives_the_same_report(small, build):
    study, reference = small
    report = run_study(study, Path("."), workers=2, build=build).report
    assert _dumps(report) == _dumps(reference)


def _lean_settings() -> dict:  # runs on a worker or the scheduler
    import dask

    from alpsim.study.distributed import LEAN_WORKERS
    return {key: dask.config.get(key) for key in LEAN_WORKERS}


def _timers_ms(dask_worker=None, dask_scheduler=None) -> dict:  # noqa: ANN001 - runs on a worker or the scheduler
    server = dask_worker or dask_scheduler
    return {name: timer.callback_time for name, timer in server.periodic_callbacks.items()}


def test_alpsims_local_cluster_runs_dask_housekeeping_lean_on_every_process():
    """The scheduler, the two nannies (in this process) and the two workers run their timers at
    LEAN_WORKERS's intervals, and the workers run without the profiler."""
    from dask.distributed import Client
    from dask.utils import parse_timedelta

    from alpsim.study.distributed import LEAN_WORKERS, local_cluster
    lean_ms = {name: 1000 * parse_timedelta(LEAN_WORKERS[f"distributed.{key}"]) for name, key in
               [("tick", "admin.tick.interval"), ("monitor", "admin.system-monitor.interval"),
                ("memory_monitor", "worker.memory.monitor-interval")]}
    with local_cluster(2) as cluster, Client(cluster) as client:
        workers = client.run(_timers_ms)
        scheduler = client.run_on_scheduler(_timers_ms)
        nannies = [_timers_ms(nanny) for nanny in cluster.workers.values()]
        worker_settings = client.run(_lean_settings)
    assert len(workers) == 2 and len(nannies) == 2
    for timers in [*workers.values(), *nannies]:
        assert {name: timers[name] for name in lean_ms} == lean_ms, timers
    assert {name: scheduler[name] for name in ("tick", "monitor")} == {n: lean_ms[n] for n in ("tick", "monitor")}
    assert all(settings == LEAN_WORKERS for settings in worker_settings.values())


def _engines_here() -> dict:  # runs on a worker
    import gc

    from alpsim.study import distributed
    return {**distributed.engines_in_process(), "frozen": gc.get_freeze_count()}


def test_forked_workers_deploy_their_own_engine_and_leave_the_parents_alone(small, build):
    """On Linux the local cluster forks its workers from this process, which already holds an engine
    for the study (the module fixture ran it here): each worker puts that copy aside, deploys its
    own, gives the same path results, and this process's engine still runs after."""
    from dask.distributed import Client

    from alpsim.study import distributed
    study, _ = small
    assert distributed.START_METHOD == "fork"  # Linux
    here = [distributed.run_path(study, Path("."), build, "revm", i) for i in range(4)]
    parents = distributed.engines_in_process()["own"]
    with distributed.local_cluster(2) as cluster, Client(cluster) as client:
        addresses = sorted(client.scheduler_info()["workers"]) * 2  # two paths on each worker
        futures = [client.submit(distributed.run_chunk, study, Path("."), build, "revm", [i], pure=False,
                                 workers=[address]) for i, address in enumerate(addresses)]
        there = [r for chunk in client.gather(futures) for r in chunk]
        seen = client.run(_engines_here)
    assert len(seen) == 2
    for worker in seen.values():
        assert worker["inherited"] == [parents] and worker["own"] == parents  # its own engine, same study
        assert worker["frozen"] == 0  # the heap thawed between tasks
    assert _dumps({"r": there}) == _dumps({"r": here})
    assert _dumps(distributed.run_path(study, Path("."), build, "revm", 0)) == _dumps(here[0])


def test_paths_in_process_run_with_the_heap_frozen_and_thawed_after(small, build):
    import gc

    from alpsim.study.distributed import run_paths
    study, _ = small
    frozen_during = []
    run_paths(study, Path("."), build, [0, 1], workers=1,
              on_result=lambda result: frozen_during.append(gc.get_freeze_count()))
    assert len(frozen_during) == 2 and all(count > 1000 for count in frozen_during)
    assert gc.get_freeze_count() == 0


def test_the_documented_environment_gives_workers_you_start_the_same_settings():
    """docs/studies.md's `export` lines, read by Dask in a fresh process, are LEAN_WORKERS."""
    from alpsim.study.distributed import LEAN_WORKERS
    docs = (find_project().root / "docs" / "studies.md").read_text()
    exported = dict(line.removeprefix("export ").split("=", 1) for line in docs.splitlines()
                    if line.startswith("export DASK_"))
    assert len(exported) == len(LEAN_WORKERS)
    probe = "import json, dask; from alpsim.study.distributed import LEAN_WORKERS; " \
            "print(json.dumps({k: dask.config.get(k) for k in LEAN_WORKERS}))"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASK_")}
    done = subprocess.run([sys.executable, "-c", probe], env={**env, **exported}, capture_output=True, text=True,
                          check=True)
    assert json.loads(done.stdout) == LEAN_WORKERS


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
    for name in ("summary.md", "survival.png", "crowd_survival.png", "lp_returns.png", "alp_price_fan.png"):
        assert (tmp_path / "out" / name).stat().st_size > 0, name


def test_cli_refuses_workers_with_a_scheduler_and_an_unknown_backend(tmp_path):
    study_file = tmp_path / "small.yaml"
    study_file.write_text(SMALL)
    both = _cli(str(study_file), "--workers", "2", "--scheduler", "tcp://127.0.0.1:1")
    assert both.returncode == 2 and "give one" in both.stderr
    backend = _cli(str(study_file), "--backend", "geth")
    assert backend.returncode == 2 and "geth" in backend.stderr


def _stderr_until(proc: subprocess.Popen, pattern: str, timeout_s: float) -> str:
    """What the process wrote to stderr up to the first match of `pattern` (it must match in time)."""
    seen, deadline, fd = b"", time.monotonic() + timeout_s, proc.stderr.fileno()
    while not re.search(pattern, seen.decode(errors="replace")):
        assert time.monotonic() < deadline and proc.poll() is None, seen.decode(errors="replace")
        if select.select([fd], [], [], 0.5)[0]:
            seen += os.read(fd, 1 << 16)
    return seen.decode(errors="replace")


def test_ctrl_c_writes_a_partial_report(tmp_path):
    study_file = tmp_path / "long.yaml"
    study_file.write_text(SMALL.replace("paths: 6", "paths: 400"))
    # rich draws its progress bar into the pipe as into a terminal: Ctrl-C once a path is done
    env = {**os.environ, "TTY_INTERACTIVE": "1", "TTY_COMPATIBLE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "alpsim.cli", "study", str(study_file), "--workers", "1",
                             "--report", str(tmp_path / "out")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env, preexec_fn=default_sigint)
    _stderr_until(proc, r"\b[1-9][0-9]*/400\b", timeout_s=120)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["partial"] and 0 < report["paths_done"] < 400
    assert b"partial report" in err


def test_the_shipped_studies_are_valid():
    studies = sorted((Path(__file__).parent.parent / "studies").glob("*.yaml"))
    assert studies
    for path in studies:
        assert load_study(path).paths >= 100, path


SWEEP = SMALL.replace("paths: 6", "paths: 3").split("traders:")[0] + """sweep:
  prices.BTC/USD.volatility: [0.2, 1.5]
  settings.pairs.ETH/USD.maxOiPerSideUsd: [10, 100_000_000]
"""


@pytest.fixture(scope="module")
def sweep(build, tmp_path_factory):
    """The sweep's run in one process, with its report written: the reference."""
    out = tmp_path_factory.mktemp("sweep")
    return run_study(parse_study(SWEEP), Path("."), workers=1, build=build, report_dir=out), out


def test_a_sweep_runs_every_cell_with_its_settings_and_draws_its_heatmaps(sweep):
    run, tmp_path = sweep
    report = run.report
    assert not report["partial"] and len(report["cells"]) == 4
    by_values = {(c["values"]["prices.BTC/USD.volatility"], c["values"]["settings.pairs.ETH/USD.maxOiPerSideUsd"]):
                 c["report"] for c in report["cells"]}
    assert set(by_values) == {(0.2, 10), (0.2, 100_000_000), (1.5, 10), (1.5, 100_000_000)}
    for (volatility, cap), cell in by_values.items():
        eth = cell["cohort"]["ETH/USD long 50x"]
        # a 10 USD open-interest cap on ETH/USD refuses every ETH open; a large one refuses none
        assert eth["refused"] == ({"OpenInterestCapExceeded": 3} if cap == 10 else {}), (cap, eth["refused"])
    # the same seed gives the same BTC path whatever ETH's cap: the BTC positions end alike
    for volatility in (0.2, 1.5):
        low, high = by_values[volatility, 10]["cohort"], by_values[volatility, 100_000_000]["cohort"]
        for name in ("BTC/USD long 1001x", "BTC/USD short 100x"):
            assert low[name]["survival"] == high[name]["survival"], (volatility, name)
    # and the sweep's volatility reaches the paths: the 100x short's returns spread wider at 150%
    calm, wild = (by_values[v, 10]["cohort"]["BTC/USD short 100x"]["trader_return"] for v in (0.2, 1.5))
    assert wild["p95"] - wild["p5"] > calm["p95"] - calm["p5"], (calm, wild)
    assert len(report["metrics"]["P(liquidated) BTC/USD long 1001x"]) == 4
    heatmaps = sorted(p.name for p in tmp_path.glob("heatmap-*.png"))
    assert "heatmap-p_liquidated_btc_usd_long_1001x.png" in heatmaps and "heatmap-var_99.png" in heatmaps
    assert (tmp_path / "cell-3" / "summary.md").is_file()
    assert json.loads((tmp_path / "report.json").read_text())["cells"][0]["values"] == report["cells"][0]["values"]


def test_a_sweep_on_two_workers_starts_one_cluster_for_all_its_cells(sweep, build, monkeypatch):
    from alpsim.study import distributed
    started = []
    real = distributed.local_cluster
    monkeypatch.setattr(distributed, "local_cluster", lambda workers=None: started.append(workers) or real(workers))
    report = run_study(parse_study(SWEEP), Path("."), workers=2, build=build).report
    assert started == [2]  # four cells, one cluster
    assert _dumps(report) == _dumps(sweep[0].report)


def test_a_sweep_stopped_by_ctrl_c_on_two_workers_keeps_the_cells_done_and_the_partial_one(sweep, build):
    seen = []

    def interrupt_at_the_fifth(result: dict) -> None:
        seen.append(result)
        if len(seen) == 5:  # the second path of the second cell (three paths a cell)
            raise KeyboardInterrupt

    report = run_study(parse_study(SWEEP), Path("."), workers=2, build=build, on_result=interrupt_at_the_fifth).report
    assert report["partial"] and len(report["cells"]) == 2
    first, second = (cell["report"] for cell in report["cells"])
    assert _dumps(first) == _dumps(sweep[0].report["cells"][0]["report"])
    assert second["partial"] and second["paths_done"] == 2


def test_the_engine_settings_a_study_may_change_are_the_engines(build):
    from alpsim.study.spec import ENGINE_SETTINGS

    abi = next(f for f in build.artifacts["TradingEngine"].abi if f.get("name") == "settings")
    assert tuple(c["name"] for c in abi["outputs"][0]["components"]) == ENGINE_SETTINGS


def test_a_setting_the_contracts_refuse_stops_the_study_with_their_error(tmp_path):
    study_file = tmp_path / "bad_setting.yaml"
    study_file.write_text(SWEEP.split("sweep:")[0] + "settings:\n  pool: {maxReserveBps: 20000}\n")
    done = _cli(str(study_file), "--workers", "1")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "study failed" in done.stderr and "InvalidBps" in done.stderr


def test_the_crowds_survival_censors_positions_their_traders_closed():
    """Kaplan-Meier by hand: liquidated after 60, 180 and 240 s, closed by its trader after
    120 s (censored): 4 at risk at 60 s, 2 at 180 s, 1 at 240 s."""
    from alpsim.study.report import kaplan_meier

    rows = [{"opened_s": 0, "closed_s": d, "closed_by": how}
            for d, how in ((60, "liquidation"), (120, "close"), (180, "liquidation"), (240, "liquidation"))]
    km = kaplan_meier(rows, [0, 60, 120, 180, 240, 300])
    assert km["survival"] == [1.0, 0.75, 0.75, 0.375, 0.0, 0.0]
    assert km["median_time_to_liquidation_s"] == 180
    assert kaplan_meier([{"opened_s": 0, "closed_s": 60, "closed_by": "close"}], [0, 60])["survival"] == [1.0, 1.0]


def test_survival_quantiles_are_read_off_the_curve():
    """p10/p50/p90: the first step by which 10%, 50%, 90% were liquidated; None when fewer
    were within the horizon (a median past p90 of the liquidated alone cannot happen)."""
    from alpsim.study.report import survival_quantiles

    times = [0, 60, 120, 180, 240]
    assert survival_quantiles(times, [1.0, 0.9, 0.6, 0.5, 0.5]) == {"p10": 60, "p50": 180, "p90": None}
    assert survival_quantiles(times, [1.0, 1.0, 0.95, 0.95, 0.95]) == {"p10": None, "p50": None, "p90": None}
    assert survival_quantiles(times, [1.0, 0.0, 0.0, 0.0, 0.0]) == {"p10": 60, "p50": 60, "p90": 60}
