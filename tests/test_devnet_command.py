"""`alpsim devnet` starts anvil with the profile, deploys, runs the keeper; it answers
eth_chainId, takes a deposit over HTTP through the deployments file alone, executes a trade,
and stops on Ctrl-C with no process left. `alpsim keeper` runs alone against a node."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from web3 import HTTPProvider, Web3

from alpsim.deployment import deploy_system
from alpsim.devnet import AnvilDevnet
from alpsim.profiles import get_profile
from alpsim.service import connect
from conftest import default_sigint


def _children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().split(")")[-1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_devnet_serves_trades_and_stops_cleanly(tmp_path):
    out = tmp_path / "bnb.json"
    proc = subprocess.Popen([sys.executable, "-m", "alpsim.cli", "devnet", "--chain", "bnb", "--out", str(out),
                             "--interval", "0.3"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "COLUMNS": "200"}, preexec_fn=default_sigint)
    try:
        url = None
        deadline = time.monotonic() + 120
        lines = []
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if "devnet ready on" in line:
                url = line.split("devnet ready on ")[1].split()[0]
                break
            assert line or proc.poll() is None, "".join(lines)
        assert url and url.startswith("http://127.0.0.1:"), "".join(lines)
        anvils = _children(proc.pid)
        assert anvils and all(_alive(p) for p in anvils)

        w3 = Web3(HTTPProvider(url))
        assert w3.eth.chain_id == 56
        data = json.loads(out.read_text())
        c = {role: w3.eth.contract(address=e["address"], abi=e["abi"]) for role, e in data["contracts"].items()}
        lp = w3.eth.accounts[3]
        amount = 1_000 * 10**18
        w3.eth.wait_for_transaction_receipt(
            c["collateral"].functions.approve(c["pool"].address, amount).transact({"from": lp}), timeout=30)
        before = c["alp"].functions.balanceOf(lp).call()
        w3.eth.wait_for_transaction_receipt(c["pool"].functions.deposit(c["collateral"].address, amount, 0).transact({"from": lp}), timeout=30)
        assert c["alp"].functions.balanceOf(lp).call() > before

        # a one-click open through the requests, executed by the devnet's background keeper
        sim = connect(url, out)
        pending = sim.request_open(2, "BTC/USD", "long", 100, 100)
        deadline = time.monotonic() + 30
        while sim.contracts["trading"].call("request", pending.request_id)["status"] == 1:
            assert time.monotonic() < deadline, "the keeper did not execute the request"
            time.sleep(0.2)
        assert sim.contracts["trading"].call("request", pending.request_id)["status"] == 2
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    assert proc.returncode == 0
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in anvils) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(p) for p in anvils)


def test_keeper_command_executes_pending_requests_on_any_node(tmp_path, build):
    devnet = AnvilDevnet(get_profile("arbitrum"), stamp_blocks=False)
    try:
        deployment, _ = deploy_system(devnet, build)
        path = deployment.write(tmp_path / "arb.json")
        sim = connect(devnet.rpc_url, path)
        sim.fund(7, 100_000)
        sim.deposit(7, 100_000)
        sim.fund(1, 100)
        sim.keeper.set_prices({"ETH/USD": 3000})
        pending = sim.request_open(1, "ETH/USD", "short", 100, 20)
        prices = tmp_path / "prices.json"
        prices.write_text('[{"ETH/USD": 3000}, {"ETH/USD": 3001}]')
        proc = subprocess.run([sys.executable, "-m", "alpsim.cli", "keeper", "--rpc", devnet.rpc_url, "--deployment",
                               str(path), "--prices", str(prices), "--ticks", "2", "--interval", "0.1"],
                              capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "200"})
        assert proc.returncode == 0, proc.stderr
        assert "PositionOpened" in proc.stdout and "2 ticks, 1 requests executed" in proc.stdout
        assert sim.contracts["trading"].call("request", pending.request_id)["status"] == 2
    finally:
        devnet.close()


def test_devnet_banner_prints_whole_addresses_and_paths_to_a_pipe(tmp_path):
    """Piped (not a terminal, no COLUMNS), the banner gives every value whole: a table would
    cut the addresses and the deployments path to 80 columns."""
    out = tmp_path / ("a-deployments-directory-with-a-rather-long-name-" * 2) / "bnb.json"
    out.parent.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    # a block per transaction (--block-time 0): the banner is the subject, and the deployment's
    # ~60 transactions take about 45 s on 0.75 s blocks
    proc = subprocess.Popen([sys.executable, "-m", "alpsim.cli", "devnet", "--chain", "bnb", "--out", str(out),
                             "--block-time", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            preexec_fn=default_sigint)
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line or proc.poll() is None, "".join(lines)
            lines.append(line.rstrip("\n"))
            if "devnet ready on" in line:
                break
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    text = "\n".join(lines)
    assert proc.returncode == 0 and "…" not in text, text
    assert len(str(out)) > 100 and f"deployments file: {out}" in lines, text
    data = json.loads(out.read_text())
    for role, entry in data["contracts"].items():
        assert len(entry["address"]) == 42 and f"{role}: {entry['address']}" in lines, (role, text)
    accounts = [line.split(": ")[-1] for line in lines if line.startswith("account ")]
    assert len(accounts) == 10 and all(len(a) == 42 and a.startswith("0x") for a in accounts), text
    assert any(line.startswith("RPC URL: http://127.0.0.1:") for line in lines), text
    # the basket (issue 28): each asset's token, decimals, price id and target, as the file has them
    assert [b["symbol"] for b in data["basket"]] == ["USDT", "USDC", "BNB", "ETH", "BTC"]
    for index, b in enumerate(data["basket"]):
        label = f"basket {b['symbol']}" + (" (payout)" if index == 0 else "")
        row = (f"{label}: {b['address']}, {b['decimals']} decimals, price id {b['priceId']}, "
               f"target {b['targetBps']} bp ({b['targetBps'] / 100:.2f}%)")
        assert row in lines, (row, text)
    assert "basket BNB: " in text and "price id 128, target 800 bp (8.00%)" in text


def test_quote_lp_reads_a_running_system(tmp_path, build):
    """`alpsim quote-lp --rpc --deployment`: the pool of a system on any node, to the unit of the
    deposit that follows."""
    devnet = AnvilDevnet(get_profile("arbitrum"), stamp_blocks=False)
    try:
        deployment, _ = deploy_system(devnet, build)
        path = deployment.write(tmp_path / "arb.json")
        sim = connect(devnet.rpc_url, path)
        sim.keeper.set_prices({"BTC/USD": 60_000, "USDC": 1, "USDT": 1})
        sim.fund(7, 100_000)
        sim.deposit(7, 100_000)
        sim.fund(1, "0.25", asset="BTC")
        sim.keeper.push_prices()  # BTC's price on chain: the command's reader has no keeper of its own
        proc = subprocess.run([sys.executable, "-m", "alpsim.cli", "quote-lp", "--chain", "arbitrum", "--rpc",
                               devnet.rpc_url, "--deployment", str(path), "--asset", "BTC", "--amount", "0.25",
                               "--json"], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        data = json.loads(proc.stdout)
        assert data["weights_before_bps"]["USDC"] == 10_000
        result = sim.deposit(1, "0.25", asset="BTC")
        assert data["units"]["alp_out_wad"] == result.alp_out_wad and data["units"]["fee_wad"] == result.fee_wad
        wrong = subprocess.run([sys.executable, "-m", "alpsim.cli", "quote-lp", "--chain", "bnb", "--rpc",
                                devnet.rpc_url, "--deployment", str(path), "--asset", "BTC", "--amount", "1"],
                               capture_output=True, text=True, timeout=120)
        assert wrong.returncode == 2 and "the deployments file is for arbitrum, not bnb" in wrong.stderr
    finally:
        devnet.close()
