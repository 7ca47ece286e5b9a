#!/usr/bin/env bash
# benches/wan.sh: veil over emulated wide-area links, beside the bare quinn forwarder.
#
# Every client (sender, receiver) reaches the relay through veil-netem (crates/veil-netem),
# its own link per client: a bottleneck of RATE with a FIFO queue of one bandwidth-delay
# product and tail drop, RTT/2 one-way delay each way, random LOSS, JITTER, a 1500-byte
# MTU. Release build; every received file is compared with cmp (a truncated file is a
# failure, not a result).
#
#   throughput rows  sender and receiver start together (`veil send --code` / `veil
#                    receive`, or quic-forward send/recv); time = both started -> both
#                    exited; "% of link" = size*8 / time / RATE.
#   1 KiB code       the same, counted in round trips: time / RTT.
#   1 KiB link       `veil send --link` first, then only `veil receive TICKET` is timed.
#
# A run that takes longer than LIMIT seconds (default 240; Cubic at 1 % loss crawls) is
# stopped and reported as "> LIMIT s".
#
# Usage: benches/wan.sh [--quick] [--no-build] [--runs N] [--only veil|forwarder] [--limit S]
#                       [--links REGEX]   (only the links whose name matches, e.g. '^1k')
#   --quick: smaller sizes (a quick look, not the goal table)
# Environment: CARGO_TARGET_DIR, TMPDIR (relay data and files: about 3x the largest size).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release
BUILD=1 QUICK=0 RUNS=1 ONLY="" LIMIT=240 LINKS_RE=""
while (($#)); do
    case $1 in
        --quick) QUICK=1; shift ;;
        --no-build) BUILD=0; shift ;;
        --runs) RUNS=${2:?}; shift 2 ;;
        --only) ONLY=${2:?}; shift 2 ;;
        --limit) LIMIT=${2:?}; shift 2 ;;
        --links) LINKS_RE=${2:?}; shift 2 ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "wan.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
log() { printf '[wan.sh] %s\n' "$*" >&2; }

if ((BUILD)); then
    (cd "$ROOT" && cargo build --release -j2 -p veil-cli -p veil-relay -p veil-netem -p veil-bench-forwarder)
