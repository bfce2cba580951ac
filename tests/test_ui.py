"""The one-click trading page in a real browser: Playwright drives Chromium against a real anvil
with the system deployed, the keeper running (the devnet's KeeperLoop, its prices set by the
test), and the page's server (alpsim.ui.server). Every order is built, encrypted (eciesjs) and
signed in the browser. Screenshots of the main states go to build/ui/.

One devnet and one browser for the module; each test trades from its own dev account (and
tests that move prices move their own pair), so they do not depend on each other's positions."""

from __future__ import annotations

import json
import os
import re
import threading
import time
import urllib.error
import urllib.request
from decimal import Decimal
from pathlib import Path

import pytest
from eth_utils import keccak
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from web3 import HTTPProvider, Web3

from alpsim.client import Alpsim
from alpsim.deployment import deploy_system
from alpsim.devnet import AnvilDevnet
from alpsim.profiles import get_profile
from alpsim.service import DEFAULT_START_PRICES, KeeperLoop
from alpsim.ui.server import UiServer

pytestmark = pytest.mark.anvil

SHOTS = Path(__file__).resolve().parents[1] / "build" / "ui"
WAIT_MS = 30_000
LOAD_MS = 90_000
"""A page's first full refresh: Chromium's new page, the bundle and the first scan of the logs
share two cores with the other test worker (30 s was once not enough under that load)."""
SYSTEM_CHROMIUM = "/usr/bin/chromium"


