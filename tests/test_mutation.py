"""The mutation tool (alpsim.mutation): the catalog finds its lines in the shipped contracts, each
mutant is a one-line change that compiles, ALPSIM_CONTRACTS puts a mutant under the whole suite,
and the study reads the fuzzer's JSON contract and pytest's verdict as the issue defines them."""

from __future__ import annotations

import difflib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from alpsim.compiler import compile_contracts
from alpsim.errors import ConfigError
from alpsim.mutation import study
from alpsim.mutation.catalog import CATALOG, Site, by_ids, locate, make_mutant, mutate_text
from alpsim.mutation.operators import OPERATORS, MutationError, apply_operator
from alpsim.paths import CONTRACTS_ENV, ProjectPaths, find_project

ROOT = find_project().root
SHIPPED = ROOT / "contracts"  # never the ALPSIM_CONTRACTS folder: the catalog is about these


# ---------------------------------------------------------------- the catalog

def test_the_catalog_has_24_sites_spread_over_the_contracts_with_every_operator():
    ids = [s.id for s in CATALOG]
    assert len(ids) == len(set(ids)) >= 24
    files = {s.file for s in CATALOG}
    for needed in ("pool/AlpPool.sol", "oracle/PriceOracle.sol", "trading/RequestBook.sol", "libraries/TradeMath.sol",
                   "trading/OpenPipeline.sol", "trading/Settlement.sol", "trading/Market.sol"):
        assert needed in files
    assert {s.operator for s in CATALOG} == set(OPERATORS)
    assert all(s.description and len(s.description) < 120 for s in CATALOG)


@pytest.mark.parametrize("site", CATALOG, ids=lambda s: s.id)
def test_each_anchor_finds_one_line_and_its_mutant_differs_in_that_line_only(site):
    text = (SHIPPED / site.file).read_text()
    index = locate(site, text)
    mutated, mutant = mutate_text(site, text)
    before, after = text.split("\n"), mutated.split("\n")
    assert len(before) == len(after)
    changed = [i for i, (a, b) in enumerate(zip(before, after)) if a != b]
    assert changed == [index] and mutant.line_no == index + 1
    assert mutant.original == before[index] and mutant.mutated == after[index] != before[index]
    # the indentation stays: a diff shows one line out, one line in
    diff = [d for d in difflib.unified_diff(before, after, lineterm="", n=0) if d[:1] in "+-" and d[:3] not in ("+++", "---")]
    assert diff == ["-" + before[index], "+" + after[index]]


def test_an_anchor_that_does_not_find_exactly_one_line_is_refused(tmp_path):
    twice = Site("X1", "trading/Market.sol", "Indexes memory idx = _accrue(pairId);", "call-deleted", "", "twice")
    assert (SHIPPED / twice.file).read_text().count(twice.anchor) == 2
    with pytest.raises(MutationError, match="matches 2 lines"):
        make_mutant(twice, SHIPPED, tmp_path / "copy")
    nowhere = Site("X2", "trading/Market.sol", "re:^no such line$", "relational", "", "none")
    with pytest.raises(MutationError, match="matches 0 lines"):
        make_mutant(nowhere, SHIPPED, tmp_path / "copy")
    missing = Site("X3", "trading/Nope.sol", "x", "relational", "", "no file")
    with pytest.raises(MutationError, match="no file"):
        make_mutant(missing, SHIPPED, tmp_path / "copy")
    assert not (tmp_path / "copy").exists()
    with pytest.raises(ValueError, match="M99"):
        by_ids(["M01", "M99"])
    assert [s.id for s in by_ids(["M05", "M01"])] == ["M01", "M05"]  # catalog order


def test_a_mutant_copy_differs_from_the_shipped_folder_by_one_line(tmp_path):
    site = by_ids(["M09"])[0]
    shipped_before = {p: p.read_bytes() for p in SHIPPED.rglob("*.sol")}
    mutant = make_mutant(site, SHIPPED, tmp_path / "copy")
    differing = []
    for path in sorted(SHIPPED.rglob("*")):
        if path.is_file():
            copy = tmp_path / "copy" / path.relative_to(SHIPPED)
            if copy.read_bytes() != path.read_bytes():
                differing.append(path.relative_to(SHIPPED).as_posix())
    assert differing == [site.file]
    assert sorted(p.relative_to(tmp_path / "copy") for p in (tmp_path / "copy").rglob("*")) == \
        sorted(p.relative_to(SHIPPED) for p in SHIPPED.rglob("*"))
    assert mutant.mutated.strip() == "if (false) return RejectReason.ReserveExceeded;"
    assert {p: p.read_bytes() for p in SHIPPED.rglob("*.sol")} == shipped_before