fi
for b in veil veil-relay veil-netem quic-forward; do
    [[ -x $BIN/$b ]] || { log "missing $BIN/$b (drop --no-build)"; exit 1; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/veil-wan.XXXXXX")
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# The links: name | rate | rtt | loss | jitter | size (MiB, or 1k)
if ((QUICK)); then
    LINKS=(
        "100mbit-40ms|100mbit|40ms|0|0ms|32"
        "500mbit-150ms|500mbit|150ms|0|0ms|128"
        "100mbit-100ms-1%|100mbit|100ms|0.01|0ms|16"
        "20mbit-300ms-2%-j20|20mbit|300ms|0.02|20ms|1"
        "1k-code-100ms|100mbit|100ms|0|0ms|1k"
        "1k-link-100ms|100mbit|100ms|0|0ms|1k-link"
    )
else
    LINKS=(
        "100mbit-40ms|100mbit|40ms|0|0ms|128"
        "500mbit-150ms|500mbit|150ms|0|0ms|512"
        "100mbit-100ms-1%|100mbit|100ms|0.01|0ms|64"
        "20mbit-300ms-2%-j20|20mbit|300ms|0.02|20ms|1"
        "1k-code-100ms|100mbit|100ms|0|0ms|1k"
        "1k-link-100ms|100mbit|100ms|0|0ms|1k-link"
    )
fi

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
rate_bps() { awk -v r="$1" 'BEGIN { n = r + 0; if (r ~ /gbit/) n *= 1e9; else if (r ~ /mbit/) n *= 1e6; else if (r ~ /kbit/) n *= 1e3; print n }'; }
rtt_s() { awk -v r="$1" 'BEGIN { print (r + 0) / 1000 }'; }

# start_bg NAME CMD...: background process, its first stdout line in $WORK/NAME.first
start_bg() {
    local name=$1
    shift
    "$@" </dev/null >"$WORK/$name.out" 2>"$WORK/$name.err" &
    PIDS+=("$!")
    echo "$!"
}
first_line() { # FILE PREFIX -> the rest of the first line starting with PREFIX
    local i
    for ((i = 0; i < 500; i++)); do
        if grep -q "^$2" "$1" 2>/dev/null; then grep -m1 "^$2" "$1" | cut -c$((${#2} + 1))-; return 0; fi
        sleep 0.02
    done
    return 1
}
netem() { # UPSTREAM RATE RTT LOSS JITTER -> pid; address in $WORK/netem.addr
    local pid
    pid=$(start_bg netem "$BIN/veil-netem" --upstream "$1" --rate "$2" --rtt "$3" --loss "$4" --jitter "$5" --mtu 1500)
    first_line "$WORK/netem.out" "veil-netem listening on " >"$WORK/netem.addr"
    echo "$pid"
}
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

make_file() { # SIZE -> path
    local f="$WORK/in-$1.bin"
    [[ -f $f ]] || case $1 in
        1k | 1k-link) head -c 1024 /dev/urandom >"$f" ;;
        *) head -c $(($1 << 20)) /dev/urandom >"$f" ;;
    esac
    echo "$f"
}

# run_veil NAME RATE RTT LOSS JITTER SIZE -> seconds (empty on failure)
run_veil() {
    local rate=$2 rtt=$3 loss=$4 jitter=$5 size=$6 d="$WORK/veil" relay_pid em_pid addr fp file t0 t1 s r
    rm -rf "$d"; mkdir -p "$d"
    file=$(make_file "$size")
    relay_pid=$(start_bg relay "$BIN/veil-relay" --listen 127.0.0.1:0 --http 127.0.0.1:0 --data "$d/relay")
    addr=$(first_line "$WORK/relay.out" "clients: VEIL_RELAY=") || { log "relay did not start"; echo x; return 0; }
    fp=${addr#*#}
    em_pid=$(netem "${addr%%#*}" "$rate" "$rtt" "$loss" "$jitter")
    export VEIL_RELAY="$(cat "$WORK/netem.addr")#$fp" VEIL_WAIT_SECS=120
    if [[ $size == 1k-link ]]; then
        VEIL_HOME="$d/hs" "$BIN/veil" send "$file" --link --json </dev/null >"$d/send.out" 2>"$d/send.err"
        local ticket
        ticket=$(head -1 "$d/send.out" | sed -e 's/.*"ticket":"\([^"]*\)".*/\1/')
        t0=$(now)
        VEIL_HOME="$d/hr" timeout "$LIMIT" "$BIN/veil" receive "$ticket" --yes --out "$d/out" </dev/null >"$d/recv.out" 2>"$d/recv.err" || r=$?
        t1=$(now)
    else
        t0=$(now)
        VEIL_HOME="$d/hs" timeout "$LIMIT" "$BIN/veil" send "$file" --code 17-wan-bench --json </dev/null >"$d/send.out" 2>"$d/send.err" &
        s=$!
        VEIL_HOME="$d/hr" timeout "$LIMIT" "$BIN/veil" receive 17-wan-bench --yes --out "$d/out" </dev/null >"$d/recv.out" 2>"$d/recv.err" || r=$?
        wait "$s" || r=${r:-send}
        t1=$(now)
    fi
    stop "$em_pid"; stop "$relay_pid"
    unset VEIL_RELAY
    if [[ ${r:-} == 124 ]]; then echo t; return 0; fi
    if [[ -n ${r:-} ]] || ! cmp -s "$file" "$d/out/$(basename "$file")"; then
        log "veil failed on $1 (exit ${r:-0}); stderr: $(tail -2 "$d/recv.err" "$d/send.err" | tr '\n' ' ')"
        echo x
        return 0
    fi
    secs "$t0" "$t1"
}

# run_fwd NAME RATE RTT LOSS JITTER SIZE [CC] -> seconds
run_fwd() {
    local rate=$2 rtt=$3 loss=$4 jitter=$5 size=$6 cc=${7:-cubic} d="$WORK/fwd" relay_pid em_pid addr file t0 t1 s r
    rm -rf "$d"; mkdir -p "$d"
    file=$(make_file "$size")
    relay_pid=$(QUIC_FORWARD_CC=$cc start_bg fwd "$BIN/quic-forward" relay --listen 127.0.0.1:0)
    addr=$(first_line "$WORK/fwd.out" "quic-forward relay listening on ") || { log "forwarder did not start"; echo x; return 0; }
    em_pid=$(netem "$addr" "$rate" "$rtt" "$loss" "$jitter")
    local via
    via=$(cat "$WORK/netem.addr")
    t0=$(now)
    QUIC_FORWARD_CC=$cc timeout "$LIMIT" "$BIN/quic-forward" send --relay "$via" --file "$file" </dev/null >"$d/send.out" 2>"$d/send.err" &
    s=$!
    QUIC_FORWARD_CC=$cc timeout "$LIMIT" "$BIN/quic-forward" recv --relay "$via" --out "$d/out.bin" </dev/null >"$d/recv.out" 2>"$d/recv.err" || r=$?
    wait "$s" || r=${r:-send}
    t1=$(now)
    stop "$em_pid"; stop "$relay_pid"
    if [[ ${r:-} == 124 ]]; then echo t; return 0; fi
    if [[ -n ${r:-} ]] || ! cmp -s "$file" "$d/out.bin"; then
        log "forwarder ($cc) failed on $1 (exit ${r:-0}): $(tail -1 "$d/recv.err" "$d/send.err" | tr '\n' ' ')"
        echo x
        return 0
    fi
    secs "$t0" "$t1"
}

describe() { # SECONDS SIZE RATE RTT -> cell text
    local t=$1 size=$2 rate=$3 rtt=$4
    [[ $t == x ]] && { echo "FAILED"; return; }
    [[ $t == t ]] && { echo "> $LIMIT s (stopped)"; return; }
    case $size in
        1k | 1k-link) awk -v t="$t" -v r="$(rtt_s "$rtt")" 'BEGIN { printf "%.2f s = %.1f RTTs", t, t / r }' ;;
        *) awk -v t="$t" -v b="$((size << 20))" -v r="$(rate_bps "$rate")" \
            'BEGIN { printf "%.1f s, %.0f %% of the link", t, 100 * b * 8 / t / r }' ;;
    esac
}

# The median of the numbers among the words (failed runs are "x", timed out "t"): "x"
# if none finished and one failed, "t" if all that did not fail timed out.
median() {
    local w
    w=$(tr ' ' '\n' | grep -v '^$')
    if grep -qE '^[0-9.]+$' <<<"$w"; then
        grep -E '^[0-9.]+$' <<<"$w" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'
    elif grep -q '^t$' <<<"$w"; then echo t; else echo x; fi
}

printf '| link | size | veil | forwarder (Cubic) | forwarder (BBR) |\n|---|---|---|---|---|\n'
for spec in "${LINKS[@]}"; do
    IFS='|' read -r name rate rtt loss jitter size <<<"$spec"
    [[ -z $LINKS_RE || $name =~ $LINKS_RE ]] || continue
    v="" fc="" fb=""
    for ((k = 0; k < RUNS; k++)); do
        [[ $ONLY == forwarder ]] || v+=" $(run_veil "$name" "$rate" "$rtt" "$loss" "$jitter" "$size")"
        if [[ $ONLY != veil && $size != 1k* ]]; then
            fc+=" $(run_fwd "$name" "$rate" "$rtt" "$loss" "$jitter" "$size" cubic)"
            fb+=" $(run_fwd "$name" "$rate" "$rtt" "$loss" "$jitter" "$size" bbr)"
        fi
    done
    cell() { [[ -z ${1// /} ]] && { echo "-"; return; }; describe "$(echo "$1" | median)" "$size" "$rate" "$rtt"; }
    [[ $size == 1k* ]] && label=$size || label="$size MiB"
    printf '| %s | %s | %s | %s | %s |\n' "$name" "$label" "$(cell "$v")" "$(cell "$fc")" "$(cell "$fb")"
done
