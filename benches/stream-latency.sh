#!/usr/bin/env bash
# benches/stream-latency.sh: latency and throughput veil's live streams add on loopback.
#
# Builds the release binaries (veil, veil-relay, stream_latency) and runs
# benches/transfer/src/bin/stream_latency.rs, which starts a fresh veil-relay per scenario,
# one `veil stream` publisher and 1 or 10 `veil watch` viewers (all on 127.0.0.1, each with
# its own VEIL_HOME), writes timestamped records into the publisher's stdin and reads them
# back from every viewer's stdout:
#
#   small  16-byte records at 100 Hz for 10 s
#   bulk   64 KiB records paced at 30 MB/s for 10 s
#   max    512 MiB of 64 KiB records as fast as possible (throughput)
#
# Prints a Markdown table: p50/p99/max end-to-end latency (publisher stdin -> viewer
# stdout), per-viewer throughput, relay CPU seconds (/proc/<pid>/stat utime+stime delta)
# and relay peak RSS (VmHWM), with the machine load (uptime) before and after.
#
# Usage: benches/stream-latency.sh [--no-build] [stream_latency options...]
#   stream_latency options: --scenarios small,bulk,max --viewers 1,10 --seconds 10
#                           --max-mib 512 --record (publisher records to the relay's store)
#                           --keep (keep the temp folder with all logs)
# Environment: CARGO_TARGET_DIR, TMPDIR (relay data and logs; small).
set -euo pipefail

BUILD=1
ARGS=()
while (($#)); do
    case $1 in
        --no-build) BUILD=0; shift ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
        *) ARGS+=("$1"); shift ;;
    esac
done

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release

if ((BUILD)); then
    (cd "$ROOT" && cargo build --release -j2 -p veil-cli -p veil-relay -p veil-bench-forwarder)
fi
for b in veil veil-relay stream_latency; do
    [[ -x $BIN/$b ]] || { echo "stream-latency.sh: $BIN/$b is missing (run without --no-build)" >&2; exit 1; }
done

echo "load before: $(uptime)" >&2
status=0
"$BIN/stream_latency" --bin-dir "$BIN" "${ARGS[@]}" || status=$?
echo "load after:  $(uptime)" >&2
exit "$status"
