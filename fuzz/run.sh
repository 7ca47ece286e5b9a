#!/usr/bin/env bash
# Run every fuzz target (or the ones named) for SECONDS each, one after the other.
#
#   fuzz/run.sh SECONDS [TARGET...]
#
# Builds the targets (cargo +nightly fuzz build; CARGO_BUILD_JOBS defaults to 1), copies
# fuzz/seeds/<target>/ into the scratch corpus fuzz/corpus/<target>/ (gitignored), runs
# libFuzzer with -max_total_time=SECONDS, -rss_limit_mb=2048, -timeout=10 and leak
# detection, and exits non-zero if any target crashed, hung, leaked or ran out of memory
# (reproducers land in fuzz/artifacts/<target>/, gitignored; replay one with
# `fuzz/target/<host>/release/<target> FILE`). Prints executions per target at the end.
set -uo pipefail

secs="${1:-}"
if [[ ! "$secs" =~ ^[0-9]+$ ]] || [ "$secs" -lt 1 ]; then
    echo "usage: fuzz/run.sh SECONDS [TARGET...]" >&2
    exit 2
fi
shift
cd "$(dirname "$0")"

export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-1}"
if ! cargo +nightly fuzz build; then
    echo "fuzz/run.sh: building the fuzz targets failed" >&2
    exit 1
fi
host="$(rustc +nightly -vV | sed -n 's/^host: //p')"
bindir="target/$host/release"

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi

failed=()
summary=()
for t in "${targets[@]}"; do
    bin="$bindir/$t"
    if [ ! -x "$bin" ]; then
        echo "fuzz/run.sh: no such target: $t" >&2
        failed+=("$t (missing)")
        continue
    fi
    mkdir -p "corpus/$t" "artifacts/$t"
    if [ -d "seeds/$t" ]; then
        cp -n seeds/"$t"/* "corpus/$t/" 2>/dev/null || true
    fi
    before=$(find "artifacts/$t" -type f | wc -l)
    log="$(mktemp "${TMPDIR:-/tmp}/veil-fuzz-$t.XXXXXX")"
    echo "=== $t: ${secs}s"
    # The outer timeout only catches a wedged libFuzzer; -timeout=10 catches slow inputs.
    timeout --kill-after=30 "$((secs + 120))" "$bin" \
        -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -detect_leaks=1 \
        -print_final_stats=1 -artifact_prefix="artifacts/$t/" "corpus/$t" >"$log" 2>&1
    rc=$?
    after=$(find "artifacts/$t" -type f | wc -l)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)
    cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -1 | grep -Eo '[0-9]+')
    status=ok
    if [ "$rc" -ne 0 ] || [ "$after" -gt "$before" ]; then
        status="FAILED (exit $rc)"
        failed+=("$t")
        grep -E '^==[0-9]+==ERROR|^ERROR: libFuzzer|panicked at|^SUMMARY|Test unit written to' "$log" | head -20
        echo "--- full log: $log"
    else
        rm -f "$log"
    fi
    summary+=("$(printf '%-18s %12s execs %8s exec/s  cov %6s  rss %5s MB  %s' \
        "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${rss:-?}" "$status")")
done

echo
echo "=== fuzz summary (${secs}s per target)"
printf '%s\n' "${summary[@]}"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "FUZZING FOUND PROBLEMS in: ${failed[*]} (reproducers in fuzz/artifacts/)" >&2
    exit 1
fi
echo "all ${#targets[@]} targets ran clean"