class SettablePrices:
    """The keeper's price source: the same prices every tick until a test changes them."""

    def __init__(self) -> None:
        self.current = dict(DEFAULT_START_PRICES)

    def __iter__(self) -> "SettablePrices":
        return self

    def __next__(self) -> dict[str, Decimal]:
        return dict(self.current)


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    """anvil (a block per transaction, 12 dev accounts), the system, dev accounts 1..7, 10 and 11
    funded, 1,000,000 in the pool from account 7, the keeper loop (the basket's asset prices at
    the profile's start), the page's server."""
    profile = get_profile("bnb")
    devnet = AnvilDevnet(profile, stamp_blocks=False, block_time_s=0, accounts=12)
    loop = server = None
    try:
        deployment, session = deploy_system(devnet)
        path = deployment.write(tmp_path_factory.mktemp("ui") / "bnb.json")
        sim = Alpsim(devnet, deployment, session)
        for i in (*range(1, 8), 10, 11):  # 8 and 9 are the treasury and the keeper
            sim.fund(i, 100_000)
        sim.fund(7, 1_000_000)
        sim.deposit(7, 1_000_000)
        prices = SettablePrices()
        log: list[str] = []
        loop = KeeperLoop(sim, prices, 0.3, log=log.append)
        loop.tick()
        loop.start()
        server = UiServer(devnet.rpc_url, path).start()
        w3 = Web3(HTTPProvider(devnet.rpc_url))
        contracts = {role: w3.eth.contract(address=e.address, abi=e.abi) for role, e in deployment.contracts.items()}
        state = {"url": server.url, "rpc": devnet.rpc_url, "prices": prices, "w3": w3, "c": contracts,
                 "accounts": devnet.accounts, "deployment": deployment, "log": log, "loop": loop, "sim": sim}
        yield state
        loop = state["loop"]
    finally:
        if server is not None:
            server.stop()
        if loop is not None:
            loop.stop()
        devnet.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        bundled = p.chromium.executable_path
        if bundled and os.path.exists(bundled):
            b = p.chromium.launch()
        else:
            assert os.path.exists(SYSTEM_CHROMIUM), "no Chromium: install Playwright's or Debian's (`apt-get install chromium`)"
            b = p.chromium.launch(executable_path=SYSTEM_CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


def wait_loaded(pg) -> None:
    """Waits for the page's first full refresh ("block N" in its status line); a page that never
    gets there fails the test with what its status line says instead."""
    try:
        pg.wait_for_function("document.querySelector('#status').textContent.includes('block')", timeout=LOAD_MS)
    except PlaywrightTimeout:
        raise AssertionError(f"the page did not load; its status line: {pg.text_content('#status')!r}") from None


@pytest.fixture
def page(browser, system):
    """A fresh page on the trading UI, loaded and following the chain; fails the test on any
    uncaught page error."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 1100})
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    requests: list = []
    pg.on("request", lambda req: requests.append(req))
    pg.requests = requests
    pg.goto(system["url"])
    wait_loaded(pg)
    yield pg
    ctx.close()
    assert not errors, errors


def shot(pg, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def number(text: str) -> Decimal:
    return Decimal(re.sub(r"[^0-9.\-]", "", text))


def fill_order(pg, account: str, pair: str, side: str, amount: str, leverage: int, *, uncapped: bool = False) -> None:
    pg.select_option("#account", account)
    pg.select_option("#pair", label=pair)
    pg.click(f"#side-{side}")
    if uncapped:
        pg.check("#uncapped")
    pg.fill("#amount", amount)
    pg.fill("#leverage-num", str(leverage))


def wait_quote(pg) -> dict[str, str]:
    """The quote table once it matches the form, as {key: shown text}."""
    lev = pg.input_value("#leverage-num")
    pg.wait_for_function(
        f"window.alpsimState.quote && String(window.alpsimState.quote.leverage) === '{lev}'"
        f" && window.alpsimState.quote.side === window.alpsimState.side"
        f" && window.alpsimState.quote.pair === document.querySelector('#pair').selectedOptions[0].textContent",
        timeout=WAIT_MS)
    return pg.eval_on_selector_all("#quote-table td[data-key]",
                                   "tds => Object.fromEntries(tds.map(td => [td.dataset.key, td.textContent]))")


def open_and_wait_position(pg) -> tuple[int, object]:
    """Clicks Open and waits for the new position's row with its liquidation price."""
    before = set(pg.eval_on_selector_all("#positions tbody tr[id^=pos-]", "rows => rows.map(r => r.id)"))
    pg.click("#open")
    pg.wait_for_function(
        "(before) => [...document.querySelectorAll('#positions tbody tr[id^=pos-]')]"
        ".some(r => !before.includes(r.id) && r.querySelector('.liq').dataset.value)",
        arg=list(before), timeout=WAIT_MS)
    rows = pg.eval_on_selector_all("#positions tbody tr[id^=pos-]", "rows => rows.map(r => r.id)")
    new = [r for r in rows if r not in before]
    assert len(new) == 1, (before, rows)
    return int(new[0].removeprefix("pos-")), pg.locator(f"#{new[0]}")


# ----------------------------------------------------------------------------- the server
def test_server_answers_hostile_requests_with_json_errors_and_keeps_serving(system):
    base = system["url"].rstrip("/")

    def get(path: str, method: str = "GET", data: bytes | None = None) -> tuple[int, dict | str]:
        req = urllib.request.Request(base + path, method=method, data=data)
        try:
            with urllib.request.urlopen(req, timeout=10) as res:
                body = res.read()
                status = res.status
        except urllib.error.HTTPError as exc:
            body, status = exc.read(), exc.code
        try:
            return status, json.loads(body)
        except ValueError:
            return status, body.decode()

    status, cfg = get("/api/config")
    assert status == 200, cfg
    assert cfg["chainId"] == 56 and cfg["pairs"][2] == {"id": 2, "name": "SOL/USD", "maxLeverage": 100,
                                                                            "tiered": False}
    assert len(cfg["keeperPublicKey"]) == 130 and "abi" in cfg["contracts"]["trading"]
    status, q = get("/api/quote?pair=BTC/USD&side=long&amount=100&leverage=100&price=60000")
    assert status == 200 and q["tier"] == "standard" and Decimal(str(q["liquidation_price"])) < 60_000
    hostile = {
        "/api/quote?pair=DOGE/USD&side=long&amount=100&leverage=100&price=1": 400,
        "/api/quote?pair=BTC/USD&side=up&amount=100&leverage=100&price=1": 400,
        "/api/quote?pair=BTC/USD&side=long&amount=NaN&leverage=100&price=1": 400,
        "/api/quote?pair=BTC/USD&side=long&amount=1e999999&leverage=100&price=1": 400,
        "/api/quote?pair=BTC/USD&side=long&amount=100&leverage=-5&price=1": 400,
        "/api/quote?pair=BTC/USD&side=long&amount=100&leverage=100": 400,
        "/api/quote?pair=BTC/USD&pair=ETH/USD&side=long&amount=100&leverage=100&price=1": 400,
        "/api/quote?pair=SOL/USD&side=long&amount=100&leverage=200&price=150": 422,
        "/api/quote?" + "x=1&" * 3_000: 414,
        "/api/liquidation?id=abc": 400,
        "/api/liquidation?id=999999": 404,
        "/api/nothing": 404,
        "/../../etc/passwd": 404,
        "/%2e%2e/pyproject.toml": 404,
    }
    for path, expected in hostile.items():
        status, body = get(path)
        assert status == expected, (path, status, body)
        assert isinstance(body, dict) and body["error"], (path, body)
    status, body = get("/api/quote?pair=SOL/USD&side=long&amount=100&leverage=200&price=150")
    assert body["refused"] and "LeverageOutOfRange" in body["error"]
    status, body = get("/api/config", method="POST", data=b"x" * 1000)
    assert status == 405 and "read-only" in body["error"]
    # a request line longer than http.server takes, and garbage on a raw socket
    import socket

    host, port = base.removeprefix("http://").split(":")
    for raw in (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", b"\x00\xff garbage\r\n\r\n",
                b"GET /api/config HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n"):
        with socket.create_connection((host, int(port)), timeout=10) as s:
            s.sendall(raw)
            answer = s.recv(4096)
        assert re.match(rb"HTTP/1\.[01] 4\d\d", answer), answer[:200]
    status, _ = get("/")
    assert status == 200
    status, cfg = get("/api/config")
    assert status == 200


# ----------------------------------------------------------------------------- the browser
def test_open_100x_btc_long_executes_at_the_quoted_liquidation_price(page, system):
    trader = system["accounts"][1]
    fill_order(page, trader, "BTC/USD", "long", "100", 100)
    quote = wait_quote(page)
    assert quote["tier"] == "standard"
    assert abs(number(quote["notional_usd"]) - 100 * number(quote["margin_usd"])) < 1  # 100x the margin
    assert number(quote["margin_usd"]) < Decimal("99.50")  # 100 less the 0.50 execution fee and the open fee
    warning = page.text_content("#warning")
    assert "100x" in warning and "liquidates" in warning and "Very high" in warning
    shot(page, "quote")

    position_id, row = open_and_wait_position(page)
    assert row.locator("td").nth(2).text_content() == "long" and row.locator("td").nth(3).text_content() == "100x"
    assert row.locator(".entry").text_content() == quote["entry_price"]
    assert row.locator(".liq").text_content() == quote["liquidation_price"]
    assert row.locator(".tp").text_content() == quote["take_profit_cap_price"]
    assert number(row.locator(".to-liq").text_content()) > 0
    # the chain agrees: the position is the trader's, opened by the keeper from the browser's ciphertext
    chain = system["c"]["trading"].functions.position(position_id).call()
    assert chain[0] == trader and chain[4] == 100
    assert f"opened #{position_id}" in page.text_content("#feed")
    page.wait_for_function(f"document.querySelector('#open-status').textContent.includes('position #{position_id} is open')",
                           timeout=WAIT_MS)
    page.wait_for_function("document.querySelector('#chart').dataset.lines === '3'", timeout=WAIT_MS)
    shot(page, "opened")
    # the order went from the browser to the node only: alpsim's server saw GETs of the page and
    # its read-only API; the node got the encrypted order (and nothing came from elsewhere: no CDN)
    server = system["url"].rstrip("/")
    to_server = [r for r in page.requests if r.url.startswith(server)]
    assert {r.method for r in to_server} == {"GET"}
    assert {r.url.split("?")[0].removeprefix(server) for r in to_server} <= {
        "/", "/app.js", "/app.css", "/api/config", "/api/quote", "/api/liquidation", "/api/lp-quote"}
    assert all(r.url.startswith((server, system["rpc"])) for r in page.requests), {r.url for r in page.requests}
    sends = [r for r in page.requests if r.url.startswith(system["rpc"]) and "eth_sendTransaction" in (r.post_data or "")]
    request_open = "0x" + keccak(text="requestOpen(bytes32,bytes,uint256)")[:4].hex()
    assert any(request_open in (r.post_data or "").lower() for r in sends)


def test_price_through_the_liquidation_line_liquidates_in_the_feed(page, system):
    trader = system["accounts"][2]
    fill_order(page, trader, "ETH/USD", "long", "100", 200)
    quote = wait_quote(page)
    position_id, row = open_and_wait_position(page)
    liq = number(row.locator(".liq").text_content())
    assert liq == number(quote["liquidation_price"]) and liq < 3_000
    shot(page, "before_liquidation")
    prices = system["prices"]
    try:
        prices.current = {**prices.current, "ETH/USD": (liq * Decimal("0.999")).quantize(Decimal("0.01"))}
        item = page.locator(f"#feed li.liquidated.mine[data-id='{position_id}']")
        item.wait_for(timeout=WAIT_MS)
    finally:
        prices.current = {**prices.current, "ETH/USD": DEFAULT_START_PRICES["ETH/USD"]}
    assert "(Liquidation)" in item.text_content()
    page.locator(f"#pos-{position_id}").wait_for(state="detached", timeout=WAIT_MS)
    hist = page.locator(f"#history tr.closed[data-id='{position_id}']")
    assert hist.locator(".reason").text_content() == "Liquidation"
    shot(page, "liquidated")


def test_close_shows_the_payout(page, system):
    trader = system["accounts"][3]
    c = system["c"]
    fill_order(page, trader, "BTC/USD", "short", "250", 20)
    page.fill("#tp", "55000")
    page.fill("#sl", "61000")
    wait_quote(page)
    position_id, row = open_and_wait_position(page)
    assert row.locator(".tp").text_content() == "55,000.00"  # the order's own take-profit, not the cap
    chain = c["trading"].functions.position(position_id).call()
    assert (chain[12], chain[13]) == (55_000 * 10**18, 61_000 * 10**18)  # takeProfit, stopLoss
    balance_before = c["collateral"].functions.balanceOf(trader).call()
    row.locator("button.close").click()
    hist = page.locator(f"#history tr.closed[data-id='{position_id}']")
    hist.wait_for(timeout=WAIT_MS)
    assert hist.locator(".reason").text_content() == "TraderClose"
    details = hist.locator(".details").text_content()
    payout_shown = number(re.search(r"payout ([0-9,.]+)", details).group(1))
    payout_chain = Decimal(c["collateral"].functions.balanceOf(trader).call() - balance_before) / 10**18
    assert abs(payout_shown - payout_chain) <= Decimal("0.01")  # shown to 2 decimals
    assert Decimal(240) < payout_chain < Decimal(250)  # the margin back, less fees, at an unchanged price
    assert "(TraderClose)" in page.locator(f"#feed li.closed.mine[data-id='{position_id}']").text_content()
    shot(page, "closed")


def test_refused_order_shows_the_reason_and_the_refund(page, system):
    trader = system["accounts"][4]
    fill_order(page, trader, "SOL/USD", "long", "100", 200, uncapped=True)
    page.wait_for_function("document.querySelector('#quote-error').textContent.includes('LeverageOutOfRange')",
                           timeout=WAIT_MS)
    assert "refuse" in page.text_content("#quote-error")
    assert page.input_value("#leverage-num") == "200"
    page.click("#open")
    hist = page.locator("#history tr.open-rejected")
    hist.wait_for(timeout=WAIT_MS)
    assert hist.locator(".reason").text_content() == "LeverageOutOfRange"
    assert "refund 99.50" in hist.locator(".details").text_content()  # 100 less the 0.50 USD execution fee
    assert "LeverageOutOfRange" in page.text_content("#feed li.rejected.mine")
    page.wait_for_function("document.querySelector('#open-status').textContent.includes('rejected: LeverageOutOfRange')",
                           timeout=WAIT_MS)
    # without the override the page caps the slider at the pair's maximum
    page.uncheck("#uncapped")
    assert page.input_value("#leverage-num") == "100"
    shot(page, "rejected")


def test_lp_deposit(page, system):
    lp = system["accounts"][5]
    page.select_option("#account", lp)
    supply_before = system["c"]["alp"].functions.totalSupply().call()
    page.fill("#deposit-amount", "1000")
    page.click("#deposit")
    page.wait_for_function("document.querySelector('#pool-status').textContent.includes('ALP')", timeout=WAIT_MS)
    received = number(re.search(r"received ([0-9,.]+) ALP", page.text_content("#pool-status")).group(1))
    alp = system["c"]["alp"].functions.balanceOf(lp).call()
    assert abs(received - Decimal(alp) / 10**18) <= Decimal("0.0001") and received > 0  # shown to 4 decimals
    assert system["c"]["alp"].functions.totalSupply().call() == supply_before + alp
    page.wait_for_function("document.querySelector('[data-key=cooldown]').textContent.includes('locked for')",
                           timeout=WAIT_MS)
    assert number(page.text_content("[data-key=my-alp]")) == received
    # withdrawing inside the 48 h cooldown: the page names the contract's error, nothing is sent
    page.fill("#withdraw-amount", "1")
    page.click("#withdraw")
    page.wait_for_function("document.querySelector('#pool-status').textContent.includes('CooldownActive')",
                           timeout=WAIT_MS)
    assert system["c"]["alp"].functions.balanceOf(lp).call() == alp
    shot(page, "pool_deposit")


def test_page_keeps_working_while_another_account_streams_undecryptable_orders(page, system):
    w3, c = system["w3"], system["c"]
    spammer, trader = system["accounts"][6], system["accounts"][1]
    trading = c["trading"]
    w3.eth.wait_for_transaction_receipt(c["collateral"].functions.approve(trading.address, 2**255).transact(
        {"from": spammer, "gas": 100_000}), timeout=30)
    stop = threading.Event()
    sent: list[str] = []

    def stream() -> None:
        while not stop.is_set():
            tx = trading.functions.requestOpen(os.urandom(32), os.urandom(148), 10**18).transact(
                {"from": spammer, "gas": 300_000})
            sent.append(tx.hex())
            time.sleep(0.05)

    thread = threading.Thread(target=stream, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while len(sent) < 10 and time.monotonic() < deadline:
            time.sleep(0.05)
        fill_order(page, trader, "SOL/USD", "long", "100", 50)  # a pair with no open interest: the quote's empty book
        quote = wait_quote(page)
        position_id, row = open_and_wait_position(page)
        assert row.locator(".liq").text_content() == quote["liquidation_price"]
        page.wait_for_function(
            "[...document.querySelectorAll('#feed li.rejected:not(.mine)')].some(li => li.textContent.includes('UndecryptableOrder'))",
            timeout=WAIT_MS)
        shot(page, "under_spam")
    finally:
        stop.set()
        thread.join(timeout=10)
    assert len(sent) >= 10
    assert not page.locator("#history tr.open-rejected:has-text('UndecryptableOrder')").count()


def test_pending_request_counts_down_and_is_cancelled_after_expiry(page, system):
    """With the keeper paused, an open stays pending: the page counts the blocks to its expiry,
    offers Cancel once the window has passed, and shows the refund."""
    trader = system["accounts"][2]
    system["loop"].stop()
    try:
        fill_order(page, trader, "BTC/USD", "short", "100", 10)
        wait_quote(page)
        page.click("#open")
        row = page.locator("#pending tbody tr[id^=req-]")
        row.wait_for(timeout=WAIT_MS)
        request_id = int(row.get_attribute("id").removeprefix("req-"))
        assert re.fullmatch(r"\d+ blocks", row.locator(".expiry").text_content())
        assert not row.locator("button.cancel").count()
        system["w3"].provider.make_request("anvil_mine", [11])
        row.locator("button.cancel").wait_for(timeout=WAIT_MS)
        assert row.locator(".expiry").text_content() == "expired"
        shot(page, "pending_expired")
        row.locator("button.cancel").click()
        hist = page.locator(f"#history tr.cancelled[data-id='{request_id}']")
        hist.wait_for(timeout=WAIT_MS)
        assert "refund 100.00" in hist.locator(".details").text_content()
        assert system["c"]["trading"].functions.request(request_id).call()[2] == 4  # Cancelled
    finally:
        loop = KeeperLoop(system["sim"], system["prices"], 0.3, log=system["log"].append)
        loop.start()
        system["loop"] = loop


INJECTED_WALLET_JS = """
(() => {
  const rpc = %(rpc)s, account = %(account)s, chainId = %(chain_id)s;
  let id = 0;
  window.__walletCalls = [];
  window.ethereum = {
    async request({ method, params }) {
      if (method === "eth_requestAccounts" || method === "eth_accounts") return [account];
      if (method === "eth_chainId") return chainId;
      window.__walletCalls.push(method);
      const res = await fetch(rpc, { method: "POST", headers: { "content-type": "application/json" },
        body: JSON.stringify({ jsonrpc: "2.0", id: ++id, method, params: params ?? [] }) });
      const body = await res.json();
      if (body.error) {
        const err = new Error(body.error.message);
        err.code = body.error.code;
        err.data = body.error.data;
        throw err;
      }
      return body.result;
    },
    on() {}, removeListener() {},
  };
})();
"""


def test_an_injected_wallet_signs_the_order(browser, system):
    """A minimal EIP-1193 wallet (`window.ethereum`, injected before the page loads) holding dev
    account 10: the page offers it, and the order is signed and sent through it (anvil signs
    `eth_sendTransaction` for its unlocked accounts)."""
    trader = system["accounts"][10]
    ctx = browser.new_context(viewport={"width": 1400, "height": 1100})
    ctx.add_init_script(INJECTED_WALLET_JS % {"rpc": json.dumps(system["rpc"]), "account": json.dumps(trader.lower()),
                                              "chain_id": json.dumps(hex(system["w3"].eth.chain_id))})
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        pg.goto(system["url"])
        wait_loaded(pg)
        assert pg.locator("#account option[value=injected]").text_content() == "injected wallet"
        fill_order(pg, "injected", "BTC/USD", "long", "50", 20)
        pg.wait_for_function(f"window.alpsimState.account === {json.dumps(trader)}", timeout=WAIT_MS)
        wait_quote(pg)
        position_id, row = open_and_wait_position(pg)
        assert row.locator("td").nth(2).text_content() == "long" and row.locator("td").nth(3).text_content() == "20x"
        chain = system["c"]["trading"].functions.position(position_id).call()
        assert chain[0] == trader and chain[4] == 20
        pg.wait_for_function(f"document.querySelector('#open-status').textContent.includes('position #{position_id} is open')",
                             timeout=WAIT_MS)
        calls = pg.evaluate("window.__walletCalls")
        assert "eth_sendTransaction" in calls, calls
        shot(pg, "injected_wallet")
    finally:
        ctx.close()
    assert not errors, errors


def _read_until(proc, marker: str, lines: list[str], timeout_s: float = 120) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        if marker in line:
            return line.split(marker)[1].split()[0]
        assert line or proc.poll() is None, "".join(lines)
    raise AssertionError(f"no {marker!r} in:\n" + "".join(lines))


def test_devnet_ui_flag_and_ui_command_serve_the_page(browser, tmp_path):
    """`alpsim devnet --ui` serves the page next to the node; `alpsim ui` serves it for any node
    with a deployments file; both stop on Ctrl-C."""
    import signal
    import subprocess
    import sys

    from conftest import default_sigint

    out = tmp_path / "bnb.json"
    env = {**os.environ, "COLUMNS": "200"}
    devnet = subprocess.Popen([sys.executable, "-m", "alpsim.cli", "devnet", "--chain", "bnb", "--out", str(out),
                               "--block-time", "0", "--ui"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, env=env, preexec_fn=default_sigint)
    ui = None
    try:
        lines: list[str] = []
        page_url = _read_until(devnet, "trading page on ", lines)
        rpc = _read_until(devnet, "devnet ready on ", lines)
        with urllib.request.urlopen(page_url + "api/config", timeout=10) as res:
            assert json.loads(res.read())["rpcUrl"] == rpc
        ui = subprocess.Popen([sys.executable, "-m", "alpsim.cli", "ui", "--rpc", rpc, "--deployment", str(out)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                              preexec_fn=default_sigint)
        other_url = _read_until(ui, "trading page on ", [])
        assert other_url != page_url
        pg = browser.new_page()
        try:
            for url in (page_url, other_url):
                pg.goto(url)
                wait_loaded(pg)
                pg.wait_for_selector("#quote-table td[data-key=liquidation_price]", timeout=WAIT_MS)
                assert pg.text_content("#price-now").startswith("BTC/USD")
        finally:
            pg.close()
        for proc in (ui, devnet):
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=30) == 0
    finally:
        for proc in (ui, devnet):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()


# ----------------------------------------------------------------------------- last: it moves the chain's clock
def test_lp_withdraws_after_the_cooldown(page, system):
    """Deposit on the page, 48 h later (anvil's clock) withdraw on the page once the keeper has
    priced the pairs again. It moves the chain's time 48 h on, so it runs last."""
    w3, c = system["w3"], system["c"]
    lp = system["accounts"][11]
    page.select_option("#account", lp)
    page.fill("#deposit-amount", "1000")
    page.click("#deposit")
    page.wait_for_function("document.querySelector('#pool-status').textContent.includes('ALP')", timeout=WAIT_MS)
    alp = c["alp"].functions.balanceOf(lp).call()
    assert alp > 0
    page.wait_for_function("document.querySelector('[data-key=cooldown]').textContent.includes('locked for')",
                           timeout=WAIT_MS)

    unlocks_at = c["alp"].functions.unlocksAt(lp).call()
    now = w3.eth.get_block("latest")["timestamp"]
    w3.provider.make_request("evm_increaseTime", [unlocks_at - now + 60])
    w3.provider.make_request("evm_mine", [])
    jumped_to = w3.eth.get_block("latest")["timestamp"]
    assert jumped_to > unlocks_at
    # the pool values its claims at settled keeper prices: wait for the keeper's next round
    # (its triggers settle the prices)
    oracle = c["oracle"]
    pairs = range(len(system["deployment"].pairs))
    deadline = time.monotonic() + WAIT_MS / 1000
    while min(oracle.functions.settledUntil(p).call() for p in pairs) <= jumped_to:
        assert time.monotonic() < deadline, "the keeper did not price the pairs after the time jump"
        time.sleep(0.1)
    page.wait_for_function("document.querySelector('[data-key=cooldown]').textContent === 'unlocked'", timeout=WAIT_MS)

    collateral_before = c["collateral"].functions.balanceOf(lp).call()
    block_before = w3.eth.block_number
    page.fill("#withdraw-amount", format(Decimal(alp).scaleb(-18), "f"))  # all of it, exactly
    page.click("#withdraw")
    page.wait_for_function("document.querySelector('#pool-status').textContent.includes('withdrew')", timeout=WAIT_MS)
    status = page.text_content("#pool-status")
    received = number(re.search(r"received ([0-9,.]+)", status).group(1))
    assert c["alp"].functions.balanceOf(lp).call() == 0
    gained = c["collateral"].functions.balanceOf(lp).call() - collateral_before
    events = c["pool"].events.Withdraw().get_logs(from_block=block_before + 1, argument_filters={"lp": lp})
    assert len(events) == 1 and events[0]["args"]["alpIn"] == alp and events[0]["args"]["amountOut"] == gained
    assert abs(received - Decimal(gained) / 10**18) <= Decimal("0.01")  # shown to 2 decimals
    assert Decimal(900) < Decimal(gained) / 10**18 <= Decimal(1000)  # the deposit back, less the mint and burn fees
    page.wait_for_function("document.querySelector('[data-key=my-alp]').textContent === '0.0000'", timeout=WAIT_MS)
    page.locator("#feed li.withdraw.mine").first.wait_for(timeout=WAIT_MS)
    shot(page, "pool_withdraw")