# ---------------------------------------------------------------- the operators

@pytest.mark.parametrize("operator, line, target, expected", [
    ("relational", "if (a < b) x();", None, "if (a <= b) x();"),
    ("relational", "return c.count <= max;", None, "return c.count < max;"),
    ("relational", "ok = p >= q && r > s;", "r > s", "ok = p >= q && r >= s;"),
    ("relational", "if (x == y) {", None, "if (x != y) {"),
    ("relational", "bits = 1 << n != 0;", None, "bits = 1 << n == 0;"),
    ("arithmetic", "uint256 r = a - b;", None, "uint256 r = a + b;"),
    ("arithmetic", "y = m * BPS / d;", "BPS / d", "y = m * BPS * d;"),
    ("constant", "uint256 constant X = 1_000;", "1_000", "uint256 constant X = 1001;"),
    ("constant", "v = WAD / 100;", "100", "v = WAD / 101;"),
    ("rounding", "f(Math.mulDiv(a, b, WAD, Math.Rounding.Ceil));", None, "f(Math.mulDiv(a, b, WAD, Math.Rounding.Floor));"),
    ("rounding", "x = Math.mulDiv(f(a, b), c, d);", None, "x = Math.mulDiv(f(a, b), c, d, Math.Rounding.Ceil);"),
    ("rounding", "return Math.ceilDiv(usd, scale);", None, "return Math.mulDiv(usd, 1, scale);"),
    ("rounding", "t = Units.usdToTokenUp(u, s);", None, "t = Units.usdToTokenDown(u, s);"),
    ("rounding", "return -((-a + b - 1) / b);", None, "return -((-a) / b);"),
    ("check-deleted", "        if (a > b || f(c)) revert E(a);", None, "        if (false) revert E(a);"),
    ("check-deleted", "require(ok(x), \"no\");", None, "require(true, \"no\");"),
    ("call-deleted", "        market.accrue(id); // why", None, "        assert(true);"),
    ("fee-split", "t = fee * (BPS - share) / BPS;", None, "t = fee * (BPS + 1 - share) / BPS;"),
])
def test_each_operator_rewrites_its_spot(operator, line, target, expected):
    assert apply_operator(operator, line, target) == expected


@pytest.mark.parametrize("operator, line, target, message", [
    ("relational", "x = a + b;", None, "found 0"),
    ("relational", "ok = a < b && c > d;", None, "found 2"),
    ("arithmetic", "x = a + b - c;", None, "found 2"),
    ("constant", "x = a;", None, "found 0"),
    ("rounding", "x = a / b;", None, "ceiling"),
    ("rounding", "Math.mulDiv(a, b, c, Math.Rounding.Ceil) + Math.mulDiv(a, b, c, Math.Rounding.Floor)", None, "more than one"),
    ("check-deleted", "x = a;", None, "expected one"),
    ("call-deleted", "if (a) f();", None, "not one expression"),
    ("fee-split", "x = a - b;", None, "found 0"),
    ("relational", "x = a < b;", "c < d", "occurs 0 times"),
    ("relational", "x = a < b; y = a < b;", "a < b", "occurs 2 times"),
    ("swap", "x = a < b;", None, "unknown operator"),
    ("constant", "a = 1;\nb = 2;", None, "one line"),
])
def test_an_operator_that_does_not_apply_is_refused(operator, line, target, message):
    with pytest.raises(MutationError, match=message):
        apply_operator(operator, line, target)


# ---------------------------------------------------------------- compiling a mutant

@pytest.mark.parametrize("mutant_id, changed", [("M18", "TradingEngine"), ("M29", "ClosePipeline")])
def test_a_sample_of_mutants_compiles_under_the_size_limit_with_its_own_build(tmp_path, mutant_id, changed):
    """Two compiles (about 8 s each; a later run hits the build cache by content)."""
    copy = tmp_path / "contracts"
    make_mutant(by_ids([mutant_id])[0], SHIPPED, copy)
    paths = ProjectPaths(ROOT).with_contracts(copy)
    built = compile_contracts(paths)
    shipped = compile_contracts(ProjectPaths(ROOT))
    assert built.build_info.is_relative_to(ROOT / "build" / "user-contracts")
    assert built.key != shipped.key
    assert built.artifacts[changed].deployed_bytecode != shipped.artifacts[changed].deployed_bytecode
    size = (len(built.artifacts["TradingEngine"].deployed_bytecode) - 2) // 2
    assert size <= study.SIZE_LIMIT_BYTES == 24_576 - 8_192


