"""alpsim fuzz end to end: a planted defect in a copy of the contracts (the pool pays one token
unit more than it books on a withdrawal) is found, shrunk and written; the scenario (`alpsim run
--contracts`) and the test file (pytest with `--alpsim-contracts=`) fail on the copy and pass on
the shipped contracts, as real subprocesses; the same seed and steps give the same failures on 1
and 2 workers; a corpus replay finds the past failure in its first run; bad input exits 2; the
checked scenario steps validate and run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from alpsim.cli import app
from alpsim.fuzz.replay import run_checked
from alpsim.scenario import ScenarioError, parse_scenario

ROOT = Path(__file__).resolve().parents[1]
PLANTED = ("IERC20(asset).safeTransfer(msg.sender, amountOut);", "IERC20(asset).safeTransfer(msg.sender, amountOut + 1);")
"""The defect: AlpPool.withdraw pays one token unit more than it books."""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT / "src")}


def _alpsim(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "alpsim.cli", *args], cwd=ROOT, env=_env(), capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def defect(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("defect") / "contracts"
    shutil.copytree(ROOT / "contracts", folder)
    pool = folder / "pool" / "AlpPool.sol"
    text = pool.read_text()
    assert text.count(PLANTED[0]) == 1
    pool.write_text(text.replace(*PLANTED))
    return folder


@pytest.fixture(scope="module")
def found(defect, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("fuzz1")
    done = _alpsim("fuzz", "--contracts", str(defect), "--steps", "300", "--seed", "0", "--out", str(out), "--json")
    assert done.returncode == 1, done.stderr
    return out, json.loads(done.stdout)


def test_a_planted_defect_is_found_shrunk_and_written(found, defect):
    out, summary = found
    assert summary["runs"] == 1 and summary["contracts"] == str(defect) and not summary["interrupted"]
    (failure,) = summary["failures"]
    assert failure["kind"] == "model" and "chain and model disagree" in failure["message"]
    assert failure["shrunk_steps"] <= failure["original_steps"] and failure["shrunk_steps"] <= 8
    assert not failure["from_corpus"] and failure["run"] == 0
    text = Path(failure["yaml"]).read_text()
    assert "withdraw:" in text and text.rstrip().endswith("- expect: {checks: held}")
    assert (out / "corpus" / f"{failure['id']}.yaml").read_text() == text


def test_the_scenario_replays_the_failure_and_passes_on_the_shipped_contracts(found, defect):
    (failure,) = found[1]["failures"]
    on_defect = _alpsim("run", failure["yaml"], "--contracts", str(defect))
    assert on_defect.returncode == 1, on_defect.stdout + on_defect.stderr
    assert "check failed at step" in on_defect.stdout
    shipped = _alpsim("run", failure["yaml"])
    assert shipped.returncode == 0, shipped.stdout + shipped.stderr
    assert "checks held pass" in shipped.stdout


def test_the_test_file_fails_on_the_defect_and_passes_on_the_shipped_contracts(found, defect):
    (failure,) = found[1]["failures"]
    pytest_args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", failure["test"]]
    on_defect = subprocess.run([*pytest_args, f"--alpsim-contracts={defect}"], cwd=ROOT, env=_env(),
                               capture_output=True, text=True, timeout=600)
    assert on_defect.returncode == 1 and "1 failed" in on_defect.stdout, on_defect.stdout[-2000:]
    shipped = subprocess.run(pytest_args, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    assert shipped.returncode == 0 and "1 passed" in shipped.stdout, shipped.stdout[-2000:]


def test_the_same_seed_and_steps_give_the_same_failures_on_two_workers(found, defect, tmp_path):
    done = _alpsim("fuzz", "--contracts", str(defect), "--steps", "300", "--seed", "0", "--workers", "2",
                   "--out", str(tmp_path), "--json")
    assert done.returncode == 1, done.stderr
    two = json.loads(done.stdout)
    one = found[1]
    assert [f["id"] for f in two["failures"]] == [f["id"] for f in one["failures"]]
    assert [(f["shrunk_steps"], f["original_steps"], f["run"]) for f in two["failures"]] == \
        [(f["shrunk_steps"], f["original_steps"], f["run"]) for f in one["failures"]]
    assert two["runs"] == one["runs"]  # (the steps shrinking tried may differ a little: its passes are timed)


def test_a_corpus_replay_finds_the_past_failure_in_its_first_run(found, defect, tmp_path):
    out, summary = found
    done = _alpsim("fuzz", "--contracts", str(defect), "--budget", "0.1s", "--corpus", str(out / "corpus"),
                   "--out", str(tmp_path), "--json")
    assert done.returncode == 1, done.stderr
    again = json.loads(done.stdout)
    (failure,) = again["failures"]
    assert failure["from_corpus"] and failure["run"] == 0
    assert failure["id"] == summary["failures"][0]["id"] and failure["kind"] == "model"
    assert again["runs"] == 1  # the corpus replay only: the budget was spent


@pytest.mark.parametrize(("args", "message"), [
    (["--steps", "0"], "--steps 0: at least 1"),
    (["--budget", "10x"], "a duration such as"),
    (["--budget", "1m", "--steps", "10"], "give one"),
    (["--chain", "solana"], "bnb or arbitrum"),
    (["--workers", "2", "--scheduler", "tcp://127.0.0.1:8786"], "give one"),
    (["--scheduler", "localhost"], "tcp://HOST:PORT"),
    (["--workers", "0"], "between 1 and 256"),
    (["--seed", "-1"], "0 or more"),
    (["--contracts", "/nonexistent/alpsim"], "no such directory"),
])
def test_fuzz_refuses_bad_input_with_exit_2(args, message):
    result = CliRunner().invoke(app, ["fuzz", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_run_refuses_bad_contracts_with_exit_2(tmp_path):
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(app, ["run", str(ROOT / "scenarios" / "wiped_by_noise.yaml"), "--contracts",
                                      str(tmp_path / "empty")])
    assert result.exit_code == 2 and "no .sol files" in result.output


CHECKED = (ROOT / "docs" / "fuzz.md").read_text().split("```yaml\n")[1].split("```")[0]
"""The checked scenario of docs/fuzz.md, with every new step kind."""


def test_the_new_step_kinds_validate_and_run():
    scenario = parse_scenario(CHECKED, "docs/fuzz.md")
    kinds = {s.kind for s in scenario.steps}
    assert {"asset_price", "reference", "push", "keeper_gap", "execute", "referral", "fee_token", "bad_order",
            "outage", "breaker_trip", "fee_raise", "settings_change", "extreme", "admin"} <= kinds
    run = run_checked(scenario)
    assert run.error is None and run.failure is None, (run.error, run.failure)
    assert run.steps_done == len(scenario.steps) and run.expectations[-1]["passed"]


def test_a_plain_scenario_refuses_checked_steps_and_a_checked_one_the_plain_only():
    plain = "name: x\nchain: bnb\nfunds: {a: 10}\nsteps:\n  - push: {}\n  - keeper: {round: true}\n"
    with pytest.raises(ScenarioError) as info:
        parse_scenario(plain, "plain.yaml")
    assert "the push step runs only in a checked scenario" in str(info.value)
    assert "round: true is for checked scenarios only" in str(info.value)
    checked = ("name: x\nchain: bnb\nfunds: {a: 10}\nchecks: [model]\nsteps:\n"
               "  - path: {pair: BTC/USD, volatility: 0.5, seconds: 10, step: 5}\n  - expect: {pool: {nav_usd: 1}}\n")
    with pytest.raises(ScenarioError) as info:
        parse_scenario(checked, "checked.yaml")
    assert "the path step: not in a checked scenario" in str(info.value)
    assert "expectations other than" in str(info.value)


def test_ctrl_c_keeps_what_was_found_and_says_interrupted(tmp_path):
    """A KeyboardInterrupt after the first run's result: the summary so far, interrupted."""
    from alpsim.fuzz.session import FuzzConfig, fuzz

    def interrupt(state, result):  # noqa: ANN001
        raise KeyboardInterrupt

    summary = fuzz(FuzzConfig(steps=600, out=tmp_path), interrupt)
    assert summary["interrupted"] and summary["runs"] == 1 and summary["steps"] > 0
    assert summary["failures"] == [] and summary["contracts"] is None


