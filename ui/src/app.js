// alpsim's one-click trading page. Reads the deployment from the page's server (/api/config),
// talks to the node itself through ethers, and builds every order in the browser: commitment,
// ECIES encryption to the keeper's published key (eciesjs), `requestOpen` signed by the chosen
// dev account (anvil's unlocked accounts) or an injected wallet. The server only answers
// read-only JSON (config, quotes, liquidation prices); no order is ever sent to it.

import { ECIES_CONFIG, encrypt } from "eciesjs";
import {
  AbiCoder, BrowserProvider, Contract, Interface, JsonRpcProvider, MaxUint256, getAddress,
  concat, formatUnits, getBytes, hexlify, keccak256, parseUnits, randomBytes, toBeHex,
} from "ethers";
import { deposit, initBasket, refreshBasket, refreshLpBalance, withdraw } from "./basket.js";

const POLL_MS = 700;
const GAS = { approve: 100_000, requestOpen: 300_000, requestClose: 150_000, cancel: 150_000, pool: 500_000 };
const FEED_MAX = 200;
const CHART_POINTS = 600;
const LIQ_REFRESH_MS = 10_000;

const $ = (sel) => document.querySelector(sel);
const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : String(c));
  return node;
};

// ----- state
const S = {
  cfg: null, provider: null, signer: null, account: null, head: 0, headTime: 0, scanned: 0,
  c: {}, ifaces: {}, events: [], prices: {}, priceHistory: {}, positions: new Map(), liq: new Map(),
  side: "long", decimals: 18, quote: null, pool: null, balance: null, alpBalance: null, unlocksAt: 0n,
  busy: false,
};
window.alpsimState = S; // for debugging from the console (and the browser tests' diagnostics)

const fmt = (value, digits = 2) => Number(value).toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
const wad = (v) => formatUnits(v, 18);
const tok = (v) => formatUnits(v, S.decimals);
const enumName = (name, value) =>
  Object.keys(S.cfg.enums[name]).find((k) => S.cfg.enums[name][k] === Number(value)) ?? `${name}(${value})`;
const pairName = (id) => S.cfg.pairs[Number(id)]?.name ?? `pair ${id}`;
const assetOf = (address) => S.cfg.basket.find((e) => e.address.toLowerCase() === String(address).toLowerCase())
  ?? { symbol: String(address).slice(0, 10), decimals: 18 };
const me = () => S.account?.toLowerCase();
const isMine = (addr) => addr && addr.toLowerCase() === me();

function setStatus(sel, text, isError = false) {
  const node = $(sel);
  node.textContent = text;
  node.classList.toggle("error", isError);
}