# ---------------------------------------------------------------- ALPSIM_CONTRACTS

def test_alpsim_contracts_makes_the_default_project_build_the_folder(tmp_path, monkeypatch):
    copy = tmp_path / "contracts"
    make_mutant(by_ids(["M18"])[0], SHIPPED, copy)
    monkeypatch.delenv("ALPSIM_ROOT", raising=False)
    monkeypatch.delenv(CONTRACTS_ENV, raising=False)
    assert find_project().contracts == SHIPPED and find_project().build == ROOT / "build"
    monkeypatch.setenv(CONTRACTS_ENV, str(copy))
    redirected = find_project()
    assert redirected.root == ROOT and redirected.contracts == copy.resolve()
    assert redirected.build == ProjectPaths(ROOT).with_contracts(copy).build
    # a child inherits it: the default compile there (the suite's `build` fixture's call) is the copy's
    probe = ("import json; from alpsim.compiler import compile_contracts; from alpsim.paths import find_project; "
             "b = compile_contracts(); print(json.dumps({'contracts': str(find_project().contracts), "
             "'build_info': str(b.build_info), 'engine': b.artifacts['TradingEngine'].deployed_bytecode}))")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300,
                          env=study.child_env(copy), cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    child = json.loads(proc.stdout)
    mutant_build = compile_contracts(ProjectPaths(ROOT).with_contracts(copy))
    assert child["contracts"] == str(copy.resolve())
    assert child["build_info"] == str(mutant_build.build_info)
    assert child["engine"] == mutant_build.artifacts["TradingEngine"].deployed_bytecode
    assert child["engine"] != compile_contracts(ProjectPaths(ROOT)).artifacts["TradingEngine"].deployed_bytecode
    # a relative folder is read from here and made absolute for the children started elsewhere
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(CONTRACTS_ENV, "contracts")
    assert find_project(ROOT).contracts == copy.resolve() and os.environ[CONTRACTS_ENV] == str(copy.resolve())
    # ALPSIM_ROOT names a whole project, its own contracts included
    monkeypatch.setenv("ALPSIM_ROOT", str(ROOT))
    assert find_project().contracts == SHIPPED


def test_alpsim_contracts_refuses_a_folder_that_is_not_contracts(tmp_path, monkeypatch):
    monkeypatch.delenv("ALPSIM_ROOT", raising=False)
    monkeypatch.setenv(CONTRACTS_ENV, str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="not a folder"):
        find_project()
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv(CONTRACTS_ENV, str(tmp_path / "empty"))
    with pytest.raises(ConfigError, match="no .sol files"):
        find_project()


# ---------------------------------------------------------------- the study's commands and parsing

def _failure(n: int, found_after_s: float, shrunk: int, folder: Path) -> dict:
    return {"id": f"f{n}", "kind": "behaviour-change", "message": "pool balance differs", "yaml": str(folder / f"f{n}.yaml"),
            "test": str(folder / f"test_f{n}.py"), "shrunk_steps": shrunk, "original_steps": 40, "run": n,
            "found_after_s": found_after_s, "from_corpus": False}


def _summary(failures: list[dict]) -> dict:
    return {"seed": 1, "chain": "bnb", "contracts": "/c", "runs": 12, "steps": 480, "seconds": 120.0,
            "interrupted": False, "failures": failures}


def test_the_fuzzers_json_contract_gives_kill_time_and_shrunk_length(tmp_path):
    parsed = study.parse_fuzz_json(json.dumps(_summary([_failure(1, 40.5, 6, tmp_path), _failure(2, 12.25, 9, tmp_path)])))
    assert parsed["killed"] is True and parsed["failures"] == 2
    assert parsed["time_to_kill_s"] == min(40.5, 12.25) and parsed["shrunk_steps"] == min(6, 9)
    assert parsed["yamls"] == [str(tmp_path / "f1.yaml"), str(tmp_path / "f2.yaml")]
    survived = study.parse_fuzz_json(json.dumps(_summary([])))
    assert survived["killed"] is False and survived["time_to_kill_s"] is None and survived["shrunk_steps"] is None


