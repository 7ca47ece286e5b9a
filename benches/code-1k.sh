#!/usr/bin/env bash
# benches/code-1k.sh: wall time of a 1 KiB code-mode transfer on loopback, with the real
# CLI and relay (process start, QUIC handshakes, mailbox, SPAKE2 + the post-quantum step,
# upload, download, fsync).
#
# Starts one veil-relay on 127.0.0.1 (filesystem store in a temp folder), then N times:
# `veil send --code <n>-guitar-orbit FILE` in the background, 300 ms later
# `veil receive <code> --yes --out DIR`, and records the receiver's wall time (start to
# exit: it includes the whole key exchange and the download) and the sender's (start to
# exit, minus the 300 ms head start it waits for the receiver). Prints median / min / max.
#
# Usage: benches/code-1k.sh [BIN_DIR] [N]     (BIN_DIR: where veil and veil-relay are;
#        default $CARGO_TARGET_DIR/debug or target/debug; N: default 15)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${1:-${CARGO_TARGET_DIR:-$ROOT/target}/debug}
N=${2:-15}
T=$(mktemp -d)
trap 'kill "$RELAY" 2>/dev/null || true; rm -rf "$T"' EXIT
head -c 1024 /dev/urandom >"$T/one-kib.bin"
"$BIN/veil-relay" --listen 127.0.0.1:0 --http 127.0.0.1:0 --data "$T/relay" >"$T/relay.out" 2>"$T/relay.err" &
RELAY=$!
for _ in $(seq 100); do
    grep -q '^clients: VEIL_RELAY=' "$T/relay.out" 2>/dev/null && break
    sleep 0.05
done
export VEIL_RELAY=$(sed -n 's/^clients: VEIL_RELAY=//p' "$T/relay.out")
now() { date +%s%N; }
recv_ms=()
send_ms=()
for i in $(seq "$N"); do
    code="$((200 + i))-guitar-orbit"
    s0=$(now)
    VEIL_HOME="$T/home-s" "$BIN/veil" send --code "$code" "$T/one-kib.bin" >/dev/null 2>"$T/send.err" &
    sender=$!
    sleep 0.3
    r0=$(now)
    VEIL_HOME="$T/home-r" "$BIN/veil" receive "$code" --yes --out "$T/out-$i" >/dev/null 2>"$T/recv.err"
    r1=$(now)
    wait "$sender"
    s1=$(now)
    cmp -s "$T/one-kib.bin" "$T/out-$i/one-kib.bin" || { echo "run $i: received file differs" >&2; exit 1; }
    recv_ms+=($(((r1 - r0) / 1000000)))
    send_ms+=($(((s1 - s0) / 1000000 - 300)))
done
stats() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {printf "median %d ms, min %d ms, max %d ms (n=%d)", a[int((NR+1)/2)], a[1], a[NR], NR}'; }
echo "receive (start to exit): $(stats "${recv_ms[@]}")"
echo "send (start to exit, less the 300 ms head start): $(stats "${send_ms[@]}")"