// ----- start
async function start() {
  const res = await fetch("/api/config");
  S.cfg = await res.json();
  S.decimals = S.cfg.collateralDecimals;
  document.querySelectorAll(".sym").forEach((n) => { n.textContent = S.cfg.collateralSymbol; });
  S.provider = new JsonRpcProvider(S.cfg.rpcUrl, Number(S.cfg.chainId), { staticNetwork: true, pollingInterval: 250 });
  for (const [role, entry] of Object.entries(S.cfg.contracts)) {
    S.c[role] = new Contract(entry.address, entry.abi, S.provider);
    S.ifaces[entry.address.toLowerCase()] = { role, iface: new Interface(entry.abi) };
  }
  S.scanned = Number(S.cfg.block);

  const ecies = S.cfg.ecies;
  ECIES_CONFIG.ellipticCurve = ecies.curve;
  ECIES_CONFIG.isEphemeralKeyCompressed = ecies.ephemeralKeyCompressed;
  ECIES_CONFIG.isHkdfKeyCompressed = ecies.hkdfKeyCompressed;
  ECIES_CONFIG.symmetricAlgorithm = ecies.symmetricCipher;
  ECIES_CONFIG.symmetricNonceLength = ecies.nonceBytes;

  const labels = { 0: "deployer", 7: "LP", 8: "treasury", 9: "keeper" };
  const accounts = (await S.provider.send("eth_accounts", [])).map((a) => getAddress(a));
  const select = $("#account");
  if (window.ethereum) select.append(el("option", { value: "injected" }, "injected wallet"));
  accounts.forEach((a, i) => select.append(el("option", { value: a }, `${i}: ${a.slice(0, 8)}… ${labels[i] ?? "trader"}`)));
  select.value = accounts[1] ?? accounts[0] ?? "injected";
  select.addEventListener("change", () => chooseAccount(select.value));
  await chooseAccount(select.value);

  for (const p of S.cfg.pairs) $("#pair").append(el("option", { value: String(p.id) }, p.name));
  $("#pair").addEventListener("change", () => { clampLeverage(); requestQuote(); drawChart(); });
  $("#side-long").addEventListener("click", () => setSide("long"));
  $("#side-short").addEventListener("click", () => setSide("short"));
  $("#leverage").addEventListener("input", () => { $("#leverage-num").value = $("#leverage").value; clampLeverage(); requestQuote(); });
  $("#leverage-num").addEventListener("input", () => { $("#leverage").value = $("#leverage-num").value; clampLeverage(); requestQuote(); });
  $("#amount").addEventListener("input", () => { clampLeverage(); requestQuote(); });
  $("#uncapped").addEventListener("change", () => { clampLeverage(); requestQuote(); });
  $("#open").addEventListener("click", () => guard("#open-status", openPosition));
  initBasket(LP);
  $("#deposit").addEventListener("click", () => guard("#pool-status", () => deposit(LP)));
  $("#withdraw").addEventListener("click", () => guard("#pool-status", () => withdraw(LP)));
  clampLeverage();
  await refresh();
  requestQuote();
  setInterval(() => { refresh().catch((e) => setStatus("#status", `node: ${e.shortMessage ?? e.message}`, true)); }, POLL_MS);
}

async function chooseAccount(value) {
  if (value === "injected") {
    const browser = new BrowserProvider(window.ethereum);
    S.signer = await browser.getSigner();
  } else {
    S.signer = await S.provider.getSigner(value);
  }
  S.account = await S.signer.getAddress();
  S.liq.clear();
  render();
}

function setSide(side) {
  S.side = side;
  $("#side-long").classList.toggle("active", side === "long");
  $("#side-short").classList.toggle("active", side === "short");
  requestQuote();
}

// ----- leverage cap: the pair's maximum and the notional tier's
function leverageCap(pair, amount) {
  const pairMax = pair.maxLeverage ?? 1001;
  if (!pair.tiered || !(amount > 0)) return pairMax;
  const capAt = (notional) => {
    for (const t of S.cfg.tiers) {
      if (notional <= Number(t.maxNotionalUsd)) return t.leverageCap === 0 ? pairMax : Math.min(t.leverageCap, pairMax);
    }
    return 0;
  };
  for (let lev = pairMax; lev >= 1; lev--) if (capAt(amount * lev) >= lev) return lev;
  return 1;
}

function clampLeverage() {
  const pair = S.cfg.pairs[Number($("#pair").value || 0)];
  const cap = leverageCap(pair, Number($("#amount").value));
  const uncapped = $("#uncapped").checked;
  const max = uncapped ? 1001 : cap;
  $("#leverage").max = String(max);
  let lev = Math.max(1, Math.round(Number($("#leverage-num").value) || 1));
  if (lev > max) lev = max;
  $("#leverage").value = String(lev);
  $("#leverage-num").value = String(lev);
  $("#leverage-out").textContent = `${lev}x`;
  $("#leverage-cap").textContent = `${pair.name}: up to ${pair.maxLeverage}x; at this amount the tier allows ${cap}x`
    + (uncapped && lev > cap ? ` — ${lev}x will be refused by the exchange` : "");
}

// ----- quote (the server computes it with alpsim's quote code, at the keeper's current price)
let quoteTimer = null;
function requestQuote() {
  clearTimeout(quoteTimer);
  quoteTimer = setTimeout(() => fetchQuote().catch((e) => setStatus("#quote-error", e.message, true)), 150);
}

