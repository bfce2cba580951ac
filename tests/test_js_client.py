"""The JavaScript example client (examples/js: ethers and eciesjs, nothing but the deployments
file and the RPC) opens and closes a position on `alpsim devnet`; the chain agrees with what it
prints. Keeps the README, the deployments file and the protocol from drifting apart."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from web3 import HTTPProvider, Web3

from alpsim.service import connect
from conftest import default_sigint

ROOT = Path(__file__).resolve().parents[1]
CLIENT = ROOT / "examples" / "js" / "client.mjs"
TRADER = 1
FUNDED = 100_000
"""`alpsim devnet` funds accounts 1..7 with this much collateral each."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Devnet:
    """`alpsim devnet` as a child process, its output drained by a thread (the keeper logs
    every execution: an undrained pipe would stall it)."""

    def __init__(self, chain: str, out: Path):
        self.port = _free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "alpsim.cli", "devnet", "--chain", chain, "--port", str(self.port),
             "--out", str(out), "--interval", "0.25"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "COLUMNS": "200"},
            preexec_fn=default_sigint)
        self.lines: list[str] = []
        self.ready = threading.Event()
        self.url: str | None = None
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)
            if "devnet ready on" in line:
                self.url = line.split("devnet ready on ")[1].split()[0]
                self.ready.set()
        self.ready.set()  # exited

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def wait_ready(self, timeout: float) -> str:
        assert self.ready.wait(timeout) and self.url, f"alpsim devnet did not start:\n{self.log}"
        return self.url

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise


@pytest.mark.anvil
@pytest.mark.parametrize("chain", ["arbitrum", "bnb"])
def test_js_client_opens_and_closes_a_position(chain, tmp_path):
    node = shutil.which("node")
    assert node, "the JavaScript client needs node (20+)"
    assert (CLIENT.parent / "node_modules" / "eciesjs").is_dir(), \
        "examples/js/node_modules is missing: `make setup` (npm ci --prefix examples/js)"
    out = tmp_path / f"{chain}.json"
    devnet = _Devnet(chain, out)
    try:
        url = devnet.wait_ready(180)
        assert url == f"http://127.0.0.1:{devnet.port}"
        client = subprocess.run([node, str(CLIENT), "--rpc", url, "--deployment", str(out), "--account-index",
                                 str(TRADER), "--timeout", "60"], capture_output=True, text=True, timeout=120)
        assert client.returncode == 0, f"{client.stdout}\n{client.stderr}\n--- devnet:\n{devnet.log}"
        result = json.loads(client.stdout.strip().splitlines()[-1])
        assert result["positionId"] == result["requestId"]
        assert result["closeReason"] == "TraderClose"

        data = json.loads(out.read_text())
        enums = data["enums"]
        sim = connect(url, out)
        trader = sim.devnet.accounts[TRADER]
        assert result["trader"] == trader
        trading = sim.contracts["trading"]
        opened = trading.call("request", result["requestId"])
        closed = trading.call("request", result["closeRequestId"])
        executed = enums["RequestStatus"]["Executed"]
        assert (opened["trader"], opened["kind"], opened["status"]) == (trader, enums["RequestKind"]["Open"], executed)
        assert (closed["trader"], closed["kind"], closed["status"]) == (trader, enums["RequestKind"]["Close"], executed)
        assert trading.call("position", result["positionId"])["trader"] == "0x" + "00" * 20  # gone

        # the events, read as any client would from the file's ABI
        w3 = Web3(HTTPProvider(url))
        engine = w3.eth.contract(address=data["contracts"]["trading"]["address"], abi=data["contracts"]["trading"]["abi"])
        [request] = engine.events.OpenRequested().get_logs(from_block=data["block"],
                                                           argument_filters={"requestId": result["requestId"]})
        assert len(request.args.encryptedOrder) == data["ecies"]["ciphertextBytes"]
        assert request.args.amountIn == int(result["amountInTokens"]) == 100 * 10**sim.decimals
        [opened_event] = engine.events.PositionOpened().get_logs(from_block=data["block"],
                                                                 argument_filters={"positionId": result["positionId"]})
        assert opened_event.args.requestId == result["requestId"]
        assert opened_event.args.position.leverage == 100 and opened_event.args.position.isLong
        assert data["pairs"][opened_event.args.position.pairId] == "BTC/USD"
        [closed_event] = engine.events.PositionClosed().get_logs(from_block=data["block"],
                                                                 argument_filters={"positionId": result["positionId"]})
        settlement = closed_event.args.settlement
        assert settlement.reason == enums["CloseReason"]["TraderClose"]
        assert settlement.payoutTokens == int(result["payoutTokens"]) > 0
        # the trader's only moves: the amount in, the payout back
        assert sim.collateral_units(trader) == FUNDED * 10**sim.decimals - int(result["amountInTokens"]) + \
            settlement.payoutTokens
    finally:
        rc = devnet.stop()
    assert rc == 0, devnet.log