@pytest.mark.parametrize("breakage, message", [
    (lambda d: d.pop("failures"), "missing key 'failures'"),
    (lambda d: d.update(runs="12"), "'runs' is str"),
    (lambda d: d.update(steps=True), "'steps' is bool"),
    (lambda d: d["failures"][0].pop("shrunk_steps"), "missing key 'shrunk_steps'"),
    (lambda d: d["failures"][0].update(found_after_s=None), "'found_after_s' is NoneType"),
])
def test_a_summary_that_breaks_the_contract_is_refused(tmp_path, breakage, message):
    data = _summary([_failure(1, 3.0, 4, tmp_path)])
    breakage(data)
    with pytest.raises(ValueError, match=message):
        study.parse_fuzz_json(json.dumps(data))
    with pytest.raises(ValueError, match="no JSON"):
        study.parse_fuzz_json("progress 3/4\n")


def test_the_commands_the_study_runs(tmp_path):
    copy, out = tmp_path / "M01" / "contracts", tmp_path / "M01" / "fuzz"
    assert study.fuzz_command(copy, out, "2m", 2, python="py") == [
        "py", "-m", "alpsim.cli", "fuzz", "--contracts", str(copy), "--budget", "2m", "--workers", "2",
        "--out", str(out), "--json"]
    on_mutant, on_shipped = study.replay_commands(out / "f1.yaml", copy, python="py")
    assert on_mutant == ["py", "-m", "alpsim.cli", "run", str(out / "f1.yaml"), "--contracts", str(copy)]
    assert on_shipped == ["py", "-m", "alpsim.cli", "run", str(out / "f1.yaml")]
    assert study.suite_command(ROOT, python="py") == [
        "py", "-m", "pytest", "-x", "-q", "-n", "2", "--dist", "loadfile", "-p", "no:cacheprovider", str(ROOT / "tests")]
    assert study.confirm_command(ROOT, "tests/test_x.py::test_y[bnb]", python="py") == [
        "py", "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", "tests/test_x.py::test_y[bnb]"]
    env = study.child_env(copy)
    assert env[CONTRACTS_ENV] == str(copy)
    # a relative folder is passed on absolute: a test's own child may run in another folder
    assert study.child_env(Path(os.path.relpath(copy)))[CONTRACTS_ENV] == str(copy.resolve())
    assert env["PYTHONPATH"].split(os.pathsep)[0] == str(Path(study.__file__).resolve().parents[2])
    assert CONTRACTS_ENV not in study.child_env(None)
    assert study.budget_seconds("2m") == 120 and study.budget_seconds("90s") == 90 and study.budget_seconds("1h") == 3600
    for bad in ("0", "2x", "-1m", ""):
        with pytest.raises(ValueError):
            study.budget_seconds(bad)


def test_the_suites_verdict_and_first_killing_test():
    output = ("..F\n=== short test summary info ===\n"
              "FAILED tests/test_pool.py::test_withdraw_keeps_reserve[bnb] - assert 1 == 2\n"
              "FAILED tests/test_fees_standard.py::test_close_fee - assert\n1 failed, 40 passed\n")
    assert study.parse_suite(1, output) == {"status": "killed", "exit": 1,
                                             "first_killing_test": "tests/test_pool.py::test_withdraw_keeps_reserve[bnb]"}
    assert study.parse_suite(1, "ERROR tests/test_gas.py::test_x - Panic\n")["first_killing_test"] == "tests/test_gas.py::test_x"
    # -x under pytest-xdist: the session is interrupted after the first failure, exit 2
    xdist = ("=== short test summary info ===\nFAILED tests/test_reserve.py::test_open_rejected[bnb-10]\n"
             "!!!! xdist.dsession.Interrupted: stopping after 1 failures !!!!\n1 failed, 16 passed in 5.27s\n")
    assert study.parse_suite(2, xdist) == {"status": "killed", "exit": 2,
                                            "first_killing_test": "tests/test_reserve.py::test_open_rejected[bnb-10]"}
    assert study.parse_suite(2, "Interrupted: 1 error during collection")["status"] == "error"
    assert study.parse_suite(0, "100 passed")["status"] == "survived"
    assert study.parse_suite(None, "")["status"] == "timeout"
    assert study.parse_suite(4, "usage")["status"] == "error"


# ---------------------------------------------------------------- the study, its fuzzer and suite stood in for