const QUOTE_ROWS = [
  ["tier", "tier", (v) => v], ["entry_price", "entry", (v) => fmt(v)], ["notional_usd", "notional (USD)", (v) => fmt(v)],
  ["margin_usd", "margin (USD)", (v) => fmt(v)], ["open_fee_usd", "open fee (USD)", (v) => fmt(v, 4)],
  ["execution_fee_usd", "execution fee (USD)", (v) => fmt(v, 2)], ["take_profit_cap_price", "take-profit cap", (v) => fmt(v)],
  ["max_profit_usd", "max profit (USD)", (v) => fmt(v)], ["liquidation_price", "liquidation price", (v) => fmt(v)],
  ["liquidation_move_pct", "move to liquidation", (v) => `${fmt(v, 3)} %`], ["round_trip_cost_usd", "round-trip cost (USD)", (v) => fmt(v, 4)],
];

async function fetchQuote() {
  const pairId = Number($("#pair").value || 0);
  const price = S.prices[pairId];
  if (!price) return;
  const params = new URLSearchParams({
    pair: pairName(pairId), side: S.side, amount: $("#amount").value || "0",
    leverage: $("#leverage-num").value || "1", price: wad(price),
  });
  const res = await fetch(`/api/quote?${params}`);
  const body = await res.json();
  const table = $("#quote-table");
  table.replaceChildren();
  if (!res.ok) {
    S.quote = null;
    setStatus("#quote-error", body.refused ? `The exchange would refuse this order: ${body.error}` : body.error, true);
    $("#warning").textContent = "";
    return;
  }
  S.quote = body;
  setStatus("#quote-error", "");
  for (const [key, label, f] of QUOTE_ROWS) {
    table.append(el("tr", {}, el("th", {}, label), el("td", { "data-key": key, "data-value": String(body[key]) }, f(body[key]))));
  }
  const lev = Number(body.leverage);
  const move = Math.abs(Number(body.liquidation_move_pct));
  const level = lev >= 500 ? "Extreme" : lev >= 100 ? "Very high" : lev >= 20 ? "High" : lev >= 5 ? "Moderate" : "Low";
  const w = $("#warning");
  w.className = `warning${lev >= 100 ? " high" : ""}`;
  w.textContent = `${level} risk: at ${lev}x a ${fmt(move, 3)} % move ${S.side === "long" ? "down" : "up"} to ${fmt(body.liquidation_price)} `
    + `liquidates this position and you lose the margin (${fmt(body.margin_usd)} USD). Fees alone cost ${fmt(body.round_trip_cost_usd, 2)} USD round trip.`;
}

// ----- transactions (one at a time: anvil's pending nonce lags just after a receipt)
let txChain = Promise.resolve();
function sendTx(label, build) {
  const run = txChain.then(async () => {
    const tx = await build();
    const receipt = await tx.wait(1, 60_000);
    if (!receipt || receipt.status !== 1) throw new Error(`${label} failed (tx ${tx.hash})`);
    return receipt;
  });
  txChain = run.catch(() => {});
  return run;
}
const w = (role) => S.c[role].connect(S.signer);

async function guard(statusSel, action) {
  try {
    await action();
  } catch (e) {
    let message = e.shortMessage ?? e.message ?? String(e);
    const data = e.data ?? e.info?.error?.data;
    if (data) {
      for (const { iface } of Object.values(S.ifaces)) {
        try { const parsed = iface.parseError(data); if (parsed) { message = `${parsed.name}(${parsed.args.join(", ")})`; break; } } catch { /* next */ }
      }
    }
    setStatus(statusSel, message, true);
  }
}

async function ensureAllowance(role, spender, amount) {
  const allowance = await S.c[role].allowance(S.account, spender);
  if (allowance < amount) await sendTx("approve", () => w(role).approve(spender, MaxUint256, { gasLimit: GAS.approve }));
}

