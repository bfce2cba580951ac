"""The trading page's HTTP server: the static files built from ui/ (never a CDN) and read-only
JSON. The browser signs and sends every transaction itself (ethers, straight to the node); no
order ever reaches this server.

Routes (GET only):
  /, /app.js, /app.css, ...   the bundle in ./static
  /api/config                 RPC URL, chain, contracts (addresses + ABIs), pairs with their
                              leverage caps, notional tiers, enums, the ECIES parameters and the
                              keeper's public key
  /api/quote?pair=&side=&amount=&leverage=&price=   `alpsim quote`'s numbers (src/alpsim/quote.py)
  /api/liquidation?id=N       an open position's liquidation price, as `alpsim` computes it
  /api/lp-quote?action=deposit|withdraw&asset=SYM&amount=X
                              the mint or burn fee (bp, USD) and the asset's weight before and
                              after (src/alpsim/ui/lp.py: `alpsim quote-lp`'s quote, the
                              reference model's, at the chain's prices, brought fresh first);
                              `amount` is in the asset's units for a deposit, in ALP for a
                              withdrawal

Anything else, and any malformed request, gets a 4xx JSON {"error": ...}; no request stops the
server."""

from __future__ import annotations

import json
import mimetypes
import threading
from decimal import Decimal, localcontext
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ..deployment import Deployment
from ..errors import AlpsimError, ConfigError
from ..model.pair_registry import DEFAULT_TIERS, default_pairs
from ..profiles import get_profile
from ..quote import dumps_exact, quote_order
from ..units import WAD

STATIC_DIR = Path(__file__).parent / "static"
MAX_QUERY_CHARS = 2_000
"""A longer query string is refused (414)."""
MAX_PARAM_CHARS = 80
REQUEST_TIMEOUT_S = 10
"""A client that sends nothing for this long is dropped (no worker hangs on it)."""


