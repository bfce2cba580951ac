#!/usr/bin/env node
// A third-party client of an alpsim devnet: ethers 6 and eciesjs, nothing but the deployments
// file and the RPC. Opens a hidden-order position (commitment + order encrypted to the
// keeper), waits for the keeper to execute it, closes it, prints the settlement.
//
//   node examples/js/client.mjs --rpc http://127.0.0.1:8545 --deployment deployments/arbitrum.json
//        [--account-index 1 | --private-key 0x...] [--pair BTC/USD] [--side long|short]
//        [--amount 100] [--leverage 100] [--timeout 60]
//
// The last line on stdout is one JSON object: requestId, positionId, entryPrice, payout,
// closeReason (and the raw token amounts).

import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

import { ECIES_CONFIG, encrypt } from "eciesjs";
import {
  AbiCoder, Contract, HDNodeWallet, JsonRpcProvider, NonceManager, Wallet,
  concat, formatUnits, getBytes, hexlify, keccak256, parseUnits, randomBytes, toBeHex,
} from "ethers";

// anvil's default mnemonic and path (alpsim/devnet/base.py DEV_MNEMONIC, DEV_HD_PATH): the
// devnet's accounts 1..7 hold 100,000 collateral each
const DEV_MNEMONIC = "test test test test test test test test test test test junk";
const DEV_HD_PATH = "m/44'/60'/0'/0";
const GAS_LIMIT = 500_000n; // explicit: no estimation round trip, and a clear failure if short
const POLL_MS = 250;

function fail(message) {
  console.error(`client: ${message}`);
  process.exit(1);
}
process.on("uncaughtException", (error) => fail(error.shortMessage ?? error.message ?? String(error)));

const { values: args } = parseArgs({
  options: {
    rpc: { type: "string" },
    deployment: { type: "string" },
    "account-index": { type: "string", default: "1" },
    "private-key": { type: "string" },
    pair: { type: "string", default: "BTC/USD" },
    side: { type: "string", default: "long" },
    amount: { type: "string", default: "100" },
    leverage: { type: "string", default: "100" },
    timeout: { type: "string", default: "60" },
  },
});
if (!args.rpc || !args.deployment) fail("usage: client.mjs --rpc URL --deployment FILE [--account-index N | --private-key KEY]");
if (!["long", "short"].includes(args.side)) fail(`--side is long or short, not ${args.side}`);

const deployment = JSON.parse(readFileSync(args.deployment, "utf8"));
const { enums, ecies } = deployment;
if (!enums || !ecies) fail(`${args.deployment} has no enums / ecies block: redeploy with a current alpsim`);
const deadline = Date.now() + Number(args.timeout) * 1000;

const provider = new JsonRpcProvider(args.rpc, undefined, { pollingInterval: POLL_MS });
const { chainId } = await provider.getNetwork();
if (chainId !== BigInt(deployment.chain_id)) fail(`${args.rpc} is chain ${chainId}, the deployment is for ${deployment.chain_id}`);

const wallet = args["private-key"]
  ? new Wallet(args["private-key"])
  : HDNodeWallet.fromPhrase(DEV_MNEMONIC, undefined, `${DEV_HD_PATH}/${args["account-index"]}`);
// anvil can answer eth_getTransactionCount(addr, "pending") with the old count just after a
// receipt: the NonceManager counts the nonces itself
const signer = new NonceManager(wallet.connect(provider));
const trader = wallet.address;

const contract = (role) => {
  const entry = deployment.contracts[role];
  if (!entry) fail(`${args.deployment} has no contract for role ${role}`);
  return new Contract(entry.address, entry.abi, signer);
};
const trading = contract("trading");
const collateral = contract("collateral");
const name = (enumName, value) =>
  Object.keys(enums[enumName]).find((k) => enums[enumName][k] === Number(value)) ?? `${enumName}(${value})`;

async function send(label, txPromise) {
  const tx = await txPromise;
  const receipt = await tx.wait(1, Math.max(deadline - Date.now(), 1));
  if (!receipt || receipt.status !== 1) fail(`${label} failed (tx ${tx.hash})`);
  return receipt;
}

function eventOf(receipt, eventName) {
  for (const log of receipt.logs) {
    const parsed = trading.interface.parseLog(log);
    if (parsed?.name === eventName) return parsed;
  }
  fail(`no ${eventName} in transaction ${receipt.hash}`);
}