async function openPosition() {
  const pairId = BigInt($("#pair").value || 0);
  const amountIn = parseUnits($("#amount").value || "0", S.decimals);
  if (amountIn <= 0n) throw new Error("enter an amount");
  const trader = S.account;
  const order = {
    pairId, isLong: S.side === "long", leverage: BigInt($("#leverage-num").value),
    takeProfit: $("#tp").value ? parseUnits($("#tp").value, 18) : 0n,
    stopLoss: $("#sl").value ? parseUnits($("#sl").value, 18) : 0n,
    acceptablePrice: 0n, salt: hexlify(randomBytes(32)),
  };
  const commitment = keccak256(AbiCoder.defaultAbiCoder().encode(
    ["address", "uint256", "bool", "uint256", "uint256", "uint256", "uint256", "bytes32"],
    [trader, order.pairId, order.isLong, order.leverage, order.takeProfit, order.stopLoss, order.acceptablePrice, order.salt]));
  const ecies = S.cfg.ecies;
  const plaintext = getBytes(concat(ecies.plaintextLayout.map(([field, width]) => {
    const value = order[field];
    return field === "salt" ? getBytes(value) : toBeHex(typeof value === "boolean" ? (value ? 1 : 0) : value, width);
  })));
  if (plaintext.length !== ecies.plaintextBytes) throw new Error(`plaintext is ${plaintext.length} bytes, expected ${ecies.plaintextBytes}`);
  const keeperKey = await S.c.trading.keeperPublicKey(); // the engine is the authority if the key rotates
  const ciphertext = encrypt(keeperKey.replace(/^0x/, "04"), plaintext);
  if (ciphertext.length !== ecies.ciphertextBytes) throw new Error(`ciphertext is ${ciphertext.length} bytes, expected ${ecies.ciphertextBytes}`);

  setStatus("#open-status", "approving…");
  await ensureAllowance("collateral", S.cfg.contracts.trading.address, amountIn);
  setStatus("#open-status", "sending the encrypted order…");
  const receipt = await sendTx("requestOpen", () => w("trading").requestOpen(commitment, ciphertext, amountIn, { gasLimit: GAS.requestOpen }));
  const requested = receipt.logs.map((l) => { try { return S.c.trading.interface.parseLog(l); } catch { return null; } })
    .find((e) => e?.name === "OpenRequested");
  S.lastRequestId = requested.args.requestId;
  setStatus("#open-status", `request #${requested.args.requestId} sent (encrypted); waiting for the keeper…`);
}

async function closePosition(id) {
  await guard("#open-status", async () => {
    await sendTx("requestClose", () => w("trading").requestClose(id, { gasLimit: GAS.requestClose }));
    setStatus("#open-status", `close of position #${id} requested`);
  });
}

async function cancelRequest(id) {
  await guard("#open-status", async () => {
    await sendTx("cancelRequest", () => w("trading").cancelRequest(id, { gasLimit: GAS.cancel }));
    setStatus("#open-status", `request #${id} cancelled`);
  });
}

// the LP panel's helpers (basket.js)
const LP = { S, $, el, fmt, setStatus, sendTx, w, ensureAllowance, GAS };

// ----- reading the chain
async function scanLogs(head) {
  if (head <= S.scanned) return;
  const addresses = [S.cfg.contracts.trading.address, S.cfg.contracts.pool.address];
  for (let from = S.scanned + 1; from <= head; from += 2_000) {
    const to = Math.min(head, from + 1_999);
    const logs = await S.provider.getLogs({ address: addresses, fromBlock: from, toBlock: to });
    for (const log of logs) {
      const entry = S.ifaces[log.address.toLowerCase()];
      let parsed = null;
      try { parsed = entry.iface.parseLog(log); } catch { /* not in the ABI */ }
      if (parsed) S.events.push({ name: parsed.name, args: parsed.args, block: log.blockNumber, tx: log.transactionHash });
    }
    S.scanned = to;
  }
}

