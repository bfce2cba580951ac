// The page's LP side of the ALP basket (issue 28): the deposit asset selector with the fee this
// deposit would pay (bp and USD) and the asset's weight before and after, the asset to receive on
// a withdrawal, and the basket's weights against their targets as bars. The quote comes from the
// page's server (/api/lp-quote: the reference model's fee curve at the prices the pool will read,
// which it brings fresh on chain first); the transactions are the browser's own (ethers).

import { Contract, formatUnits, parseUnits } from "ethers";

const FACE_VALUE = 65535n; // AlpPool.FACE_VALUE: 1 USD per token, no oracle read
const WAD = 10n ** 18n;
const QUOTE_DELAY_MS = 300;

/** Wires the LP panel to the page's state and helpers (app.js). */
export function initBasket(ctx) {
  const { S, $, el } = ctx;
  S.basket = S.cfg.basket;
  S.lpQuote = null;
  S.basketWeights = null;
  for (const entry of S.basket) {
    if (!S.c[entry.role]) S.c[entry.role] = new Contract(entry.address, S.cfg.contracts.collateral.abi, S.provider);
    $("#lp-asset").append(el("option", { value: entry.symbol }, entry.symbol));
    $("#withdraw-asset").append(el("option", { value: entry.symbol }, entry.symbol));
  }
  const requote = () => { clearTimeout(S.lpQuoteTimer); S.lpQuoteTimer = setTimeout(() => depositQuote(ctx).catch(() => {}), QUOTE_DELAY_MS); };
  $("#lp-asset").addEventListener("change", () => { $("#lp-asset-sym").textContent = $("#lp-asset").value; requote(); });
  $("#deposit-amount").addEventListener("input", requote);
  $("#lp-asset-sym").textContent = $("#lp-asset").value;
  requote();
  const requoteOut = () => { clearTimeout(S.lpOutTimer); S.lpOutTimer = setTimeout(() => withdrawQuote(ctx).catch(() => {}), QUOTE_DELAY_MS); };
  $("#withdraw-asset").addEventListener("change", requoteOut);
  $("#withdraw-amount").addEventListener("input", requoteOut);
}

/** Quotes the withdrawal the form describes (the ALP amount and the asset to receive). */
async function withdrawQuote(ctx) {
  const { $, setStatus } = ctx;
  const symbol = $("#withdraw-asset").value;
  const text = $("#withdraw-amount").value;
  const table = $("#withdraw-quote");
  if (!text) { table.replaceChildren(); setStatus("#withdraw-quote-error", ""); return null; }
  try {
    const q = await fetchLpQuote("withdraw", symbol, text);
    if ($("#withdraw-asset").value !== symbol || $("#withdraw-amount").value !== text) return null;
    showQuote(ctx, table, q);
    setStatus("#withdraw-quote-error", "");
    return q;
  } catch (e) {
    table.replaceChildren();
    setStatus("#withdraw-quote-error", e.message, true);
    throw e;
  }
}

const entryOf = (S, symbol) => {
  const entry = S.basket.find((e) => e.symbol === symbol);
  if (!entry) throw new Error(`${symbol} is not in the basket`);
  return entry;
};

/** The server's quote of an LP action; throws its error message. */
async function fetchLpQuote(action, asset, amount) {
  const res = await fetch(`/api/lp-quote?${new URLSearchParams({ action, asset, amount })}`);
  const body = await res.json();
  if (!res.ok) throw new Error(body.error);
  return body;
}

const pct = (bps, digits = 2) => `${(Number(bps) / 100).toFixed(digits)} %`;
const usd = (v) => Number(v).toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });

function showQuote(ctx, table, q) {
  const { el } = ctx;
  const rows = [
    ["fee_bps", "fee (bp)", Number(q.feeBps).toFixed(2)],
    ["fee_usd", "fee (USD)", usd(q.feeUsd)],
    ["action_usd", q.action === "deposit" ? "value in (USD)" : "value out, before the fee (USD)", usd(q.actionUsd)],
    ["weight_before", `${q.asset} weight before`, pct(q.weightBeforeBps)],
    ["weight_after", `${q.asset} weight after`, pct(q.weightAfterBps)],
    ["target", `${q.asset} target`, pct(q.targetBps)],
    q.action === "deposit" ? ["alp_out", "ALP out (about)", Number(q.alpOut).toFixed(4)]
      : ["amount_out", `${q.asset} out (about)`, Number(q.amountOut).toFixed(6)],
  ];
  table.replaceChildren(...rows.map(([key, label, text]) =>
    el("tr", {}, el("th", {}, label), el("td", { "data-key": key }, text))));
  table.dataset.asset = q.asset;
  table.dataset.amount = q.action === "deposit" ? q.amountUnits : q.alp;
}

/** Quotes the deposit the form describes (on every change of asset or amount). */
async function depositQuote(ctx) {
  const { S, $, setStatus } = ctx;
  const symbol = $("#lp-asset").value;
  const text = $("#deposit-amount").value;
  const table = $("#lp-quote");
  try {
    const q = await fetchLpQuote("deposit", symbol, text || "0");
    if ($("#lp-asset").value !== symbol || $("#deposit-amount").value !== text) return null; // the form moved on
    S.lpQuote = q;
    showQuote(ctx, table, q);
    setStatus("#lp-quote-error", "");
    return q;
  } catch (e) {
    S.lpQuote = null;
    table.replaceChildren();
    setStatus("#lp-quote-error", e.message, true);
    throw e;
  }
}