def test_the_study_on_one_mutant_writes_results_and_table_and_resumes(tmp_path, monkeypatch):
    """`alpsim fuzz` is not the subject here: `_run` answers for the three children as the
    contract says they answer (the mutant's copy and compile are real)."""
    calls: list[list[str]] = []

    def fake_run(cmd, *, env, cwd, timeout):  # noqa: ANN001, ANN202
        calls.append(cmd)
        if "fuzz" in cmd:
            out = Path(cmd[cmd.index("--out") + 1])
            out.mkdir(parents=True, exist_ok=True)
            (out / "f1.yaml").write_text("steps: []\n")
            assert env.get(CONTRACTS_ENV) is None
            return 1, json.dumps(_summary([_failure(1, 31.5, 5, out)])), "progress\n"
        if "run" in cmd:
            return (1 if "--contracts" in cmd else 0), "", ""
        if "no:xdist" in cmd:  # the killing test alone: fails on the mutant, passes on the shipped contracts
            assert cmd[-1] == "tests/test_execution_fee.py::test_request_at_fee[bnb]"
            return (1, "1 failed", "") if env.get(CONTRACTS_ENV) else (0, "1 passed", "")
        if env[CONTRACTS_ENV] == str(tmp_path / "out" / "control" / "contracts"):
            assert (tmp_path / "out" / "control" / "contracts" / "trading" / "RequestBook.sol").read_text() == \
                (SHIPPED / "trading" / "RequestBook.sol").read_text()
            return 0, "1200 passed\n", ""
        assert env[CONTRACTS_ENV] == str(tmp_path / "out" / "M26" / "contracts")
        return 1, "FAILED tests/test_execution_fee.py::test_request_at_fee[bnb] - x\n", ""

    def kind(cmd: list[str]) -> str:
        return cmd[3] if cmd[1:3] == ["-m", "alpsim.cli"] else "confirm" if "no:xdist" in cmd else cmd[2]

    monkeypatch.setattr(study, "_run", fake_run)
    opts = study.StudyOptions(only=["M26"], out=tmp_path / "out", skip_suite=True)
    data = study.run_study(opts, log=open(os.devnull, "w"))
    record = data["mutants"]["M26"]
    assert record["status"] == "ok" and record["line"] == 39 and record["suite"] == {"status": "skipped"}
    assert record["fuzz"]["killed"] and record["fuzz"]["time_to_kill_s"] == 31.5 and record["fuzz"]["shrunk_steps"] == 5
    assert record["fuzz"]["replays_fail_on_mutant"] and record["fuzz"]["replays_pass_on_shipped"]
    assert [kind(c) for c in calls] == ["fuzz", "run", "run"]
    # resumed: the fuzzer is not run again; the control (the suite on an unmutated copy), then
    # the suite that was skipped
    data = study.run_study(study.StudyOptions(only=["M26"], out=tmp_path / "out"), log=open(os.devnull, "w"))
    assert [kind(c) for c in calls[3:]] == ["pytest", "pytest", "confirm", "confirm"]
    assert data["control"]["status"] == "survived"
    suite = data["mutants"]["M26"]["suite"]
    assert suite["status"] == "killed" and suite["fails_again"] and suite["passes_on_shipped"]
    assert suite["first_killing_test"] == "tests/test_execution_fee.py::test_request_at_fee[bnb]"
    study.run_study(study.StudyOptions(only=["M26"], out=tmp_path / "out"), log=open(os.devnull, "w"))
    assert len(calls) == 7  # nothing left to run
    on_disk = json.loads((tmp_path / "out" / "results.json").read_text())
    assert on_disk["summary"]["fuzz_killed_share"] == 1.0 and on_disk["summary"]["median_shrunk_steps"] == 5
    assert on_disk["summary"]["goals"] == {"fuzz_killed_share_at_least_90pct": True, "median_shrunk_at_most_8_steps": True,
                                           "every_shrunk_scenario_replays": True}
    table = (tmp_path / "out" / "table.md").read_text().splitlines()
    assert table[0] == "| " + " | ".join(study.COLUMNS) + " |"
    assert table[2].startswith("| M26 | trading/RequestBook.sol:39 | relational | ")
    assert table[2].endswith("| yes | 31.5 | 5 | yes | yes | `tests/test_execution_fee.py::test_request_at_fee[bnb]` |")
    assert table[-1] == "Control, the suite under ALPSIM_CONTRACTS on an unmutated copy: passed."
    # results copied from elsewhere: the copy is made again under this study's folder
    shutil.rmtree(tmp_path / "out" / "M26" / "contracts")
    on_disk["mutants"]["M26"]["suite"] = {"status": "skipped"}
    (tmp_path / "out" / "results.json").write_text(json.dumps(on_disk))
    study.run_study(study.StudyOptions(only=["M26"], out=tmp_path / "out"), log=open(os.devnull, "w"))
    assert [kind(c) for c in calls[7:]] == ["pytest", "confirm", "confirm"]
    assert "if (amountIn < feeTokens)" in (tmp_path / "out" / "M26" / "contracts" / "trading" / "RequestBook.sol").read_text()
    del calls[7:]
    on_disk = json.loads((tmp_path / "out" / "results.json").read_text())
    # a result made from another version of the line is not reused
    on_disk["mutants"]["M26"]["original"] = "if (amountIn < 2 * feeTokens) revert Errors.AmountBelowExecutionFee(amountIn, feeTokens);"
    (tmp_path / "out" / "results.json").write_text(json.dumps(on_disk))
    study.run_study(study.StudyOptions(only=["M26"], out=tmp_path / "out", skip_suite=True), log=open(os.devnull, "w"))
    assert [kind(c) for c in calls[7:]] == ["fuzz", "run", "run"]