async function refresh() {
  if (S.busy) return;
  S.busy = true;
  try {
    const block = await S.provider.getBlock("latest");
    S.head = block.number;
    S.headTime = block.timestamp;
    await scanLogs(S.head);
    const prices = await Promise.all(S.cfg.pairs.map((p) => S.c.oracle.keeperPrice(p.id).catch(() => [0n, 0n])));
    prices.forEach(([price], i) => {
      if (price > 0n) {
        const changed = S.prices[i] !== price;
        S.prices[i] = price;
        const hist = (S.priceHistory[i] ??= []);
        hist.push(Number(wad(price)));
        if (hist.length > CHART_POINTS) hist.shift();
        if (changed && i === Number($("#pair").value || 0)) requestQuote(); // the quote follows the price
      }
    });
    const mine = derive();
    const ids = mine.openIds;
    const raws = ids.length ? await S.c.trading.positionsOf(ids) : [];
    S.positions = new Map(ids.map((id, k) => [id, raws[k]]).filter(([, r]) => r.trader !== "0x0000000000000000000000000000000000000000"));
    for (const id of S.positions.keys()) {
      const cached = S.liq.get(id);
      if (!cached || Date.now() - cached.at > LIQ_REFRESH_MS) {
        S.liq.set(id, { at: Date.now(), price: cached?.price ?? null });
        fetch(`/api/liquidation?id=${id}`).then((r) => (r.ok ? r.json() : null)).then((b) => {
          if (b) S.liq.set(id, { at: Date.now(), price: b.liquidationPrice });
        }).catch(() => {});
      }
    }
    const [balance, alpBalance, unlocksAt] = await Promise.all([
      S.c.collateral.balanceOf(S.account), S.c.alp.balanceOf(S.account), S.c.alp.unlocksAt(S.account)]);
    S.balance = balance; S.alpBalance = alpBalance; S.unlocksAt = unlocksAt;
    const pool = S.c.pool;
    const [nav, alpPrice, supply, poolBalance, reserve, capacity] = await Promise.all([
      pool.nav(), pool.alpPrice(), S.c.alp.totalSupply(), pool.poolBalance(), pool.reserveUsd(),
      pool.reserveCapacityUsd ? pool.reserveCapacityUsd().catch(() => null) : null]);
    S.pool = { nav, alpPrice, supply, poolBalance, reserve, capacity };
    await Promise.all([refreshBasket(LP), refreshLpBalance(LP)]);
    setStatus("#status", `${S.cfg.chain} (chain ${S.cfg.chainId}) · block ${S.head}`);
    render(mine);
  } finally {
    S.busy = false;
  }
}