def test_an_existing_cluster_runs_the_same_run_as_this_process(tmp_path):
    """`--scheduler tcp://HOST:PORT`: the run on a cluster's worker is the one run in-process."""
    from dask.distributed import LocalCluster

    alone = _alpsim("fuzz", "--steps", "1", "--seed", "3", "--out", str(tmp_path / "a"), "--json")
    assert alone.returncode == 0, alone.stderr
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        remote = _alpsim("fuzz", "--steps", "1", "--seed", "3", "--scheduler", cluster.scheduler_address,
                         "--out", str(tmp_path / "b"), "--json")
    assert remote.returncode == 0, remote.stderr
    one, other = json.loads(alone.stdout), json.loads(remote.stdout)
    assert one["runs"] == other["runs"] == 1 and one["failures"] == other["failures"] == []
    assert one["steps"] == other["steps"] > 100  # no failure, no shrinking: the very same steps


def test_hypothesis_reports_go_to_stderr_so_stdout_is_the_json_alone(monkeypatch, capsys):
    """Hypothesis prints its reports (a shrink that ran past five minutes) on stdout; a run sends
    them to stderr, or `alpsim fuzz --json` would print them before its summary."""
    import hypothesis.stateful

    from alpsim.fuzz.runner import fuzz_run

    def reporting_run(cls, settings):  # noqa: ANN001, ANN202 - hypothesis's signature
        print("WARNING: Hypothesis has spent more than five minutes working to shrink a failing test case")

    monkeypatch.setattr(hypothesis.stateful, "run_state_machine_as_test", reporting_run)
    result = fuzz_run(0, 0, "bnb", None)
    out, err = capsys.readouterr()
    assert out == "" and "five minutes" in err
    assert result["failure"] is None and result["run"] == 0