export async function deposit(ctx) {
  const { S, $, setStatus, sendTx, w, ensureAllowance, fmt } = ctx;
  const entry = entryOf(S, $("#lp-asset").value);
  const text = $("#deposit-amount").value || "0";
  const amount = parseUnits(text, entry.decimals);
  if (amount <= 0n) throw new Error("enter an amount to deposit");
  setStatus("#pool-status", "pricing…");
  const q = await depositQuote(ctx); // the server brings the basket's prices fresh first
  setStatus("#pool-status", "approving…");
  await ensureAllowance(entry.role, S.cfg.contracts.pool.address, amount);
  setStatus("#pool-status", "depositing…");
  await w("pool").deposit.staticCall(entry.address, amount, 0); // a revert named before sending
  const receipt = await sendTx("deposit", () => w("pool").deposit(entry.address, amount, 0, { gasLimit: ctx.GAS.pool }));
  const ev = receipt.logs.map((l) => { try { return S.c.pool.interface.parseLog(l); } catch { return null; } }).find((e) => e?.name === "Deposit");
  S.lastDeposit = { quoteFeeUsd: q?.feeUsd, eventFeeUsd: formatUnits(ev.args.feeUsd, 18) };
  setStatus("#pool-status", `deposited ${text} ${entry.symbol}: fee ${usd(formatUnits(ev.args.feeUsd, 18))} USD, `
    + `received ${fmt(formatUnits(ev.args.alpOut, 18), 4)} ALP`);
  await refreshBasket(ctx);
  depositQuote(ctx).catch(() => {});
}

export async function withdraw(ctx) {
  const { S, $, setStatus, sendTx, w, fmt } = ctx;
  const entry = entryOf(S, $("#withdraw-asset").value);
  const text = $("#withdraw-amount").value || "0";
  const alp = parseUnits(text, 18);
  if (alp <= 0n) throw new Error("enter an ALP amount to withdraw");
  setStatus("#pool-status", "pricing…");
  await withdrawQuote(ctx).catch(() => {}); // the server brings the prices fresh; the pool names its own refusal below
  await w("pool").withdraw.staticCall(alp, entry.address, 0); // a revert (cooldown, price stale) named before sending
  const receipt = await sendTx("withdraw", () => w("pool").withdraw(alp, entry.address, 0, { gasLimit: ctx.GAS.pool }));
  const ev = receipt.logs.map((l) => { try { return S.c.pool.interface.parseLog(l); } catch { return null; } }).find((e) => e?.name === "Withdraw");
  setStatus("#pool-status", `withdrew ${fmt(formatUnits(alp, 18), 4)} ALP: fee ${usd(formatUnits(ev.args.feeUsd, 18))} USD, `
    + `received ${fmt(formatUnits(ev.args.amountOut, entry.decimals))} ${entry.symbol}`);
  await refreshBasket(ctx);
}

/** The basket's holdings at the oracle's marks (the NAV's prices), weights in bp to 2 places. */
export async function refreshBasket(ctx) {
  const { S } = ctx;
  const [, decimals, targets, priceIds, holdings] = await S.c.pool.basket();
  const prices = await Promise.all(priceIds.map((id) => (id === FACE_VALUE ? WAD : S.c.oracle.markPrice(id))));
  const values = holdings.map((h, j) => (h * 10n ** (18n - decimals[j]) * prices[j]) / WAD);
  const total = values.reduce((a, b) => a + b, 0n);
  S.basketWeights = S.basket.map((e, j) => ({
    symbol: e.symbol, valueUsd: values[j], targetBps: Number(targets[j]),
    weightBps: total ? Number((values[j] * 1_000_000n) / total) / 100 : 0,
  }));
  renderBasket(ctx);
}

/** One bar per asset: its weight (filled) and its target (a marker), as % of the basket. */
export function renderBasket(ctx) {
  const { S, $, el } = ctx;
  if (!S.basketWeights) return;
  const chart = $("#basket-chart");
  chart.replaceChildren(...S.basketWeights.map((b) => {
    const off = b.weightBps - b.targetBps;
    const state = Math.abs(off) < 1 ? "at" : off > 0 ? "over" : "under";
    return el("div", { class: `bar-row ${state}`, "data-symbol": b.symbol, "data-weight-bps": b.weightBps.toFixed(2),
      "data-target-bps": String(b.targetBps) },
    el("span", { class: "bar-label" }, b.symbol),
    el("div", { class: "bar-track" },
      el("div", { class: "bar-fill", style: `width: ${Math.min(b.weightBps / 100, 100)}%` }),
      el("div", { class: "bar-target", style: `left: ${b.targetBps / 100}%`, title: `target ${pct(b.targetBps)}` })),
    el("span", { class: "bar-text" }, `${pct(b.weightBps)} of ${pct(b.targetBps)} target · ${usd(formatUnits(b.valueUsd, 18))} USD`));
  }));
}

/** The LP's balance of the chosen deposit asset (shown beside the selector). */
export async function refreshLpBalance(ctx) {
  const { S, $, fmt } = ctx;
  const entry = S.basket.find((e) => e.symbol === $("#lp-asset").value);
  if (!entry || !S.account) return;
  const units = await S.c[entry.role].balanceOf(S.account);
  $("#lp-balance").textContent = `you hold ${fmt(formatUnits(units, entry.decimals), 4)} ${entry.symbol}`;
}
