"""The trading page's ALP basket (issue 28) in a real browser: the deposit asset selector with the
fee before sending, the weights-against-targets chart, and the server's LP quote refusing
hostile requests. The devnet, the keeper loop, the page's server and the browser are
tests/test_ui.py's fixtures (a devnet of this module's own)."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from decimal import ROUND_HALF_UP, Decimal

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from test_ui import WAIT_MS, browser, number, page, shot, system, wait_loaded  # noqa: F401 - fixtures

from alpsim.model.pool import fee_usd, value_usd
from alpsim.profiles import get_profile

pytestmark = pytest.mark.anvil

WAD = 10**18


def get(system, path: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(system["url"].rstrip("/") + path, timeout=30) as res:
            return res.status, json.loads(res.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def bar(pg, symbol: str) -> dict[str, str]:
    return pg.eval_on_selector(f"#basket-chart [data-symbol='{symbol}']", "b => ({...b.dataset})")


def test_deposit_bnb_through_the_selector_pays_the_fee_shown_and_moves_the_bnb_bar(page, system):
    c, sim = system["c"], system["sim"]
    lp = system["accounts"][1]
    sim.fund(1, 10, asset="BNB")
    bnb = system["deployment"].basket_asset("BNB")
    page.select_option("#account", lp)
    page.wait_for_selector("#basket-chart [data-symbol=BNB]", timeout=WAIT_MS)
    assert bar(page, "BNB") == {"symbol": "BNB", "weightBps": "0.00", "targetBps": "800"}
    assert bar(page, "USDT")["weightBps"] == "10000.00"  # the fixture's 1,000,000 USDT alone
    assert page.eval_on_selector_all("#lp-asset option", "os => os.map(o => o.value)") == ["USDT", "USDC", "BNB", "ETH", "BTC"]

    page.select_option("#lp-asset", "BNB")
    page.fill("#deposit-amount", "10")
    try:
        page.wait_for_function(f"document.querySelector('#lp-quote').dataset.asset === 'BNB'"
                               f" && document.querySelector('#lp-quote').dataset.amount === '{10 * WAD}'", timeout=WAIT_MS)
    except PlaywrightTimeout:
        raise AssertionError(f"no quote; the page says {page.text_content('#lp-quote-error')!r}") from None
    shown = page.eval_on_selector_all("#lp-quote td[data-key]", "tds => Object.fromEntries(tds.map(td => [td.dataset.key, td.textContent]))")
    # by hand: BNB in at the profile's start price (keeper = reference = 600), USDT 1,000,000 at 1.00;
    # BNB holds 0 against a target of 8%: e = 0 - 800 x 1,000,000 < 0, k = 9,200, 86,956 USD to
    # the target, so all 6,000 USD move toward it: 20 bp, 12.00 USD, BNB from 0 to 6,000 / 1,006,000
    price = next(a.start_price_usd for a in get_profile("bnb").basket if a.symbol == "BNB")
    amount_usd = value_usd(10 * WAD, 18, int(price * WAD))
    assert amount_usd == 6_000 * WAD
    expected_fee = fee_usd(0, 1_000_000 * WAD, 800, amount_usd, True)
    assert expected_fee == 6_000 * WAD * 20 // 10_000
    assert shown["fee_usd"] == "12.00" and shown["fee_bps"] == "20.00"
    assert shown["weight_before"] == "0.00 %" and shown["weight_after"] == "0.60 %"  # 6,000 / 1,006,000
    assert shown["target"] == "8.00 %"
    shot(page, "basket_quote")

    block_before = system["w3"].eth.block_number
    page.click("#deposit")
    page.wait_for_function("document.querySelector('#pool-status').textContent.includes('deposited')", timeout=WAIT_MS)
    events = c["pool"].events.Deposit().get_logs(from_block=block_before + 1, argument_filters={"lp": lp})
    assert len(events) == 1
    ev = events[0]["args"]
    assert ev["asset"] == bnb.address and ev["amountIn"] == 10 * WAD and ev["amountUsd"] == amount_usd
    event_fee = (Decimal(ev["feeUsd"]) / WAD).quantize(Decimal("0.01"), ROUND_HALF_UP)
    assert event_fee == number(shown["fee_usd"])  # the fee shown before sending, to the cent
    assert abs(ev["feeUsd"] - expected_fee) <= 1  # the model's fee rounds up, the event's down
    assert f"fee {event_fee} USD" in page.text_content("#pool-status")
    assert c["pool"].functions.holdingsOf(bnb.address).call() == 10 * WAD
    # the chart follows: BNB's bar at 6,000 of 1,006,000 USD (59.64 bp), USDT's down
    page.wait_for_function("document.querySelector(\"#basket-chart [data-symbol='BNB']\").dataset.weightBps !== '0.00'",
                           timeout=WAIT_MS)
    assert bar(page, "BNB")["weightBps"] == f"{Decimal(6_000 * 1_000_000 // 1_006_000) / 100:.2f}"  # bp, floored to 0.01
    assert bar(page, "USDT")["weightBps"] == f"{Decimal(1_000_000 * 1_000_000 // 1_006_000) / 100:.2f}"
    assert "BNB" in page.locator("#feed li.deposit.mine").first.text_content()
    shot(page, "basket_deposit")


def test_lp_quote_refuses_bad_assets_and_amounts_and_keeps_serving(system):
    c = system["c"]
    holdings_before = c["pool"].functions.basket().call()[4]
    status, q = get(system, "/api/lp-quote?action=deposit&asset=USDC&amount=1000")
    assert status == 200 and q["asset"] == "USDC" and q["feeBps"] == "20.0000"  # USDC under its 30% target
    hostile = {
        "/api/lp-quote?action=deposit&asset=DOGE&amount=10": "unknown basket asset 'DOGE'; listed: USDT, USDC, BNB, ETH, BTC",
        "/api/lp-quote?action=deposit&asset=bnb&amount=10": "unknown basket asset 'bnb'",
        "/api/lp-quote?action=deposit&asset=BNB&asset=BTC&amount=10": "query parameter 'asset' given 2 times",
        "/api/lp-quote?action=deposit&amount=10": "missing query parameter 'asset'",
        "/api/lp-quote?action=steal&asset=BNB&amount=10": "action must be deposit or withdraw, got 'steal'",
        "/api/lp-quote?action=deposit&asset=BNB&amount=-1": "amount must be a positive number up to 1e15, got '-1'",
        "/api/lp-quote?action=deposit&asset=BNB&amount=0": "amount must be a positive number up to 1e15, got '0'",
        "/api/lp-quote?action=deposit&asset=BNB&amount=NaN": "amount must be a positive number up to 1e15, got 'NaN'",
        "/api/lp-quote?action=deposit&asset=BNB&amount=1e16": "amount must be a positive number up to 1e15, got '1e16'",
        "/api/lp-quote?action=deposit&asset=BNB&amount=ten": "amount must be a number, got 'ten'",
        "/api/lp-quote?action=deposit&asset=BNB&amount=0.0000000000000000001":
            "amount has more than 18 decimal places, got '0.0000000000000000001'",
        "/api/lp-quote?action=withdraw&asset=BTC&amount=1e-19": "amount has more than 18 decimal places, got '1e-19'",
    }
    # a client that opens a connection and sends nothing does not hold the others up
    host, port = system["url"].removeprefix("http://").rstrip("/").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as idle:
        idle.sendall(b"GET /api/lp-quote?action=deposit&asset=BNB")
        started = time.monotonic()
        for path, error in hostile.items():
            status, body = get(system, path)
            assert status == 400 and body["error"].startswith(error), (path, status, body)
        assert time.monotonic() - started < 5
        status, cfg = get(system, "/api/config")
        assert status == 200 and [e["symbol"] for e in cfg["basket"]] == ["USDT", "USDC", "BNB", "ETH", "BTC"]
        assert cfg["basket"][2] == {**cfg["basket"][2], "decimals": 18, "priceId": 128, "targetBps": 800}
    assert c["pool"].functions.basket().call()[4] == holdings_before  # nothing moved


# ----------------------------------------------------------------------------- last: it moves the chain's clock
def test_withdraw_receiving_bnb_pays_the_fee_shown(page, system):
    """After the cooldown (anvil's clock 48 h on), the first test's LP burns all its ALP for BNB
    chosen in the selector: the fee shown before sending is the Withdraw event's to the cent,
    the BNB received is the event's, and BNB's bar falls back. It moves the chain's time: last."""
    w3, c = system["w3"], system["c"]
    lp = system["accounts"][1]
    bnb = system["deployment"].basket_asset("BNB")
    alp = c["alp"].functions.balanceOf(lp).call()
    assert alp > 0  # the first test's deposit
    unlocks_at = c["alp"].functions.unlocksAt(lp).call()
    w3.provider.make_request("evm_increaseTime", [unlocks_at - w3.eth.get_block("latest")["timestamp"] + 60])
    w3.provider.make_request("evm_mine", [])
    jumped_to = w3.eth.get_block("latest")["timestamp"]
    deadline = time.monotonic() + WAIT_MS / 1000
    while min(c["oracle"].functions.settledUntil(p).call() for p in range(len(system["deployment"].pairs))) <= jumped_to:
        assert time.monotonic() < deadline, "the keeper did not price the pairs after the time jump"
        time.sleep(0.1)

    page.select_option("#account", lp)
    page.wait_for_function("document.querySelector('[data-key=cooldown]').textContent === 'unlocked'", timeout=WAIT_MS)
    bnb_weight_before = Decimal(bar(page, "BNB")["weightBps"])
    assert bnb_weight_before > 0
    page.select_option("#withdraw-asset", "BNB")
    alp_text = format(Decimal(alp).scaleb(-18), "f")
    page.fill("#withdraw-amount", alp_text)
    try:
        page.wait_for_function(f"document.querySelector('#withdraw-quote').dataset.asset === 'BNB'"
                               f" && document.querySelector('#withdraw-quote').dataset.amount === '{Decimal(alp_text).normalize():f}'", timeout=WAIT_MS)
    except PlaywrightTimeout:
        raise AssertionError(f"no quote; the page says {page.text_content('#withdraw-quote-error')!r}") from None
    shown = page.eval_on_selector_all("#withdraw-quote td[data-key]", "tds => Object.fromEntries(tds.map(td => [td.dataset.key, td.textContent]))")
    # BNB is under its 8% target: taking it out moves it away, 25 + 5 bp on all of it
    assert shown["fee_bps"] == "30.00"
    balance_before = c["asset_BNB"].functions.balanceOf(lp).call() if "asset_BNB" in c else None
    status, api = get(system, f"/api/lp-quote?action=withdraw&asset=BNB&amount={alp_text}")
    assert status == 200 and api["feeBps"] == "30.0000" and api["towardUsd"] == "0"
    block_before = w3.eth.block_number
    page.click("#withdraw")
    page.wait_for_function("document.querySelector('#pool-status').textContent.includes('withdrew')", timeout=WAIT_MS)
    events = c["pool"].events.Withdraw().get_logs(from_block=block_before + 1, argument_filters={"lp": lp})
    assert len(events) == 1
    ev = events[0]["args"]
    assert ev["asset"] == bnb.address and ev["alpIn"] == alp
    event_fee = (Decimal(ev["feeUsd"]) / WAD).quantize(Decimal("0.01"), ROUND_HALF_UP)
    assert event_fee == number(shown["fee_usd"])  # the fee shown before sending, to the cent
    # the server's quote, to the unit: the fee as the event rounds it (down), the BNB out the event's
    assert int(Decimal(api["feeUsd"]).scaleb(18)) == ev["feeUsd"]
    assert int(api["amountOutUnits"]) == ev["amountOut"]
    if balance_before is not None:
        assert c["asset_BNB"].functions.balanceOf(lp).call() - balance_before == ev["amountOut"]
    assert abs(Decimal(ev["amountOut"]).scaleb(-18) - number(shown["amount_out"])) <= Decimal("0.000001")
    assert c["pool"].functions.holdingsOf(bnb.address).call() == 10 * WAD - ev["amountOut"]
    page.wait_for_function(f"Number(document.querySelector(\"#basket-chart [data-symbol='BNB']\").dataset.weightBps) < {bnb_weight_before}",
                           timeout=WAIT_MS)
    shot(page, "basket_withdraw")
