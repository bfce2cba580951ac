"""Invalid scenario files are refused before anything runs, with the file, line and reason
(one case per kind of mistake), and the CLI exits 2."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from alpsim.scenario import ScenarioError, parse_scenario

GOOD = """\
name: test
chain: bnb
seed: 1
funds: {alice: 100, lp: 100000}
steps:
  - prices: {BTC/USD: 60000}
  - deposit: {who: lp, amount: 100000}
  - open: {id: a, who: alice, pair: BTC/USD, side: long, amount: 100, leverage: 100}
  - wait: {seconds: 60}
  - keeper: {}
  - close: {id: a}
  - expect: {position: a, status: closed}
  - expect: {account: alice, collateral: {approx: 95, tol: 5}}
  - expect: {pool: {nav_usd: {approx: 100000, tol: 100}}}
"""

CASES = [
    # (what, replace this, with this, line, words in the message)
    ("wrong key", "leverage: 100}", "leverag: 100}", 8, "unknown key 'leverag'"),
    ("missing field", ", side: long", "", 8, "missing field 'side'"),
    ("unknown pair", "pair: BTC/USD, side", "pair: BTC/USDT, side", 8, "unknown pair 'BTC/USDT'"),
    ("unknown account", "who: alice, pair", "who: alicia, pair", 8, "unknown account 'alicia'"),
    ("unknown position", "close: {id: a}", "close: {id: b}", 11, "unknown position id 'b'"),
    ("bad value type", "seconds: 60", "seconds: soon", 9, "seconds"),
    ("bad side", "side: long", "side: up", 8, "side"),
    ("unknown step", "  - wait: {seconds: 60}", "  - sleep: {seconds: 60}", 9, "unknown key 'sleep'"),
    ("two kinds in a step", "  - keeper: {}", "  - keeper: {}\n    wait: {seconds: 1}", 10, "exactly one"),
    ("unknown chain", "chain: bnb", "chain: solana", 2, "chain"),
    ("missing funds", "funds: {alice: 100, lp: 100000}\n", "", 1, "missing field 'funds'"),
    ("unknown top key", "seed: 1", "seed: 1\ncolour: red", 4, "unknown key 'colour'"),
    ("duplicate position id", "  - wait: {seconds: 60}",
     "  - open: {id: a, who: alice, pair: ETH/USD, side: long, amount: 1, leverage: 2}\n  - wait: {seconds: 60}",
     9, "used twice"),
    ("negative price", "BTC/USD: 60000}", "BTC/USD: -5}", 6, "positive"),
    ("bad expectation", "status: closed}", "status: exploded}", 12, "status"),
    ("not yaml", "steps:\n", "steps: [\n", 6, "not valid YAML"),
]


@pytest.mark.parametrize("what, old, new, line, words", CASES, ids=[c[0] for c in CASES])
def test_each_kind_of_mistake_is_refused_with_its_line(what, old, new, line, words):
    assert old in GOOD, what
    with pytest.raises(ScenarioError) as info:
        parse_scenario(GOOD.replace(old, new, 1), "case.yaml")
    problems = info.value.problems
    assert any(p.startswith(f"case.yaml:{line}:") and words in p for p in problems), problems


def test_the_good_file_parses():
    scenario = parse_scenario(GOOD)
    assert [s.kind for s in scenario.steps] == ["prices", "deposit", "open", "wait", "keeper", "close", "expect",
                                                "expect", "expect"]


def test_cli_refuses_an_invalid_file_with_exit_2_before_running(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("pair: BTC/USD, side", "pair: DOGE/USD, side"))
    proc = subprocess.run([sys.executable, "-m", "alpsim.cli", "run", str(bad), "--json"], capture_output=True,
                          text=True, env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 2
    assert f"{bad}:8:" in proc.stderr and "unknown pair 'DOGE/USD'" in proc.stderr
    assert proc.stdout == ""
