"""The mutation study: for each catalog mutant, whether `alpsim fuzz` kills it (and how fast, and
how short the shrunk scenario is), whether every shrunk scenario replays with `alpsim run`, and
whether the project's own test suite kills it.

Results go to `OUT/results.json` (one record per mutant, plus the summary) and `OUT/table.md`;
each mutant's copy of the contracts and the fuzzer's files stay in `OUT/<id>/`. A mutant with
a record is skipped unless `force` (a record whose suite was skipped gets only its suite run).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from ..compiler import compile_contracts
from ..errors import CompileError
from ..paths import CONTRACTS_ENV, ProjectPaths, find_project
from .catalog import Site, by_ids, make_mutant, mutate_text

EIP170_BYTES = 24_576
HEADROOM_BYTES = 8_192
SIZE_LIMIT_BYTES = EIP170_BYTES - HEADROOM_BYTES
"""The project's ceiling on deployed code (tests/test_engine_split.py: 8 KB under EIP-170)."""

GOAL_FUZZ_KILLED_SHARE = 0.90
GOAL_MEDIAN_SHRUNK_STEPS = 8
FUZZ_GRACE_S = 600
"""Time past the budget before the fuzz subprocess is stopped (start-up, shrinking, writing)."""
REPLAY_TIMEOUT_S = 600
CONFIRM_TIMEOUT_S = 900
SUITE_ARGS = ["-m", "pytest", "-x", "-q", "-n", "2", "--dist", "loadfile", "-p", "no:cacheprovider"]

_FUZZ_KEYS = {"seed": int, "chain": str, "runs": int, "steps": int, "seconds": (int, float),
              "interrupted": bool, "failures": list}
_FAILURE_KEYS = {"id": str, "kind": str, "message": str, "yaml": str, "test": str, "shrunk_steps": int,
                 "original_steps": int, "run": int, "found_after_s": (int, float), "from_corpus": bool}


@dataclass(frozen=True)
class StudyOptions:
    only: list[str] | None = None
    budget: str = "2m"
    workers: int = 2
    skip_suite: bool = False
    force: bool = False
    out: Path | None = None
    suite_timeout_s: float = 3600.0