/** This account's open position ids, pending requests and history, and the feed, from the events. */
function derive() {
  const opens = new Map(); // request id -> {block, amountIn}
  const closes = new Map(); // request id -> {block, positionId}
  const resolved = new Set();
  const openIds = new Set();
  const history = [];
  const feed = [];
  const positionPair = new Map();
  for (const e of S.events) {
    const a = e.args;
    switch (e.name) {
      case "OpenRequested":
        if (isMine(a.trader)) opens.set(a.requestId, { block: e.block, amountIn: a.amountIn });
        break;
      case "CloseRequested":
        if (isMine(a.trader)) closes.set(a.requestId, { block: e.block, positionId: a.positionId });
        break;
      case "PositionOpened": {
        const p = a.position;
        positionPair.set(a.positionId, p);
        resolved.add(a.requestId);
        if (isMine(a.trader)) openIds.add(a.positionId);
        feed.push({ kind: "opened", mine: isMine(a.trader), id: a.positionId,
          text: `opened #${a.positionId}: ${pairName(p.pairId)} ${p.isLong ? "long" : "short"} ${p.leverage}x at ${fmt(wad(p.entryPrice))}, notional ${fmt(wad(p.notionalUsd))} USD` });
        break;
      }
      case "OpenRejected": {
        resolved.add(a.requestId);
        const reason = enumName("RejectReason", a.reason);
        if (isMine(a.trader)) {
          history.push({ id: a.requestId, what: "open rejected", reason,
            details: `refund ${fmt(tok(a.refundTokens))} ${S.cfg.collateralSymbol} (execution fee ${fmt(tok(a.executionFeeTokens))} kept)` });
        }
        feed.push({ kind: "rejected", mine: isMine(a.trader), id: a.requestId,
          text: `rejected #${a.requestId}: ${reason}, refund ${fmt(tok(a.refundTokens))} ${S.cfg.collateralSymbol}` });
        break;
      }
      case "CloseRejected":
        for (const [rid, c] of closes) if (rid === a.requestId) { resolved.add(rid); history.push({ id: c.positionId, what: "close rejected", reason: enumName("RejectReason", a.reason), details: `request #${rid}` }); }
        feed.push({ kind: "rejected", mine: closes.has(a.requestId), id: a.requestId, text: `close #${a.requestId} rejected: ${enumName("RejectReason", a.reason)}` });
        break;
      case "PositionClosed": {
        const s = a.settlement;
        const reason = enumName("CloseReason", s.reason);
        openIds.delete(a.positionId);
        for (const [rid, c] of closes) if (c.positionId === a.positionId) resolved.add(rid);
        const text = `${reason === "Liquidation" ? "liquidated" : "closed"} #${a.positionId} (${reason}) at ${fmt(wad(s.exitPrice))}: `
          + `PnL ${fmt(wad(s.pnlUsd))} USD, payout ${fmt(tok(s.payoutTokens))} ${S.cfg.collateralSymbol}`;
        if (isMine(a.trader)) {
          history.push({ id: a.positionId, what: "closed", reason,
            details: `exit ${fmt(wad(s.exitPrice))}, PnL ${fmt(wad(s.pnlUsd))} USD, payout ${fmt(tok(s.payoutTokens))} ${S.cfg.collateralSymbol}` });
        }
        feed.push({ kind: reason === "Liquidation" ? "liquidated" : "closed", mine: isMine(a.trader), id: a.positionId, text });
        break;
      }
      case "RequestCancelled":
        resolved.add(a.requestId);
        if (isMine(a.trader)) {
          history.push({ id: a.requestId, what: "cancelled", reason: enumName("RequestKind", a.kind),
            details: `refund ${fmt(tok(a.refundTokens))} ${S.cfg.collateralSymbol}` });
        }
        feed.push({ kind: "cancelled", mine: isMine(a.trader), id: a.requestId, text: `request #${a.requestId} cancelled` });
        break;
      case "Deposit": {
        const asset = assetOf(a.asset);
        feed.push({ kind: "deposit", mine: isMine(a.lp), id: "", text: `LP deposit ${fmt(formatUnits(a.amountIn, asset.decimals))} ${asset.symbol}`
          + ` → ${fmt(wad(a.alpOut), 4)} ALP (fee ${fmt(wad(a.feeUsd))} USD)` });
        break;
      }
      case "Withdraw": {
        const asset = assetOf(a.asset);
        feed.push({ kind: "withdraw", mine: isMine(a.lp), id: "", text: `LP withdraw ${fmt(wad(a.alpIn), 4)} ALP → `
          + `${fmt(formatUnits(a.amountOut, asset.decimals))} ${asset.symbol} (fee ${fmt(wad(a.feeUsd))} USD)` });
        break;
      }
      default:
    }
  }
  const pending = [];
  for (const [rid, o] of opens) if (!resolved.has(rid)) pending.push({ id: rid, kind: "open", block: o.block });
  for (const [rid, c] of closes) if (!resolved.has(rid) && openIds.has(c.positionId)) pending.push({ id: rid, kind: `close #${c.positionId}`, block: c.block });
  return { openIds: [...openIds], pending, history, feed };
}