class BadRequest(Exception):
    """A request this server refuses: `status` and a message for the JSON body."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _param(query: dict[str, list[str]], name: str) -> str:
    values = query.get(name)
    if not values or not values[0].strip():
        raise BadRequest(400, f"missing query parameter {name!r}")
    if len(values) > 1:
        raise BadRequest(400, f"query parameter {name!r} given {len(values)} times")
    value = values[0].strip()
    if len(value) > MAX_PARAM_CHARS:
        raise BadRequest(400, f"query parameter {name!r} is longer than {MAX_PARAM_CHARS} characters")
    return value


def _decimal(query: dict[str, list[str]], name: str) -> Decimal:
    text = _param(query, name)
    try:
        value = Decimal(text)
    except ArithmeticError:
        raise BadRequest(400, f"{name} must be a number, got {text!r}") from None
    if not value.is_finite() or value <= 0 or value > Decimal(10) ** 15:
        raise BadRequest(400, f"{name} must be a positive number up to 1e15, got {text!r}")
    return value


def _amount_units(query: dict[str, list[str]], name: str, decimals: int) -> int:
    """A positive amount in whole tokens, exact to `decimals` places -> token units."""
    value = _decimal(query, name)
    with localcontext() as ctx:
        ctx.prec = 80  # exact: 1e15 tokens of 18 decimals are 34 digits
        units = value.scaleb(decimals)
    if units != units.to_integral_value():
        raise BadRequest(400, f"{name} has more than {decimals} decimal places, got {_param(query, name)!r}")
    return int(units)


def _int(query: dict[str, list[str]], name: str, low: int, high: int) -> int:
    text = _param(query, name)
    if not text.isdigit() or not low <= int(text) <= high:
        raise BadRequest(400, f"{name} must be an integer from {low} to {high}, got {text!r}")
    return int(text)


class UiApp:
    """What the routes answer: the deployment (read once) and, for liquidation prices, an
    alpsim client of the node (made on first use)."""

    def __init__(self, rpc_url: str, deployment_file: str | Path):
        self.rpc_url = rpc_url
        self.deployment_file = Path(deployment_file)
        try:
            self.deployment = Deployment.read(self.deployment_file)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read deployments file {deployment_file}: {exc}") from None
        if self.deployment.ecies is None or self.deployment.enums is None:
            raise ConfigError(f"{deployment_file} has no ecies / enums block: redeploy with a current alpsim")
        self.profile = get_profile(self.deployment.chain)
        self._sim = None
        self._sim_lock = threading.Lock()
        self._lp_lock = threading.Lock()
        """One LP quote at a time (it may send the keeper's price transactions)."""

    def basket(self) -> list[dict[str, Any]]:
        """The basket as the page lists it (camelCase, as in the deployments file); a file from
        before the basket: the payout stablecoin alone."""
        d = self.deployment
        if d.basket:
            return [e.model_dump(by_alias=True) for e in d.basket]
        c = self.profile.collateral
        return [{"symbol": c.symbol, "address": d.contracts["collateral"].address, "decimals": c.decimals,
                 "priceId": 65_535, "targetBps": 10_000, "role": "collateral", "feedRole": ""}]

    def config(self) -> dict[str, Any]:
        d = self.deployment
        by_name = {p.name: p for p in default_pairs()}
        pairs = []
        for pair_id, name in enumerate(d.pairs):
            p = by_name.get(name)
            pairs.append({"id": pair_id, "name": name, "maxLeverage": p.max_leverage if p else None,
                          "tiered": p.tiered if p else False})
        return {
            "rpcUrl": self.rpc_url, "chain": d.chain, "chainId": d.chain_id, "block": d.block,
            "collateralDecimals": self.profile.collateral.decimals,
            "collateralSymbol": self.profile.collateral.symbol,
            "executionFeeUsd": str(self.profile.execution_fee_usd),
            "contracts": {role: {"address": e.address, "abi": e.abi} for role, e in d.contracts.items()},
            "pairs": pairs,
            "tiers": [{"maxNotionalUsd": str(n // WAD), "leverageCap": cap} for n, cap in DEFAULT_TIERS],
            "enums": d.enums, "ecies": d.ecies.model_dump(by_alias=True),
            "keeperPublicKey": d.ecies.keeper_public_key,
            "requestWindowBlocks": 10,
            "basket": self.basket(),
        }

    def quote(self, query: dict[str, list[str]]) -> tuple[int, str]:
        pair = _param(query, "pair")
        if pair not in self.deployment.pairs:
            raise BadRequest(400, f"unknown pair {pair!r}; listed: {', '.join(self.deployment.pairs)}")
        side = _param(query, "side")
        if side not in ("long", "short"):
            raise BadRequest(400, f"side must be long or short, got {side!r}")
        amount = _decimal(query, "amount")
        leverage = _int(query, "leverage", 1, 100_000)
        price = _decimal(query, "price")
        try:
            result = quote_order(self.profile, pair, side, amount, leverage, price)
        except AlpsimError as exc:  # the exchange would refuse the order: say why
            return 422, json.dumps({"error": str(exc), "refused": True})
        return 200, dumps_exact(result)

    def sim(self):  # noqa: ANN201 - alpsim.client.Alpsim, imported lazily (web3 is slow to import)
        with self._sim_lock:
            if self._sim is None:
                from ..service import connect

                self._sim = connect(self.rpc_url, self.deployment_file)
            return self._sim

    def lp_quote(self, query: dict[str, list[str]]) -> tuple[int, str]:
        action = _param(query, "action")
        if action not in ("deposit", "withdraw"):
            raise BadRequest(400, f"action must be deposit or withdraw, got {action!r}")
        symbol = _param(query, "asset")
        entry = next((e for e in self.deployment.basket if e.symbol == symbol), None)
        if entry is None:
            listed = ", ".join(e.symbol for e in self.deployment.basket) or "none (a deployment from before the basket)"
            raise BadRequest(400, f"unknown basket asset {symbol!r}; listed: {listed}")
        is_deposit = action == "deposit"
        amount = _amount_units(query, "amount", entry.decimals if is_deposit else 18)
        if amount == 0:
            raise BadRequest(400, "amount must be positive")
        from .lp import fresh_prices, lp_quote

        sim = self.sim()
        if not self._lp_lock.acquire(timeout=REQUEST_TIMEOUT_S):
            raise BadRequest(503, "another LP quote is under way: try again")
        try:
            with self._sim_lock:
                try:
                    fresh_prices(sim, entry)
                    result = lp_quote(sim, entry, is_deposit, amount)
                except AlpsimError as exc:  # a guarded price the pool would refuse too (or the keeper's send)
                    return 409, json.dumps({"error": str(exc)})
        finally:
            self._lp_lock.release()
        return 200, json.dumps(result)

    def liquidation(self, query: dict[str, list[str]]) -> tuple[int, str]:
        position_id = _int(query, "id", 1, 2**64)
        sim = self.sim()
        with self._sim_lock:
            info = sim.position(position_id)
        if info is None:
            raise BadRequest(404, f"no open position {position_id}")
        return 200, json.dumps({"id": position_id, "liquidationPrice": format(info.liquidation_price, "f"),
                                "takeProfit": format(info.take_profit, "f"),
                                "entryPrice": format(info.entry_price, "f")})


class Handler(BaseHTTPRequestHandler):
    """GET only; JSON errors; static files only from STATIC_DIR."""

    app: UiApp
    server_version = "alpsim-ui"
    timeout = REQUEST_TIMEOUT_S
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet: the page polls
        pass

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own errors (bad request line, too long, unsupported method) as JSON."""
        self.request_version = "HTTP/1.0"  # a status line and headers even for garbage ("HTTP/0.9")
        try:
            self._json(code, json.dumps({"error": message or HTTPStatus(code).phrase}))
        except OSError:
            pass

    def _json(self, status: int, body: str) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _refuse_method(self) -> None:
        self._json(405, json.dumps({"error": f"method {self.command} not allowed: this server is read-only (GET)"}))

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _refuse_method

    def do_GET(self) -> None:  # noqa: N802
        try:
            self._route()
        except BadRequest as exc:
            self._json(exc.status, json.dumps({"error": str(exc)}))
        except OSError:
            pass  # the client went away
        except Exception as exc:  # noqa: BLE001 - never let one request stop the server
            self._json(500, json.dumps({"error": f"{type(exc).__name__}: {exc}"}))

    def _route(self) -> None:
        if int(self.headers.get("Content-Length") or 0) > 0:
            raise BadRequest(413, "a GET request carries no body")
        url = urlsplit(self.path)
        if len(url.query) > MAX_QUERY_CHARS:
            raise BadRequest(414, f"query longer than {MAX_QUERY_CHARS} characters")
        try:
            query = parse_qs(url.query, keep_blank_values=True, strict_parsing=False, max_num_fields=20)
        except ValueError as exc:
            raise BadRequest(400, f"bad query string: {exc}") from None
        path = url.path
        if path == "/api/config":
            return self._json(200, json.dumps(self.app.config()))
        if path == "/api/quote":
            return self._json(*self.app.quote(query))
        if path == "/api/lp-quote":
            return self._json(*self.app.lp_quote(query))
        if path == "/api/liquidation":
            return self._json(*self.app.liquidation(query))
        if path.startswith("/api/"):
            raise BadRequest(404, f"no API route {path}")
        self._static("index.html" if path == "/" else path.lstrip("/"))

    def _static(self, name: str) -> None:
        files = {p.name: p for p in STATIC_DIR.iterdir() if p.is_file()} if STATIC_DIR.is_dir() else {}
        if "index.html" not in files:
            raise BadRequest(503, "the page is not built: run `make setup` (npm ci --prefix ui; npm run build --prefix ui)")
        target = files.get(name)  # a flat directory: no path ever leaves it
        if target is None:
            raise BadRequest(404, f"no such file {name[:80]!r}")
        data = target.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", mimetypes.guess_type(target.name)[0] or "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class UiServer:
    """The page's server on 127.0.0.1:`port` (0: a free one), in a daemon thread."""

    def __init__(self, rpc_url: str, deployment_file: str | Path, port: int = 0):
        self.app = UiApp(rpc_url, deployment_file)
        handler = type("BoundHandler", (Handler,), {"app": self.app})
        try:
            self.httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        except OSError as exc:
            raise ConfigError(f"cannot serve the trading page on 127.0.0.1:{port}: {exc.strerror or exc}") from None
        self.httpd.daemon_threads = True
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def start(self) -> "UiServer":
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="alpsim-ui", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