def budget_seconds(budget: str) -> float:
    """`2m`, `90s`, `1h`, `120` (seconds) -> seconds; ValueError for anything else."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([smh]?)", budget.strip())
    if not m or float(m.group(1)) <= 0:
        raise ValueError(f"budget {budget!r}: expected a positive duration such as 90s, 2m or 1h")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


# ------------------------------------------------------------------ commands

def _cli(python: str) -> list[str]:
    return [python, "-m", "alpsim.cli"]


def fuzz_command(copy: Path, out: Path, budget: str, workers: int, python: str = sys.executable) -> list[str]:
    return [*_cli(python), "fuzz", "--contracts", str(copy), "--budget", budget, "--workers", str(workers),
            "--out", str(out), "--json"]


def replay_commands(yaml: Path, copy: Path, python: str = sys.executable) -> tuple[list[str], list[str]]:
    """The replay on the mutant (must exit 1) and on the shipped contracts (should exit 0)."""
    return [*_cli(python), "run", str(yaml), "--contracts", str(copy)], [*_cli(python), "run", str(yaml)]


def suite_command(root: Path, python: str = sys.executable) -> list[str]:
    return [python, *SUITE_ARGS, str(root / "tests")]


def confirm_command(root: Path, test: str, python: str = sys.executable) -> list[str]:
    """One test alone, in one process (a kill's confirmation)."""
    return [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", test]


def child_env(contracts: Path | None = None) -> dict[str, str]:
    """The environment of a child: this package importable (a worktree run with PYTHONPATH),
    and `ALPSIM_CONTRACTS` set to `contracts` or removed (the shipped contracts)."""
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[2])
    parts = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join([src, *[p for p in parts if p != src]])
    env.pop(CONTRACTS_ENV, None)
    if contracts is not None:
        # absolute: a test may start its own child in another folder (tests/test_plugin.py runs
        # pytest in examples/regression), and that child reads the variable from there
        env[CONTRACTS_ENV] = str(Path(contracts).resolve())
    return env


# ------------------------------------------------------------------ parsing

def parse_fuzz_json(stdout: str) -> dict[str, Any]:
    """The fuzzer's `--json` summary (the JSON contract in docs/fuzz.md) -> killed, time to
    kill (the earliest failure's found_after_s), shrunk steps (the shortest), the written
    scenarios. ValueError when the output breaks the contract."""
    try:
        data = json.loads(stdout)
    except json.JSONDecodeError as e:
        raise ValueError(f"fuzz --json printed no JSON object: {e}") from None
    if not isinstance(data, dict):
        raise ValueError("fuzz --json printed no JSON object")
    _check_keys(data, _FUZZ_KEYS, "fuzz summary")
    for failure in data["failures"]:
        if not isinstance(failure, dict):
            raise ValueError("fuzz summary: a failure is not an object")
        _check_keys(failure, _FAILURE_KEYS, "fuzz failure")
    failures = data["failures"]
    return {
        "killed": bool(failures),
        "time_to_kill_s": min((f["found_after_s"] for f in failures), default=None),
        "shrunk_steps": min((f["shrunk_steps"] for f in failures), default=None),
        "failures": len(failures),
        "kinds": sorted({f["kind"] for f in failures}),
        "yamls": [f["yaml"] for f in failures],
        "runs": data["runs"],
        "steps": data["steps"],
        "seconds": data["seconds"],
        "interrupted": data["interrupted"],
    }


def _check_keys(obj: dict, keys: dict[str, Any], what: str) -> None:
    for key, kind in keys.items():
        if key not in obj:
            raise ValueError(f"{what}: missing key {key!r}")
        if not isinstance(obj[key], kind) or (kind is int and isinstance(obj[key], bool)):
            raise ValueError(f"{what}: {key!r} is {type(obj[key]).__name__}")


_SUMMARY_LINE = re.compile(r"^(FAILED|ERROR) (\S+)", re.MULTILINE)


def parse_suite(returncode: int | None, output: str) -> dict[str, Any]:
    """pytest's exit and output -> status (killed, survived, timeout, error) and the first test
    reported failing (pytest's short summary, `FAILED tests/x.py::test - ...`)."""
    first = _SUMMARY_LINE.search(output)
    test = first.group(2) if first else None
    if returncode is None:
        status = "timeout"
    elif returncode == 0:
        status = "survived"
    elif returncode == 1 or (returncode == 2 and test is not None):
        # with -x, pytest-xdist stops the session after the first failure and exits 2
        # ("Interrupted: stopping after 1 failures")
        status = "killed"
    else:  # 2 interrupted otherwise, 3 internal error, 4 usage, 5 no tests: no verdict on the mutant
        status = "error"
    return {"status": status, "exit": returncode, "first_killing_test": test if status == "killed" else None}


# ------------------------------------------------------------------ one mutant

def _run(cmd: list[str], *, env: dict[str, str], cwd: Path, timeout: float) -> tuple[int | None, str, str]:
    """Runs `cmd` in a session of its own; past `timeout` the whole group is stopped (the
    fuzzer's Dask workers with it): returncode None."""
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stdout, stderr = "", ""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                stdout, stderr = proc.communicate(timeout=20)
                break
            except subprocess.TimeoutExpired:
                continue
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # what the group's leader left behind
        proc.wait()
        return None, stdout or "", stderr or ""
    return proc.returncode, stdout, stderr


def build_mutant(site: Site, root: Path, out: Path) -> dict[str, Any]:
    """Copies and compiles the mutant: the record's identity and its build status."""
    copy = out / site.id / "contracts"
    mutant = make_mutant(site, root / "contracts", copy)
    record: dict[str, Any] = {
        "id": site.id, "file": site.file, "line": mutant.line_no, "operator": site.operator,
        "description": site.description, "original": mutant.original.strip(), "mutated": mutant.mutated.strip(),
        "contracts": str(copy),
    }
    try:
        build = compile_contracts(ProjectPaths(root).with_contracts(copy))
    except CompileError as e:
        record.update(status="does not compile", compile_error="\n".join(e.messages)[:2000])
        return record
    sizes = {n: (len(a.deployed_bytecode) - 2) // 2 for n, a in build.artifacts.items()
             if a.source.startswith("contracts/") and not a.source.startswith("contracts/test/")}
    largest = max(sizes, key=sizes.get)
    record.update(largest_contract=largest, largest_bytes=sizes[largest])
    record["status"] = "too large" if sizes[largest] > SIZE_LIMIT_BYTES else "ok"
    return record


def fuzz_mutant(record: dict[str, Any], root: Path, out: Path, opts: StudyOptions) -> dict[str, Any]:
    copy = Path(record["contracts"])
    fuzz_out = out / record["id"] / "fuzz"
    if fuzz_out.exists():  # the study's own folder: a rerun's files only
        shutil.rmtree(fuzz_out)
    cmd = fuzz_command(copy, fuzz_out, opts.budget, opts.workers)
    started = time.monotonic()
    rc, stdout, stderr = _run(cmd, env=child_env(), cwd=root, timeout=budget_seconds(opts.budget) + FUZZ_GRACE_S)
    result: dict[str, Any] = {"exit": rc, "wall_s": round(time.monotonic() - started, 1), "budget": opts.budget,
                              "workers": opts.workers}
    if rc not in (0, 1):
        result.update(killed=None, error=("timed out" if rc is None else f"exit {rc}") + ": " + stderr.strip()[-1000:])
        return result
    try:
        result.update(parse_fuzz_json(stdout))
    except ValueError as e:
        result.update(killed=None, error=str(e))
        return result
    replays = []
    for yaml in result["yamls"]:
        on_mutant, on_shipped = replay_commands(Path(yaml), copy)
        rc_mutant, _, _ = _run(on_mutant, env=child_env(), cwd=root, timeout=REPLAY_TIMEOUT_S)
        rc_shipped, _, _ = _run(on_shipped, env=child_env(), cwd=root, timeout=REPLAY_TIMEOUT_S)
        replays.append({"yaml": yaml, "mutant_exit": rc_mutant, "shipped_exit": rc_shipped})
    result["replays"] = replays
    result["replays_fail_on_mutant"] = bool(replays) and all(r["mutant_exit"] == 1 for r in replays)
    result["replays_pass_on_shipped"] = bool(replays) and all(r["shipped_exit"] == 0 for r in replays)
    return result


def suite_on_mutant(record: dict[str, Any], root: Path, opts: StudyOptions) -> dict[str, Any]:
    started = time.monotonic()
    rc, stdout, stderr = _run(suite_command(root), env=child_env(Path(record["contracts"])), cwd=root,
                              timeout=opts.suite_timeout_s)
    result = parse_suite(rc, stdout + "\n" + stderr)
    result["wall_s"] = round(time.monotonic() - started, 1)
    if result["status"] == "error":
        result["tail"] = (stdout + stderr).strip()[-1000:]
    test = result.get("first_killing_test")
    if test:
        # a kill counts when the killing test fails again on the mutant alone and passes on the
        # shipped contracts: a test that failed under load (a node's timing) is not a kill
        copy = Path(record["contracts"])
        again, _, _ = _run(confirm_command(root, test), env=child_env(copy), cwd=root, timeout=CONFIRM_TIMEOUT_S)
        shipped, _, _ = _run(confirm_command(root, test), env=child_env(None), cwd=root, timeout=CONFIRM_TIMEOUT_S)
        result.update(fails_again=again == 1, passes_on_shipped=shipped == 0)
        if not (again == 1 and shipped == 0):
            result["status"] = "unconfirmed"
    return result


# ------------------------------------------------------------------ the study

def run_study(opts: StudyOptions, log: TextIO = sys.stderr) -> dict[str, Any]:
    root = find_project().root
    out = Path(opts.out).resolve() if opts.out else root / "build" / "mutants"
    out.mkdir(parents=True, exist_ok=True)
    results_file = out / "results.json"
    previous = json.loads(results_file.read_text()) if results_file.is_file() else {}
    records: dict[str, Any] = previous.get("mutants", {})
    control = previous.get("control")
    if not opts.skip_suite and (opts.force or control is None or control.get("status") != "survived"):
        control = run_control(root, out, opts, log)
        write_results(out, records, control)
    sites = by_ids(opts.only)
    for n, site in enumerate(sites, 1):
        tag = f"[{site.id} {n}/{len(sites)}]"
        record = None if opts.force else records.get(site.id)
        if record is not None and _stale(record, site, root):
            print(f"{tag} its result is for another version of the line: run again", file=log, flush=True)
            record = None
        fresh = record is None
        if fresh:
            print(f"{tag} {site.file}: {site.operator}: copy and compile", file=log, flush=True)
            record = build_mutant(site, root, out)
            if record["status"] != "ok":
                print(f"{tag} {record['status']}: skipped", file=log, flush=True)
        ok = record["status"] == "ok"
        if ok and not fresh:
            _ensure_copy(record, site, root, out)
        need_fuzz = ok and record.get("fuzz", {}).get("killed") is None  # never run, or no answer
        need_suite = ok and _suite_wanted(record, opts)
        if not fresh and not need_fuzz and not need_suite:
            print(f"{tag} has a result in {results_file}: skipped (--force to run it again)", file=log, flush=True)
            continue
        if need_fuzz:
            print(f"{tag} fuzz --budget {opts.budget} --workers {opts.workers}", file=log, flush=True)
            record["fuzz"] = fuzz_mutant(record, root, out, opts)
            print(f"{tag} fuzz: {_fuzz_word(record['fuzz'])}", file=log, flush=True)
        if need_suite:
            print(f"{tag} the project's suite on the mutant (timeout {opts.suite_timeout_s:.0f} s)", file=log, flush=True)
            record["suite"] = suite_on_mutant(record, root, opts)
            print(f"{tag} suite: {record['suite']['status']} {record['suite'].get('first_killing_test') or ''}",
                  file=log, flush=True)
        elif ok and opts.skip_suite:
            record.setdefault("suite", {"status": "skipped"})
        records[site.id] = record
        write_results(out, records, control)  # after each mutant: a stopped study resumes from here
    return write_results(out, records, control)


def run_control(root: Path, out: Path, opts: StudyOptions, log: TextIO) -> dict[str, Any]:
    """The suite under ALPSIM_CONTRACTS on an unmutated copy of the contracts: it must pass, or
    a kill in the suite column may be the variable's doing, not the mutant's."""
    copy = out / "control" / "contracts"
    if copy.exists():
        shutil.rmtree(copy)
    shutil.copytree(root / "contracts", copy)
    print(f"[control] the project's suite on an unmutated copy (timeout {opts.suite_timeout_s:.0f} s)", file=log, flush=True)
    result = suite_on_mutant({"contracts": str(copy)}, root, opts)
    print(f"[control] suite: {'passed' if result['status'] == 'survived' else result['status']} "
          f"{result.get('first_killing_test') or ''}", file=log, flush=True)
    return result


def _suite_wanted(record: dict[str, Any], opts: StudyOptions) -> bool:
    return not opts.skip_suite and record.get("suite", {}).get("status") in (None, "skipped", "error", "unconfirmed")


def _ensure_copy(record: dict[str, Any], site: Site, root: Path, out: Path) -> None:
    """A resumed record's mutant copy under this study's folder (made again when missing, e.g.
    after results.json was copied from another checkout)."""
    copy = out / site.id / "contracts"
    expected = record["mutated"]
    target = copy / site.file
    if not (target.is_file() and any(line.strip() == expected for line in target.read_text().split("\n"))):
        make_mutant(site, root / "contracts", copy)
    record["contracts"] = str(copy)


def _stale(record: dict[str, Any], site: Site, root: Path) -> bool:
    """Whether the record was made from another line than the site's mutant of today's contracts."""
    try:
        _, mutant = mutate_text(site, (root / "contracts" / site.file).read_text())
    except (OSError, ValueError):
        return True
    return (record.get("file"), record.get("line"), record.get("original"), record.get("mutated")) != \
        (site.file, mutant.line_no, mutant.original.strip(), mutant.mutated.strip())


def _fuzz_word(fuzz: dict[str, Any]) -> str:
    if fuzz.get("killed") is None:
        return f"error ({fuzz.get('error', '')[:200]})"
    if not fuzz["killed"]:
        return "survived"
    return f"killed after {fuzz['time_to_kill_s']:.1f} s, shrunk to {fuzz['shrunk_steps']} steps"


def write_results(out: Path, records: dict[str, Any], control: dict[str, Any] | None = None) -> dict[str, Any]:
    ordered = {k: records[k] for k in sorted(records)}
    data = {"mutants": ordered, "control": control, "summary": summarize(ordered)}
    (out / "results.json").write_text(json.dumps(data, indent=1) + "\n")
    (out / "table.md").write_text(table_markdown(data))
    return data


def summarize(records: dict[str, Any]) -> dict[str, Any]:
    studied = [r for r in records.values() if r.get("status") == "ok" and r.get("fuzz", {}).get("killed") is not None]
    killed = [r for r in studied if r["fuzz"]["killed"]]
    shrunk = [r["fuzz"]["shrunk_steps"] for r in killed]
    suite = [r for r in records.values() if r.get("suite", {}).get("status") in ("killed", "survived")]
    share = len(killed) / len(studied) if studied else None
    median = statistics.median(shrunk) if shrunk else None
    all_replay = bool(killed) and all(r["fuzz"].get("replays_fail_on_mutant") for r in killed)
    return {
        "mutants": len(records),
        "not_compiling": sum(r.get("status") == "does not compile" for r in records.values()),
        "too_large": sum(r.get("status") == "too large" for r in records.values()),
        "fuzzed": len(studied),
        "fuzz_killed": len(killed),
        "fuzz_killed_share": share,
        "median_shrunk_steps": median,
        "every_shrunk_scenario_replays": all_replay,
        "every_scenario_passes_on_shipped": bool(killed) and all(r["fuzz"].get("replays_pass_on_shipped") for r in killed),
        "suite_run": len(suite),
        "suite_killed": sum(r["suite"]["status"] == "killed" for r in suite),
        "suite_unconfirmed": sorted(r["id"] for r in records.values() if r.get("suite", {}).get("status") == "unconfirmed"),
        "fuzz_survivors": sorted(r["id"] for r in studied if not r["fuzz"]["killed"]),
        "goals": {
            "fuzz_killed_share_at_least_90pct": share is not None and share >= GOAL_FUZZ_KILLED_SHARE,
            "median_shrunk_at_most_8_steps": median is not None and median <= GOAL_MEDIAN_SHRUNK_STEPS,
            "every_shrunk_scenario_replays": all_replay,
        },
    }


COLUMNS = ["id", "file:line", "operator", "description", "fuzz killed", "time to kill s", "shrunk steps",
           "replays", "suite killed", "first killing test"]


def table_row(r: dict[str, Any]) -> list[str]:
    fuzz, suite = r.get("fuzz", {}), r.get("suite", {})
    if r.get("status") != "ok":
        killed, tkill, shrunk, replays = r.get("status", "?"), "", "", ""
    elif fuzz.get("killed") is None:
        killed, tkill, shrunk, replays = "error", "", "", ""
    else:
        killed = "yes" if fuzz["killed"] else "no"
        tkill = f"{fuzz['time_to_kill_s']:.1f}" if fuzz["killed"] else ""
        shrunk = str(fuzz["shrunk_steps"]) if fuzz["killed"] else ""
        replays = ("yes" if fuzz.get("replays_fail_on_mutant") else "no") if fuzz["killed"] else ""
    suite_word = {"killed": "yes", "survived": "no"}.get(suite.get("status"), suite.get("status", ""))
    test = suite.get("first_killing_test") or ""
    return [r["id"], f"{r['file']}:{r['line']}", r["operator"], r["description"], killed, tkill, shrunk, replays,
            suite_word, f"`{test}`" if test else ""]


def table_markdown(data: dict[str, Any]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in data["mutants"].values():
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in table_row(r)) + " |")
    s = data["summary"]
    share = "n/a" if s["fuzz_killed_share"] is None else f"{s['fuzz_killed_share']:.0%}"
    lines += [
        "",
        f"Killed by the fuzzer: {s['fuzz_killed']} of {s['fuzzed']} fuzzed ({share}; goal at least 90%). "
        f"Median shrunk scenario: {s['median_shrunk_steps'] if s['median_shrunk_steps'] is not None else 'n/a'} steps "
        f"(goal at most 8). Every shrunk scenario replays: {'yes' if s['every_shrunk_scenario_replays'] else 'no'}. "
        f"Killed by the suite: {s['suite_killed']} of {s['suite_run']} run. "
        f"Not compiling: {s['not_compiling']}; too large: {s['too_large']}.",
    ]
    if s["suite_unconfirmed"]:
        lines.append(f"Suite kills not confirmed (the test did not fail again alone, or failed on the shipped "
                     f"contracts too): {', '.join(s['suite_unconfirmed'])}.")
    if s["fuzz_survivors"]:
        lines.append(f"Survivors of the fuzzer: {', '.join(s['fuzz_survivors'])}.")
    control = data.get("control")
    if control:
        verdict = {"survived": "passed", "killed": "FAILED"}.get(control["status"], control["status"])
        test = f" (first failing: `{control['first_killing_test']}`)" if control.get("first_killing_test") else ""
        lines.append(f"Control, the suite under ALPSIM_CONTRACTS on an unmutated copy: {verdict}{test}.")
    return "\n".join(lines) + "\n"
