#!/usr/bin/env bash
# `make browser` (run by `make test`): makes sure the browser tests (tests/test_ui.py) have a
# Chromium. They launch Playwright's own build when it is there, else Debian's /usr/bin/chromium.
# With neither there, this installs one: Playwright's download first (`playwright install
# chromium`, bounded by a timeout), and when that is unreachable, Debian's `chromium` through
# apt-get (with sudo when not root). It prints one line: what it found or installed, or why it
# could not; the installers' output goes to build/browser-install.log. It never fails the build:
# without a browser the browser tests fail, and say so, and the rest of the suite still runs.
#
#   usage: scripts/ensure_browser.sh [path to the venv's python]   (default .venv/bin/python)
#   ALPSIM_PLAYWRIGHT_TIMEOUT: seconds allowed to Playwright's download (default 120)
set -uo pipefail
cd "$(dirname "$0")/.."

PY=${1:-.venv/bin/python}
PW_TIMEOUT=${ALPSIM_PLAYWRIGHT_TIMEOUT:-120}
SYSTEM_CHROMIUM=/usr/bin/chromium
LOG=build/browser-install.log

# where the installed playwright package looks for its Chromium (the tests' first choice)
playwright_chromium() {
    "$PY" -c 'from playwright.sync_api import sync_playwright
with sync_playwright() as p:
    print(p.chromium.executable_path)' 2>/dev/null
}

pw=$(playwright_chromium)
if [ -n "$pw" ] && [ -x "$pw" ]; then
    echo "browser: found Playwright's Chromium ($pw)"
    exit 0
fi
if [ -x "$SYSTEM_CHROMIUM" ]; then
    echo "browser: found $SYSTEM_CHROMIUM"
    exit 0
fi

mkdir -p build
: >"$LOG"

# 1. Playwright's own download, as Playwright's users do; bounded, so a hanging network does not
# stall the suite (-k: KILL if TERM is not enough)
echo "== $PY -m playwright install chromium (timeout ${PW_TIMEOUT} s)" >>"$LOG"
timeout -k 10 "$PW_TIMEOUT" "$PY" -m playwright install chromium >>"$LOG" 2>&1
rc=$?
pw=$(playwright_chromium)
if [ "$rc" -eq 0 ] && [ -n "$pw" ] && [ -x "$pw" ]; then
    # Playwright's build runs on the system's libraries (NSS, ATK, GBM, ...): a bare machine may
    # lack some; `playwright install-deps` installs them with apt-get (and sudo when not root)
    if ldd "$pw" 2>/dev/null | grep -q "not found"; then
        echo "== $PY -m playwright install-deps chromium" >>"$LOG"
        if "$PY" -m playwright install-deps chromium >>"$LOG" 2>&1; then
            echo "browser: Playwright's Chromium installed, with its system libraries ($pw)"
        else
            echo "browser: Playwright's Chromium installed, but its system libraries could not be (see $LOG): the browser tests will fail"
        fi
    else
        echo "browser: Playwright's Chromium installed ($pw)"
    fi
    exit 0
fi
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    why="Playwright's download timed out after ${PW_TIMEOUT} s"
elif grep -q -i -E "download failure|ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|getaddrinfo|socket hang up" "$LOG"; then
    why="Playwright's download unreachable"
else
    why="Playwright's download failed (exit $rc)"
fi

# 2. Debian's chromium
if ! command -v apt-get >/dev/null 2>&1; then
    echo "browser: none ($why, and no apt-get for Debian's chromium; see $LOG): the browser tests will fail"
    exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
        echo "browser: none ($why, and not root, without sudo, for apt-get install chromium): the browser tests will fail"
        exit 0
    fi
    sudo=sudo
fi
# `env` sets DEBIAN_FRONTEND after sudo, which would drop it from the environment (env_reset)
{
    echo "== apt-get update -qq"
    $sudo apt-get update -qq &&
        echo "== apt-get install -y -qq chromium" &&
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
} >>"$LOG" 2>&1
if [ -x "$SYSTEM_CHROMIUM" ]; then
    echo "browser: Debian chromium installed (${why})"
else
    echo "browser: none ($why, and apt-get install chromium failed; see $LOG): the browser tests will fail"
fi
exit 0