// ----- rendering
let lastMine = null;
function render(mine = lastMine) {
  if (!mine || !S.cfg) return;
  lastMine = mine;
  if (S.balance !== null) $("#balance").textContent = `${fmt(tok(S.balance))} ${S.cfg.collateralSymbol} · ${fmt(wad(S.alpBalance ?? 0n), 4)} ALP`;
  const pairId = Number($("#pair").value || 0);
  if (S.prices[pairId]) $("#price-now").textContent = `${pairName(pairId)} ${fmt(wad(S.prices[pairId]))}`;

  if (S.lastRequestId !== undefined) { // the outcome of this page's latest open
    const id = S.lastRequestId;
    const rejected = mine.history.find((h) => h.what === "open rejected" && h.id === id);
    if (rejected) setStatus("#open-status", `request #${id} rejected: ${rejected.reason}; ${rejected.details}`, true);
    else if (mine.feed.some((f) => f.kind === "opened" && f.id === id)) setStatus("#open-status", `request #${id} executed: position #${id} is open`);
  }
  const body = $("#positions tbody");
  body.replaceChildren();
  for (const [id, p] of S.positions) {
    const price = S.prices[Number(p.pairId)] ?? p.entryPrice;
    let pnl = ((p.isLong ? price - p.entryPrice : p.entryPrice - price) * p.qty) / 10n ** 18n;
    if (pnl > p.maxProfitUsd) pnl = p.maxProfitUsd;
    const liq = S.liq.get(id)?.price;
    const toLiq = liq ? ((Number(wad(price)) - Number(liq)) / Number(wad(price))) * 100 * (p.isLong ? 1 : -1) : null;
    body.append(el("tr", { id: `pos-${id}`, "data-pair": pairName(p.pairId) },
      el("td", {}, `#${id}`), el("td", {}, pairName(p.pairId)), el("td", {}, p.isLong ? "long" : "short"), el("td", {}, `${p.leverage}x`),
      el("td", {}, fmt(wad(p.marginUsd))), el("td", { class: "entry", "data-value": wad(p.entryPrice) }, fmt(wad(p.entryPrice))),
      el("td", {}, fmt(wad(price))), el("td", { class: `pnl ${pnl >= 0n ? "pos" : "neg"}` }, fmt(wad(pnl))),
      el("td", { class: "liq", "data-value": liq ?? "" }, liq ? fmt(liq) : "…"),
      el("td", { class: "to-liq" }, toLiq === null ? "…" : `${fmt(toLiq, 3)} %`),
      el("td", { class: "tp" }, fmt(wad(p.takeProfit))),
      el("td", {}, el("button", { type: "button", class: "close", onclick: () => closePosition(id) }, "Close"))));
  }
  if (!S.positions.size) body.append(el("tr", {}, el("td", { colspan: "12", class: "hint" }, "no open position")));

  const pending = $("#pending tbody");
  pending.replaceChildren();
  for (const r of mine.pending) {
    const left = r.block + S.cfg.requestWindowBlocks - S.head;
    pending.append(el("tr", { id: `req-${r.id}` }, el("td", {}, `#${r.id}`), el("td", {}, r.kind), el("td", {}, r.block),
      el("td", { class: "expiry" }, left >= 0 ? `${left + 1} blocks` : "expired"),
      el("td", {}, left < 0 ? el("button", { type: "button", class: "cancel", onclick: () => cancelRequest(r.id) }, "Cancel") : "")));
  }
  if (!mine.pending.length) pending.append(el("tr", {}, el("td", { colspan: "5", class: "hint" }, "none")));

  const hist = $("#history tbody");
  hist.replaceChildren();
  for (const h of [...mine.history].reverse()) {
    hist.append(el("tr", { class: `hist ${h.what.replace(/ /g, "-")}`, "data-id": String(h.id) },
      el("td", {}, `#${h.id}`), el("td", {}, h.what), el("td", { class: "reason" }, h.reason), el("td", { class: "details" }, h.details)));
  }

  const feed = $("#feed");
  feed.replaceChildren();
  for (const f of mine.feed.slice(-FEED_MAX).reverse()) {
    feed.append(el("li", { class: `${f.kind}${f.mine ? " mine" : ""}`, "data-id": String(f.id) }, f.text));
  }
  renderPool();
  drawChart();
}

