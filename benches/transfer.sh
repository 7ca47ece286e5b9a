#!/usr/bin/env bash
# benches/transfer.sh: end-to-end transfer benchmark on loopback.
#
# For each size, in the same run:
#   veil       veil-relay + `veil send --code` + `veil receive` (encrypted, stored on the relay)
#   wormhole   magic-wormhole through a local mailbox server and transit relay
#              (--no-listen on both sides, so every byte goes through the transit relay)
#   forwarder  quic-forward (benches/transfer): the same two QUIC hops with no end-to-end
#              crypto and no storage: the practical ceiling for veil's design
#
# Reports wall time (both clients started together -> both exited), MB/s (10^6 bytes/s),
# CPU seconds (user + system) of sender, relay and receiver, peak RSS of each process,
# verifies every received file with cmp, and checks veil against its goals.
#
# Measurement: clients run under GNU time (/usr/bin/time -f '%e %U %S %M'; without it, the
# script polls /proc/<pid>/status VmHWM and uses bash `times`). Relays are long-running, so
# their CPU is the /proc/<pid>/stat utime+stime delta across the transfer (start-up
# excluded) and their peak RSS is VmHWM at the end. A fresh relay runs for every transfer.
# magic-wormhole's "relay" CPU is its transit relay plus its mailbox server.
#
# Usage: benches/transfer.sh [--sizes "1k 100m 1g"] [--skip-wormhole] [--s3] [--no-build]
#   --s3: also run veil with the relay on a local Garage 2.5.0 (.ci/install-garage)
#                            [--forwarder-udp-payload N]
#   --forwarder-udp-payload N  adds a row "forwarder-N": the forwarder with quinn's
#                              EndpointConfig::max_udp_payload_size = N (veil and the
#                              default forwarder keep quinn's 1472, which caps MTU discovery)
# Environment: VEIL_BENCH_CACHE (default ~/.cache/veil-bench: the magic-wormhole venv),
#              CARGO_TARGET_DIR, TMPDIR (test files, relay data: needs about 3x the
#              largest size free).
set -euo pipefail

SIZES="1k 100m 1g"
SKIP_WORMHOLE=0
BUILD=1
FWD_PAYLOAD=""
usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; }
while (($#)); do
    case $1 in
        --sizes) SIZES=${2:?--sizes needs a value}; shift 2 ;;
        --sizes=*) SIZES=${1#*=}; shift ;;
        --skip-wormhole) SKIP_WORMHOLE=1; shift ;;
        --s3) WITH_S3=1; shift ;;
        --no-build) BUILD=0; shift ;;
        --forwarder-udp-payload) FWD_PAYLOAD=${2:?--forwarder-udp-payload needs a value}; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "transfer.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

WITH_S3=${WITH_S3:-0}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${VEIL_BENCH_CACHE:-$HOME/.cache/veil-bench}
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release
WH_NOTE=""

log() { printf '[transfer.sh] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------------------------------
# Sizes

size_bytes() {
    local s=${1,,} n unit
    [[ $s =~ ^([0-9]+)([kmg]?)$ ]] || die "bad size $1 (use e.g. 1k, 100m, 1g)"
    n=${BASH_REMATCH[1]} unit=${BASH_REMATCH[2]}
    case $unit in
        k) echo $((n << 10)) ;; m) echo $((n << 20)) ;; g) echo $((n << 30)) ;; *) echo "$n" ;;
    esac
}
size_label() {
    local s=${1,,}
    case $s in *k) echo "${s%k} KiB" ;; *m) echo "${s%m} MiB" ;; *g) echo "${s%g} GiB" ;; *) echo "$s B" ;; esac
}
for s in $SIZES; do size_bytes "$s" >/dev/null; done

# ---------------------------------------------------------------------------------------
# Process bookkeeping: everything we start is recorded by PID and stopped on exit.

