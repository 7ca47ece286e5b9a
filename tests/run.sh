#!/usr/bin/env bash
# The one test command (README "Run the tests"): sets up what the tests need on a fresh
# machine, then builds the binaries the end-to-end tests start and runs every test.
#
#   tests/run.sh                 everything
#   tests/run.sh -p veil-relay   extra arguments go to `cargo test`
#
# What it sets up, only when missing:
#   ffmpeg/ffprobe  Debian package (stream tests), with sudo when not root;
#   xvfb, tmux      Debian packages (screen streaming under a virtual display, the CLI
#                   in a real terminal: tests/tests/ux.rs, terminal.rs);
#   node, chromium  Debian packages (browser tests), likewise, and `npm ci` in relay/web;
#   Garage 2.5.0    the S3 server of the storage tests, built once into
#                   ${VEIL_CI_CACHE:-~/.cache/veil-ci} by .ci/install-garage (15-30 min
#                   on two cores the first time); VEIL_GARAGE_BIN skips it.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v ffmpeg >/dev/null || ! command -v ffprobe >/dev/null || ! command -v Xvfb >/dev/null \
    || ! command -v tmux >/dev/null; then
    echo "tests/run.sh: installing ffmpeg, xvfb, tmux (stream and terminal tests)" >&2
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends ffmpeg xvfb tmux >/dev/null
fi

# The web page's tests (tests/tests/browser.rs): Node and npm, headless Chromium, and the
# page's npm packages (relay/web/package-lock.json; esbuild, libsodium, playwright-core).
missing=()
command -v node >/dev/null && command -v npm >/dev/null || missing+=(nodejs npm)
[ -x "${VEIL_CHROMIUM:-/usr/bin/chromium}" ] || missing+=(chromium chromium-driver)
if [ ${#missing[@]} -gt 0 ]; then
    echo "tests/run.sh: installing ${missing[*]} (browser tests)" >&2
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [ ! -f relay/web/node_modules/.package-lock.json ] \
    || [ relay/web/package-lock.json -nt relay/web/node_modules/.package-lock.json ]; then
    echo "tests/run.sh: npm ci in relay/web (browser tests)" >&2
    (cd relay/web && npm ci --no-audit --no-fund --loglevel=error)
fi

if [ -z "${VEIL_GARAGE_BIN:-}" ]; then
    VEIL_GARAGE_BIN="$(.ci/install-garage)"
fi
export VEIL_GARAGE_BIN
# Never let the AWS SDK look for credentials off this machine.
export AWS_EC2_METADATA_DISABLED=true

# The relay's test-only fault injection is a cargo feature: the same features for the
# build and the tests, so the binaries the end-to-end tests start have it.
cargo build --workspace --bins --features veil-relay/fault-injection
cargo test --workspace --features veil-relay/fault-injection "$@"