function renderPool() {
  const p = S.pool;
  if (!p) return;
  const use = p.capacity ? `${fmt(Number(wad(p.reserve)) / Math.max(Number(wad(p.capacity)), 1e-18) * 100, 2)} % of ${fmt(wad(p.capacity))}` : "";
  const now = BigInt(S.headTime);
  const cooldown = S.unlocksAt > now ? `locked for ${fmt(Number(S.unlocksAt - now) / 3600, 2)} h more` : "unlocked";
  const rows = [["NAV (USD)", fmt(wad(p.nav)), "nav"], ["ALP price", fmt(wad(p.alpPrice), 6), "alp-price"],
    ["ALP supply", fmt(wad(p.supply), 4), "supply"], [`balance (${S.cfg.collateralSymbol})`, fmt(tok(p.poolBalance)), "balance"],
    ["reserve (USD)", fmt(wad(p.reserve)), "reserve"], ["reserve use", use, "reserve-use"],
    ["your ALP", fmt(wad(S.alpBalance ?? 0n), 4), "my-alp"], ["withdraw cooldown", cooldown, "cooldown"]];
  $("#pool-table").replaceChildren(...rows.map(([k, v, key]) => el("tr", {}, el("th", {}, k), el("td", { "data-key": key }, v))));
}

function drawChart() {
  const canvas = $("#chart");
  if (!canvas || !S.cfg) return;
  const pairId = Number($("#pair").value || 0);
  $("#chart-pair").textContent = pairName(pairId);
  const ctx = canvas.getContext("2d");
  const W = canvas.width; const H = canvas.height;
  ctx.clearRect(0, 0, W, H);
  const series = S.priceHistory[pairId] ?? [];
  const lines = [];
  for (const [id, p] of S.positions) {
    if (Number(p.pairId) !== pairId) continue;
    lines.push({ y: Number(wad(p.entryPrice)), color: "#e6edf3", label: `#${id} entry` });
    lines.push({ y: Number(wad(p.takeProfit)), color: "#2ea043", label: `#${id} take-profit` });
    const liq = S.liq.get(id)?.price;
    if (liq) lines.push({ y: Number(liq), color: "#da3633", label: `#${id} liquidation` });
  }
  const values = [...series, ...lines.map((l) => l.y)];
  if (!values.length) return;
  let lo = Math.min(...values); let hi = Math.max(...values);
  if (hi - lo < hi * 1e-6) { lo -= hi * 0.001; hi += hi * 0.001; }
  const pad = (hi - lo) * 0.08; lo -= pad; hi += pad;
  const y = (v) => H - ((v - lo) / (hi - lo)) * H;
  ctx.font = "11px system-ui, sans-serif";
  for (const l of lines) {
    ctx.strokeStyle = l.color; ctx.setLineDash([5, 4]); ctx.beginPath(); ctx.moveTo(0, y(l.y)); ctx.lineTo(W, y(l.y)); ctx.stroke();
    ctx.fillStyle = l.color; ctx.fillText(`${l.label} ${fmt(l.y)}`, 6, y(l.y) - 3);
  }
  ctx.setLineDash([]);
  if (series.length) {
    ctx.strokeStyle = "#58a6ff"; ctx.lineWidth = 1.5; ctx.beginPath();
    series.forEach((v, i) => { const x = series.length === 1 ? W : (i / (series.length - 1)) * W; if (i) ctx.lineTo(x, y(v)); else ctx.moveTo(x, y(v)); });
    ctx.stroke(); ctx.lineWidth = 1;
    ctx.fillStyle = "#58a6ff"; ctx.fillText(fmt(series[series.length - 1]), W - 90, y(series[series.length - 1]) - 4);
  }
  canvas.dataset.lines = String(lines.length);
}

start().catch((e) => setStatus("#status", `cannot start: ${e.message}`, true));