WORK=$(mktemp -d "${TMPDIR:-/tmp}/veil-bench.XXXXXX")
STARTED=()   # PIDs of the programs we started (and of their GNU time wrappers)
cleanup() {
    local pid
    local f
    for f in "$WORK"/*.pid; do [[ -s $f ]] && STARTED+=("$(<"$f")"); done
    for pid in "${STARTED[@]}"; do
        kill -0 "$pid" 2>/dev/null && kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${STARTED[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

exec {SLEEP_FD}<> <(:)   # `read -t` on this never returns data: a sleep without forking
nap() { read -r -t "$1" -u "$SLEEP_FD" _ || true; }
now() { echo "$EPOCHREALTIME"; }
CLK_TCK=$(getconf CLK_TCK)

GNU_TIME=""
if [[ -z ${VEIL_BENCH_NO_GNU_TIME:-} ]] && [[ -x /usr/bin/time ]] && /usr/bin/time -f '%e' -o /dev/null true 2>/dev/null; then
    GNU_TIME=/usr/bin/time
fi

# Fallback for GNU time: run "$@", write "wall user sys maxrss_kb" to OUT.
poll_measure() {
    local out=$1 pidf=$2 t0 t1 pid rc=0 hwm=0 k v _ state
    shift 2
    t0=$(now)
    "$@" &
    pid=$!
    echo "$pid" >"$pidf"
    while [[ -r /proc/$pid/status ]]; do
        state=""
        while read -r k v _; do
            case $k in
                State:) state=$v ;;
                VmHWM:) ((v > hwm)) && hwm=$v ;;
            esac
        done <"/proc/$pid/status" 2>/dev/null || true
        [[ $state == Z ]] && break
        nap 0.02
    done
    wait "$pid" || rc=$?
    t1=$(now)
    times >"$out.times"
    # Second line of `times`: user and system time of our children ("0m1.234s 0m0.567s").
    local cu cs
    read -r cu cs < <(sed -n 2p "$out.times")
    to_s() { local m=${1%%m*} s=${1#*m}; s=${s%s}; awk -v m="$m" -v s="$s" 'BEGIN{printf "%.2f", m*60+s}'; }
    echo "$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}') $(to_s "$cu") $(to_s "$cs") $hwm" >"$out"
    return "$rc"
}

# start_client NAME cmd...: start a measured client in the background (stdout/stderr in
# $WORK/NAME.out/.err, measurement in $WORK/NAME.time, its PID in $WORK/NAME.pid for
# the clean-up). Sets CLIENT_WAIT[NAME]. Returns at once, so both clients start together.
declare -A CLIENT_WAIT
start_client() {
    local name=$1 pidf="$WORK/$1.pid"
    shift
    rm -f "$pidf" "$WORK/$name.time"
    if [[ -n $GNU_TIME ]]; then
        # `sh -c 'echo $$ > pidfile; exec cmd'`: the program keeps the shell's PID, so we
        # know it, and GNU time measures the program itself.
        "$GNU_TIME" -f '%e %U %S %M' -o "$WORK/$name.time" \
            sh -c 'echo $$ >"$0"; exec "$@"' "$pidf" "$@" </dev/null >"$WORK/$name.out" 2>"$WORK/$name.err" &
    else
        poll_measure "$WORK/$name.time" "$pidf" "$@" </dev/null >"$WORK/$name.out" 2>"$WORK/$name.err" &
    fi
    CLIENT_WAIT[$name]=$!
    STARTED+=("$!")
}
# wait_client NAME: wait for it; returns its exit status.
wait_client() {
    local rc=0
    wait "${CLIENT_WAIT[$1]}" || rc=$?
    return "$rc"
}
# client_stats NAME -> "wall cpu rss_mib"
client_stats() {
    local line
    line=$(tail -n 1 "$WORK/$1.time")
    awk '{printf "%.2f %.2f %.1f\n", $1, $2 + $3, $4 / 1024}' <<<"$line"
}

# start_server NAME cmd...: start a long-running server (relay) in the background; its PID
# is SERVER_PID[NAME].
declare -A SERVER_PID
start_server() {
    local name=$1
    shift
    "$@" </dev/null >"$WORK/$name.out" 2>"$WORK/$name.err" &
    SERVER_PID[$name]=$!
    STARTED+=("$!")
}
# CPU ticks (user + system) of a running process.
cpu_ticks() {
    local stat
    stat=$(<"/proc/$1/stat")
    stat=${stat##*) }   # fields after the command name; utime and stime are fields 14, 15
    awk '{print $12 + $13}' <<<"$stat"
}
peak_rss_kb() { awk '/^VmHWM:/{print $2}' "/proc/$1/status"; }
# stop_server NAME: SIGINT (graceful), then SIGKILL after 5 s.
stop_server() {
    local pid=${SERVER_PID[$1]} i
    kill -INT "$pid" 2>/dev/null || true
    for ((i = 0; i < 500; i++)); do kill -0 "$pid" 2>/dev/null || break; nap 0.01; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
# wait_for_line FILE REGEX PID: print the first line of FILE matching REGEX (10 s timeout).
wait_for_line() {
    local file=$1 re=$2 pid=$3 i line
    for ((i = 0; i < 1000; i++)); do
        line=$(grep -m1 -E "$re" "$file" 2>/dev/null || true)
        [[ -n $line ]] && { echo "$line"; return 0; }
        kill -0 "$pid" 2>/dev/null || break
        nap 0.01
    done
    log "timed out waiting for /$re/ in $file"; cat "$file" "${file%.out}.err" >&2 2>/dev/null || true
    return 1
}
wait_for_port() {
    local port=$1 i
    for ((i = 0; i < 1500; i++)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        nap 0.02
    done
    return 1
}
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
dump_logs() {
    local f
    for f in "$@"; do
        [[ -s $WORK/$f.err ]] && { log "--- $f stderr:"; tail -n 20 "$WORK/$f.err" >&2; }
        [[ -s $WORK/$f.out ]] && { log "--- $f stdout:"; tail -n 5 "$WORK/$f.out" >&2; }
    done
    return 0
}

# ---------------------------------------------------------------------------------------
# Results: one line per run in $WORK/results:
# tool size_key bytes wall send_cpu relay_cpu recv_cpu send_rss relay_rss recv_rss

RESULTS="$WORK/results"
: >"$RESULTS"
record() {
    local tool=$1 key=$2 bytes=$3 wall=$4 s_cpu s_rss r_cpu r_rss v_cpu v_rss
    read -r _ s_cpu s_rss <<<"$5"
    read -r r_cpu r_rss <<<"$6"
    read -r _ v_cpu v_rss <<<"$7"
    echo "$tool $key $bytes $wall $s_cpu $r_cpu $v_cpu $s_rss $r_rss $v_rss" >>"$RESULTS"
    log "$(printf '%-9s %-7s wall %6.2f s  cpu %.2f + %.2f + %.2f s  rss %.0f / %.0f / %.0f MiB' \
        "$tool" "$(size_label "$key")" "$wall" "$s_cpu" "$r_cpu" "$v_cpu" "$s_rss" "$r_rss" "$v_rss")"
}
secs_between() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", b-a}'; }
ticks_to_s() { awk -v t="$1" -v h="$CLK_TCK" 'BEGIN{printf "%.2f", t/h}'; }

# ---------------------------------------------------------------------------------------
# One transfer per tool

# A Garage 2.5.0 single node on 127.0.0.1 for the relay-on-S3 rows (--s3).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
start_garage() {
    local gbin gd rpc s3 admin
    gbin=${VEIL_GARAGE_BIN:-$("$ROOT/.ci/install-garage")}
    gd="$WORK/garage"
    mkdir -p "$gd/meta" "$gd/data"
    rpc=$(free_port) s3=$(free_port) admin=$(free_port)
    cat >"$gd/garage.toml" <<TOML
metadata_dir = "$gd/meta"
data_dir = "$gd/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$rpc"
rpc_public_addr = "127.0.0.1:$rpc"
rpc_secret = "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$s3"
root_domain = ".s3.garage.localhost"
[admin]
api_bind_addr = "127.0.0.1:$admin"
TOML
    GARAGE_KEY="GK$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    GARAGE_SECRET="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    GARAGE_ENDPOINT="http://127.0.0.1:$s3"
    start_server garage env GARAGE_DEFAULT_ACCESS_KEY="$GARAGE_KEY" GARAGE_DEFAULT_SECRET_KEY="$GARAGE_SECRET" \
        GARAGE_DEFAULT_BUCKET=veil-bench "$gbin" -c "$gd/garage.toml" server --single-node --default-bucket
    local i
    for i in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$admin" && printf 'GET /health HTTP/1.0\r\n\r\n' >&3 && grep -q ' 200 ' <&3) 2>/dev/null; then
            sleep 0.5
            log "garage ready at $GARAGE_ENDPOINT"
            return 0
        fi
        sleep 0.1
    done
    dump_logs garage
    return 1
}

# run_veil KEY FILE BYTES [s3]
run_veil() {
    local key=$1 file=$2 bytes=$3 mode=${4:-fs} tool=veil relay_cmd
    local d="$WORK/veil-$key"
    mkdir -p "$d/out"
    relay_cmd=("$BIN/veil-relay" --listen 127.0.0.1:0 --http 127.0.0.1:0 --data "$d/relay")
    if [[ $mode == s3 ]]; then
        tool=veil-s3
        relay_cmd=(env AWS_ACCESS_KEY_ID="$GARAGE_KEY" AWS_SECRET_ACCESS_KEY="$GARAGE_SECRET" "${relay_cmd[@]}"
            --s3-bucket veil-bench --s3-endpoint "$GARAGE_ENDPOINT" --s3-region garage --s3-path-style --s3-prefix "run-$RANDOM/")
    fi
    start_server veil-relay "${relay_cmd[@]}"
    local line relay
    line=$(wait_for_line "$WORK/veil-relay.out" '^clients: VEIL_RELAY=' "${SERVER_PID[veil-relay]}") || { dump_logs veil-relay; return 1; }
    relay=${line#clients: VEIL_RELAY=}
    local rpid=${SERVER_PID[veil-relay]} c0 c1 t0 t1 rc=0
    local code="12-bench-$RANDOM-$RANDOM"
    c0=$(cpu_ticks "$rpid")
    t0=$(now)
    start_client veil-send env VEIL_HOME="$d/send-home" VEIL_RELAY="$relay" "$BIN/veil" send "$file" --code "$code" --json
    start_client veil-recv env VEIL_HOME="$d/recv-home" VEIL_RELAY="$relay" "$BIN/veil" receive "$code" --yes --out "$d/out" --json
    wait_client veil-send || rc=$?
    wait_client veil-recv || rc=$?
    t1=$(now)
    c1=$(cpu_ticks "$rpid")
    local rrss
    rrss=$(peak_rss_kb "$rpid")
    stop_server veil-relay
    if ((rc != 0)); then dump_logs veil-send veil-recv veil-relay; return 1; fi
    cmp "$file" "$d/out/$(basename "$file")" || { log "veil: received file differs"; return 1; }
    # veil's own "done" event (seconds since that process started): the rest of its wall
    # time is process start-up and connection close.
    local ds dr
    ds=$(sed -n 's/.*"event":"done".*"seconds":\([0-9.e+-]*\).*/\1/p' "$WORK/veil-send.out" | tail -n 1 | awk '{printf "%.3f", $1}')
    dr=$(sed -n 's/.*"event":"done".*"seconds":\([0-9.e+-]*\).*/\1/p' "$WORK/veil-recv.out" | tail -n 1 | awk '{printf "%.3f", $1}')
    echo "$key ${ds:-?} ${dr:-?}" >>"$WORK/veil-done"
    record "$tool" "$key" "$bytes" "$(secs_between "$t0" "$t1")" "$(client_stats veil-send)" \
        "$(ticks_to_s $((c1 - c0))) $(awk -v k="$rrss" 'BEGIN{printf "%.1f", k/1024}')" "$(client_stats veil-recv)"
    rm -rf "$d"
}

