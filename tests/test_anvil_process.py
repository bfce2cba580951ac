"""The anvil backend leaves no process behind: on close, on an exception, on Ctrl-C, and
when the Python process that started it is killed outright."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from alpsim.devnet import AnvilDevnet, AnvilProcess
from alpsim.errors import NodeError
from alpsim.profiles import get_profile
from conftest import default_sigint


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purposes
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _wait_dead(pid: int, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def test_stops_on_close():
    with AnvilDevnet(get_profile("bnb")) as devnet:
        pid = devnet.process.pid
        assert _alive(pid)
        assert devnet.rpc_url.startswith("http://127.0.0.1:")
    assert _wait_dead(pid)


def test_stops_when_the_block_raises():
    pid = None
    with pytest.raises(RuntimeError):
        with AnvilDevnet(get_profile("arbitrum")) as devnet:
            pid = devnet.process.pid
            raise RuntimeError("a failing test")
    assert pid is not None and _wait_dead(pid)


def test_stops_on_ctrl_c():
    pid = None
    with pytest.raises(KeyboardInterrupt):
        with AnvilDevnet(get_profile("bnb")) as devnet:
            pid = devnet.process.pid
            raise KeyboardInterrupt
    assert pid is not None and _wait_dead(pid)


def test_listens_on_loopback_only():
    node = AnvilProcess(56)
    try:
        args = open(f"/proc/{node.pid}/cmdline").read().split("\0")
        assert args[args.index("--host") + 1] == "127.0.0.1"
    finally:
        node.stop()
    assert _wait_dead(node.pid)


def _run_child(body: str) -> subprocess.Popen:
    code = textwrap.dedent(f"""
        import sys, time
        from alpsim.devnet import AnvilDevnet
        from alpsim.profiles import get_profile
        {body}
    """)
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            preexec_fn=default_sigint)


def test_no_orphan_when_the_parent_is_killed():
    child = _run_child("d = AnvilDevnet(get_profile('bnb')); print(d.process.pid, flush=True); time.sleep(60)")
    anvil_pid = int(child.stdout.readline())
    assert _alive(anvil_pid)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert _wait_dead(anvil_pid)


def test_no_orphan_when_the_parent_exits_without_closing():
    child = _run_child("d = AnvilDevnet(get_profile('bnb')); print(d.process.pid, flush=True)")
    anvil_pid = int(child.stdout.readline())
    child.wait(timeout=30)
    assert _wait_dead(anvil_pid)


def test_ctrl_c_in_a_child_stops_its_node():
    child = _run_child(
        "d = AnvilDevnet(get_profile('bnb'))\n"
        "        print(d.process.pid, flush=True)\n"
        "        try:\n"
        "            time.sleep(60)\n"
        "        finally:\n"
        "            d.close()"
    )
    anvil_pid = int(child.stdout.readline())
    child.send_signal(signal.SIGINT)
    child.wait(timeout=30)
    assert _wait_dead(anvil_pid)


def test_a_node_that_cannot_start_is_a_clear_error():
    busy = AnvilProcess(56)
    try:
        with pytest.raises(NodeError) as info:
            AnvilProcess(56, port=busy.port)
        assert "anvil" in str(info.value)
    finally:
        busy.stop()
