"""alpsim's one-click trading page: a small HTTP server (`server.py`) for the static bundle
built from ui/ (in `static/`) and read-only JSON (deployment, pairs, quotes, liquidation prices)."""