# run_forwarder KEY FILE BYTES [MAX_UDP_PAYLOAD]
run_forwarder() {
    local key=$1 file=$2 bytes=$3 tool=forwarder extra=()
    if [[ -n ${4:-} ]]; then tool="forwarder-$4" extra=(--max-udp-payload "$4"); fi
    local d="$WORK/fwd-$key"
    mkdir -p "$d"
    start_server fwd-relay "$BIN/quic-forward" relay --listen 127.0.0.1:0 "${extra[@]}"
    local line relay
    line=$(wait_for_line "$WORK/fwd-relay.out" 'listening on ' "${SERVER_PID[fwd-relay]}") || { dump_logs fwd-relay; return 1; }
    relay=${line##* }
    local rpid=${SERVER_PID[fwd-relay]} c0 c1 t0 t1 rc=0 rrss
    c0=$(cpu_ticks "$rpid")
    t0=$(now)
    start_client fwd-send "$BIN/quic-forward" send --relay "$relay" --file "$file" "${extra[@]}"
    start_client fwd-recv "$BIN/quic-forward" recv --relay "$relay" --out "$d/out.bin" "${extra[@]}"
    wait_client fwd-send || rc=$?
    wait_client fwd-recv || rc=$?
    t1=$(now)
    c1=$(cpu_ticks "$rpid")
    rrss=$(peak_rss_kb "$rpid")
    stop_server fwd-relay
    if ((rc != 0)); then dump_logs fwd-send fwd-recv fwd-relay; return 1; fi
    cmp "$file" "$d/out.bin" || { log "$tool: received file differs"; return 1; }
    log "$tool: $(grep -h -o 'mtu [0-9]*, .*lost' "$WORK/fwd-send.err" | head -n 1) (sender's connection)"
    record "$tool" "$key" "$bytes" "$(secs_between "$t0" "$t1")" "$(client_stats fwd-send)" \
        "$(ticks_to_s $((c1 - c0))) $(awk -v k="$rrss" 'BEGIN{printf "%.1f", k/1024}')" "$(client_stats fwd-recv)"
    rm -rf "$d"
}

run_wormhole() {
    local key=$1 file=$2 bytes=$3
    local d="$WORK/wh-$key" vbin="$CACHE/venv/bin"
    mkdir -p "$d/out"
    local mport tport
    mport=$(free_port)
    tport=$(free_port)
    while [[ $tport == "$mport" ]]; do tport=$(free_port); done
    # `cd` then exec: the subshell becomes twist, so $! is twist's PID.
    start_server wh-mailbox bash -c 'cd "$1" && exec "$2" wormhole-mailbox --port="tcp:$3:interface=127.0.0.1" --channel-db="$1/mailbox.sqlite"' \
        _ "$d" "$vbin/twist" "$mport"
    start_server wh-transit bash -c 'cd "$1" && exec "$2" transitrelay --port="tcp:$3:interface=127.0.0.1"' _ "$d" "$vbin/twist" "$tport"
    if ! wait_for_port "$mport" || ! wait_for_port "$tport"; then
        dump_logs wh-mailbox wh-transit
        stop_server wh-mailbox; stop_server wh-transit
        return 1
    fi
    local mpid=${SERVER_PID[wh-mailbox]} tpid=${SERVER_PID[wh-transit]}
    local m0 m1 x0 x1 t0 t1 rc=0 trss
    local code="7-bench-$RANDOM"
    local common=("$vbin/wormhole" --relay-url "ws://127.0.0.1:$mport/v1" --transit-helper "tcp:127.0.0.1:$tport")
    m0=$(cpu_ticks "$mpid")
    x0=$(cpu_ticks "$tpid")
    t0=$(now)
    start_client wh-send "${common[@]}" send --code "$code" --no-listen --hide-progress "$file"
    start_client wh-recv "${common[@]}" receive --accept-file --no-listen --hide-progress -o "$d/out/recv.bin" "$code"
    wait_client wh-send || rc=$?
    wait_client wh-recv || rc=$?
    t1=$(now)
    m1=$(cpu_ticks "$mpid")
    x1=$(cpu_ticks "$tpid")
    trss=$(peak_rss_kb "$tpid")
    stop_server wh-mailbox
    stop_server wh-transit
    if ((rc != 0)); then dump_logs wh-send wh-recv wh-mailbox wh-transit; return 1; fi
    cmp "$file" "$d/out/recv.bin" || { log "wormhole: received file differs"; return 1; }
    record wormhole "$key" "$bytes" "$(secs_between "$t0" "$t1")" "$(client_stats wh-send)" \
        "$(ticks_to_s $((m1 - m0 + x1 - x0))) $(awk -v k="$trss" 'BEGIN{printf "%.1f", k/1024}')" "$(client_stats wh-recv)"
    rm -rf "$d"
}

# ---------------------------------------------------------------------------------------
# Set-up

LOAD_START=$(uptime)
log "machine: $(nproc) cores; load at start:$(sed 's/.*load average//' <<<"$LOAD_START")"
log "measuring with ${GNU_TIME:-/proc polling + bash times (no GNU time)}"

if ((BUILD)); then
    log "building release binaries (cargo build --release -j2)"
    (cd "$ROOT" && cargo build --release -j2 -p veil-cli -p veil-relay -p veil-bench-forwarder)
fi
for b in veil veil-relay quic-forward; do
    [[ -x $BIN/$b ]] || die "$BIN/$b is missing (build it, or drop --no-build)"
done

if ((!SKIP_WORMHOLE)); then
    if ! command -v python3 >/dev/null; then
        WH_NOTE="magic-wormhole skipped: python3 not found"
    elif [[ -x $CACHE/venv/bin/wormhole && -x $CACHE/venv/bin/twist ]] &&
        "$CACHE/venv/bin/twist" transitrelay --help >/dev/null 2>&1 &&
        "$CACHE/venv/bin/twist" wormhole-mailbox --help >/dev/null 2>&1; then
        :
    else
        log "installing magic-wormhole into $CACHE/venv"
        mkdir -p "$CACHE"
        if ! { python3 -m venv "$CACHE/venv" &&
            "$CACHE/venv/bin/pip" install -q magic-wormhole magic-wormhole-mailbox-server magic-wormhole-transit-relay; } >&2; then
            WH_NOTE="magic-wormhole skipped: pip install failed (see above)"
        fi
    fi
    if [[ -z $WH_NOTE ]]; then
        log "$("$CACHE/venv/bin/wormhole" --version 2>&1 | head -n1)"
    else
        log "$WH_NOTE"
        SKIP_WORMHOLE=1
    fi
else
    WH_NOTE="magic-wormhole skipped (--skip-wormhole)"
fi

# ---------------------------------------------------------------------------------------
# Runs

FAILED=()
if ((WITH_S3)); then
    start_garage || { log "garage did not start"; exit 1; }
fi
for key in $SIZES; do
    key=${key,,}
    bytes=$(size_bytes "$key")
    file="$WORK/bench-$key.bin"
    log "making $(size_label "$key") of random data"
    head -c "$bytes" /dev/urandom >"$file"
    run_veil "$key" "$file" "$bytes" || FAILED+=("veil $key")
    sync
    if ((WITH_S3)); then
        run_veil "$key" "$file" "$bytes" s3 || FAILED+=("veil-s3 $key")
        sync
    fi
    if ((!SKIP_WORMHOLE)); then
        run_wormhole "$key" "$file" "$bytes" || FAILED+=("wormhole $key")
        sync
    fi
    run_forwarder "$key" "$file" "$bytes" || FAILED+=("forwarder $key")
    sync
    if [[ -n $FWD_PAYLOAD ]]; then
        run_forwarder "$key" "$file" "$bytes" "$FWD_PAYLOAD" || FAILED+=("forwarder-$FWD_PAYLOAD $key")
        sync
    fi
    rm -f "$file"
done
LOAD_END=$(uptime)

# ---------------------------------------------------------------------------------------
# Report

echo
echo "## veil transfer benchmark ($(date -u +%Y-%m-%dT%H:%MZ))"
echo
echo "$(nproc) cores, loopback; load average at start$(sed 's/.*load average//' <<<"$LOAD_START"), at end$(sed 's/.*load average//' <<<"$LOAD_END")"
echo
echo "| tool | size | wall s | MB/s | CPU s (send + relay + recv = total) | peak RSS MiB (send / relay / recv) |"
echo "|---|---|---:|---:|---|---|"
while read -r tool key bytes wall sc rc vc sr rr vr; do
    awk -v t="$tool" -v sz="$(size_label "$key")" -v b="$bytes" -v w="$wall" -v sc="$sc" -v rc="$rc" -v vc="$vc" \
        -v sr="$sr" -v rr="$rr" -v vr="$vr" 'BEGIN{
        mbs = b / 1e6 / (w > 0 ? w : 1e-9)
        printf "| %s | %s | %.2f | %s | %.2f + %.2f + %.2f = %.2f | %.0f / %.0f / %.0f |\n",
            t, sz, w, sprintf(mbs >= 10 ? "%.0f" : "%.3g", mbs), sc, rc, vc, sc + rc + vc, sr, rr, vr }'