def test_the_study_command_refuses_bad_input():
    for args, message in ((["--only", "M01,M99"], "M99"), (["--budget", "0"], "budget"), (["--workers", "0"], "workers"),
                          (["--only", ","], "no mutant ids")):
        proc = subprocess.run([sys.executable, "-m", "alpsim.mutation", *args], capture_output=True, text=True,
                              env=study.child_env(None), cwd=ROOT, timeout=120)
        assert proc.returncode == 2 and message in proc.stderr, (args, proc.stderr)


def test_a_child_past_its_timeout_is_stopped_with_its_own_children():
    """The fuzzer starts Dask workers: a timeout stops the whole process group."""
    script = ("import subprocess, sys, time; child = subprocess.Popen(['sleep', '120']); "
              "print(child.pid, flush=True); time.sleep(120)")
    started = time.monotonic()
    rc, stdout, _ = study._run([sys.executable, "-c", script], env=study.child_env(None), cwd=ROOT, timeout=2)
    assert rc is None and time.monotonic() - started < 60
    grandchild = int(stdout.split()[0])
    time.sleep(0.5)
    status = Path(f"/proc/{grandchild}/status")
    assert not status.exists() or "State:\tZ" in status.read_text()  # gone, or a zombie waiting for init
    rc, stdout, _ = study._run([sys.executable, "-c", "print('done')"], env=study.child_env(None), cwd=ROOT, timeout=60)
    assert (rc, stdout) == (0, "done\n")


def test_a_suite_kill_that_does_not_fail_again_alone_is_unconfirmed(tmp_path, monkeypatch):
    """A test that failed once under load (an anvil node's timing) is no kill."""
    answers = {"suite": (1, "FAILED tests/test_deploy.py::test_deploy[arbitrum-anvil] - NodeError\n", ""),
               "again": (0, "1 passed", ""), "shipped": (0, "1 passed", "")}

    def fake_run(cmd, *, env, cwd, timeout):  # noqa: ANN001, ANN202
        if "no:xdist" not in cmd:
            return answers["suite"]
        return answers["again"] if env.get(CONTRACTS_ENV) else answers["shipped"]

    monkeypatch.setattr(study, "_run", fake_run)
    opts = study.StudyOptions()
    result = study.suite_on_mutant({"contracts": str(tmp_path)}, ROOT, opts)
    assert result["status"] == "unconfirmed" and result["fails_again"] is False and result["passes_on_shipped"] is True
    assert study.table_row({"id": "M01", "file": "f.sol", "line": 1, "operator": "constant", "description": "d",
                            "status": "ok", "fuzz": {"killed": False}, "suite": result})[8:] == \
        ["unconfirmed", "`tests/test_deploy.py::test_deploy[arbitrum-anvil]`"]
    answers["again"] = (1, "1 failed", "")
    assert study.suite_on_mutant({"contracts": str(tmp_path)}, ROOT, opts)["status"] == "killed"
    answers["shipped"] = (1, "1 failed", "")  # fails on the shipped contracts too: not the mutant's doing
    assert study.suite_on_mutant({"contracts": str(tmp_path)}, ROOT, opts)["status"] == "unconfirmed"
