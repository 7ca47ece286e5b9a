#!/usr/bin/env bash
# CI entry point for fuzzing: every target for 20 seconds (fuzz/run.sh 20).
# Needs the nightly toolchain (cargo-fuzz uses sanitizers); without it this step is
# skipped, loudly, and succeeds. Installs cargo-fuzz when missing.
set -uo pipefail
cd "$(dirname "$0")"

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "##################################################################" >&2
    echo "## SKIPPING FUZZING: no nightly toolchain (cargo +nightly failed) ##" >&2
    echo "##################################################################" >&2
    exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "fuzz/ci.sh: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked || { echo "fuzz/ci.sh: installing cargo-fuzz failed" >&2; exit 1; }
fi
exec ./run.sh "${FUZZ_SECONDS:-20}"