done <"$RESULTS"
[[ -n $WH_NOTE ]] && { echo; echo "Note: $WH_NOTE."; }
if [[ -s $WORK/veil-done ]]; then
    echo
    printf 'veil "done" event, seconds after each process started (send / recv):'
    while read -r key ds dr; do printf ' %s %s / %s;' "$(size_label "$key")" "$ds" "$dr"; done <"$WORK/veil-done"
    echo
fi

echo
echo "| size | veil / wormhole (throughput) | veil / forwarder (throughput) |"
echo "|---|---:|---:|"
for key in $SIZES; do
    key=${key,,}
    awk -v k="$key" -v label="$(size_label "$key")" '
        $2 == k { w[$1] = $4 }
        END {
            r1 = ("veil" in w && "wormhole" in w) ? sprintf("%.2fx", w["wormhole"] / w["veil"]) : "n/a"
            r2 = ("veil" in w && "forwarder" in w) ? sprintf("%.0f %%", 100 * w["forwarder"] / w["veil"]) : "n/a"
            printf "| %s | %s | %s |\n", label, r1, r2
        }' "$RESULTS"
done

# Goals (from the issue), checked on the largest size that ran.
echo
echo "Goals:"
awk '
    { wall[$1, $2] = $4; bytes[$2] = $3; cpu[$1, $2] = $5 + $6 + $7; srss[$1, $2] = $8; rrss[$1, $2] = $9; vrss[$1, $2] = $10
      if ($1 == "veil" && $3 > big) { big = $3; bk = $2 } }
    function verdict(ok) { return ok ? "PASS" : "FAIL" }
    function val(arr, k) { return arr == "srss" ? srss["veil", k] : arr == "rrss" ? rrss["veil", k] : vrss["veil", k] }
    END {
        if (big == 0) { print "- no veil results"; exit }
        if (big < 100 * 1048576) {
            print "- throughput and CPU goals: n/a (need a size of at least 100 MiB)"
        } else if (("wormhole", bk) in wall) {
            r = wall["wormhole", bk] / wall["veil", bk]
            printf "- >= 3x magic-wormhole throughput (%s): %.2fx %s\n", bk, r, verdict(r >= 3)
        } else printf "- >= 3x magic-wormhole throughput: no wormhole result\n"
        if (big >= 100 * 1048576) {
            c = cpu["veil", bk] / (bytes[bk] / 1073741824)
            printf "- total CPU <= 8 s per GiB (%s): %.2f s/GiB %s\n", bk, c, verdict(c <= 8)
        }
        if (big >= 100 * 1048576 && ("forwarder", bk) in wall) {
            r = wall["forwarder", bk] / wall["veil", bk]
            printf "- >= 70 %% of the bare forwarder (%s): %.0f %% %s\n", bk, 100 * r, verdict(r >= 0.7)
        }
        if (("veil", "1k") in wall) printf "- 1 KiB code transfer <= 0.2 s: %.2f s %s\n", wall["veil", "1k"], verdict(wall["veil", "1k"] <= 0.2)
        m = 0; for (k in bytes) if (("veil", k) in srss) {
            if (srss["veil", k] > m) m = srss["veil", k]; if (vrss["veil", k] > m) m = vrss["veil", k] }
        printf "- client peak RSS <= 32 MiB (all sizes): max %.1f MiB %s\n", m, verdict(m <= 32)
        if ((("veil", "100m") in srss) && (("veil", "1g") in srss)) {
            # "Flat": at most 25 % (or 2 MiB) more at 1 GiB than at 100 MiB, on every process.
            flat = 1
            split("srss rrss vrss", which, " ")
            for (i = 1; i <= 3; i++) {
                a = val(which[i], "100m"); b = val(which[i], "1g")
                if (b > a * 1.25 && b > a + 2) flat = 0
            }
            printf "- memory flat 100 MiB -> 1 GiB: send %.0f -> %.0f, relay %.0f -> %.0f, recv %.0f -> %.0f MiB %s\n",
                srss["veil", "100m"], srss["veil", "1g"], rrss["veil", "100m"], rrss["veil", "1g"],
                vrss["veil", "100m"], vrss["veil", "1g"], verdict(flat)
        }
    }' "$RESULTS"

if ((${#FAILED[@]})); then
    echo
    echo "FAILED runs: ${FAILED[*]}"
    exit 1
fi