/** The first of `filters` ({label: filter}) to match a log from `fromBlock` on, polled until the deadline. */
async function waitFor(what, fromBlock, filters) {
  while (Date.now() < deadline) {
    for (const [label, filter] of Object.entries(filters)) {
      const logs = await trading.queryFilter(filter, fromBlock);
      if (logs.length) return { label, event: logs[0] };
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  fail(`timed out after ${args.timeout} s waiting for ${what} (is the keeper running?)`);
}

// ----- the order, its commitment and its ciphertext (SPEC section 5)
const decimals = Number(await collateral.decimals());
const symbol = await collateral.symbol();
const amountIn = parseUnits(args.amount, decimals);
const pairId = deployment.pairs.indexOf(args.pair);
if (pairId < 0) fail(`no pair ${args.pair}; the deployment lists ${deployment.pairs.join(", ")}`);
const order = {
  pairId: BigInt(pairId),
  isLong: args.side === "long",
  leverage: BigInt(args.leverage),
  takeProfit: 0n, // 0: at the protocol's cap
  stopLoss: 0n, // 0: none
  acceptablePrice: 0n, // 0: any fill
  salt: hexlify(randomBytes(32)),
};
const commitment = keccak256(AbiCoder.defaultAbiCoder().encode(
  ["address", "uint256", "bool", "uint256", "uint256", "uint256", "uint256", "bytes32"],
  [trader, order.pairId, order.isLong, order.leverage, order.takeProfit, order.stopLoss, order.acceptablePrice, order.salt],
));
// the packed plaintext: each field big-endian in its width, as the deployments file lays it out
const plaintext = getBytes(concat(ecies.plaintextLayout.map(([field, width]) => {
  const value = order[field];
  if (value === undefined) fail(`the deployments file's plaintext has a field ${field} this client does not know`);
  return field === "salt" ? getBytes(value) : toBeHex(typeof value === "boolean" ? (value ? 1 : 0) : value, width);
})));
if (plaintext.length !== ecies.plaintextBytes) fail(`plaintext is ${plaintext.length} bytes, the deployment says ${ecies.plaintextBytes}`);

ECIES_CONFIG.ellipticCurve = ecies.curve;
ECIES_CONFIG.isEphemeralKeyCompressed = ecies.ephemeralKeyCompressed;
ECIES_CONFIG.isHkdfKeyCompressed = ecies.hkdfKeyCompressed;
ECIES_CONFIG.symmetricAlgorithm = ecies.symmetricCipher;
ECIES_CONFIG.symmetricNonceLength = ecies.nonceBytes;
// eciesjs takes the uncompressed key as hex with its 04 prefix (a 64-byte array is refused)
const ciphertext = encrypt("04" + ecies.keeperPublicKey.slice(2), plaintext);
if (ciphertext.length !== ecies.ciphertextBytes) fail(`ciphertext is ${ciphertext.length} bytes, the deployment says ${ecies.ciphertextBytes}`);

// ----- open: approve, request, wait for the keeper
const balance = await collateral.balanceOf(trader);
if (balance < amountIn) fail(`${trader} holds ${formatUnits(balance, decimals)} ${symbol}, needs ${args.amount}`);
console.log(`trader ${trader}: ${formatUnits(balance, decimals)} ${symbol} on chain ${chainId}`);
await send("approve", collateral.approve(await trading.getAddress(), amountIn, { gasLimit: GAS_LIMIT }));
const opened = await send("requestOpen", trading.requestOpen(commitment, ciphertext, amountIn, { gasLimit: GAS_LIMIT }));
const requestId = eventOf(opened, "OpenRequested").args.requestId;
console.log(`requestOpen ${requestId}: ${args.amount} ${symbol} on ${args.pair} ${args.side} ${args.leverage}x (block ${opened.blockNumber})`);

const open = await waitFor(`the execution of open request ${requestId}`, opened.blockNumber, {
  PositionOpened: trading.filters.PositionOpened(null, requestId),
  OpenRejected: trading.filters.OpenRejected(requestId),
});
if (open.label === "OpenRejected") {
  const { reason, refundTokens } = open.event.args;
  fail(`open request ${requestId} rejected: ${name("RejectReason", reason)} (refund ${formatUnits(refundTokens, decimals)} ${symbol})`);
}
const { positionId, position, charges } = open.event.args;
const entryPrice = formatUnits(position.entryPrice, 18);
console.log(`PositionOpened ${positionId}: entry ${entryPrice}, notional ${formatUnits(position.notionalUsd, 18)} USD, ` +
  `open fee ${formatUnits(charges.openFeeUsd, 18)} USD, execution fee ${formatUnits(charges.executionFeeTokens, decimals)} ${symbol}`);

// ----- close
const closing = await send("requestClose", trading.requestClose(positionId, { gasLimit: GAS_LIMIT }));
const closeRequestId = eventOf(closing, "CloseRequested").args.requestId;
console.log(`requestClose ${closeRequestId} for position ${positionId}`);
const close = await waitFor(`the execution of close request ${closeRequestId}`, closing.blockNumber, {
  PositionClosed: trading.filters.PositionClosed(positionId),
  CloseRejected: trading.filters.CloseRejected(closeRequestId),
});
if (close.label === "CloseRejected") fail(`close request ${closeRequestId} rejected: ${name("RejectReason", close.event.args.reason)}`);
const { settlement } = close.event.args;
const payout = formatUnits(settlement.payoutTokens, decimals);
console.log(`PositionClosed ${positionId}: ${name("CloseReason", settlement.reason)} at ${formatUnits(settlement.exitPrice, 18)}, ` +
  `pnl ${formatUnits(settlement.pnlUsd, 18)} USD, close fee ${formatUnits(settlement.closeFeeUsd, 18)} USD, payout ${payout} ${symbol}`);

console.log(JSON.stringify({
  requestId: Number(requestId),
  positionId: Number(positionId),
  closeRequestId: Number(closeRequestId),
  trader,
  entryPrice,
  exitPrice: formatUnits(settlement.exitPrice, 18),
  payout,
  closeReason: name("CloseReason", settlement.reason),
  amountInTokens: amountIn.toString(),
  payoutTokens: settlement.payoutTokens.toString(),
}));
process.exit(0); // the provider's polling would keep node alive
