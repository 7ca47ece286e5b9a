#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The web receive page (relay/web): its JavaScript against every format vector, its
//! download stream against damaged transfers, the committed bundle against its sources, and links opened in headless Chromium against
//! the real relay and CLI (relay/web/test/browser.test.mjs, driven by playwright-core).
//! tests/run.sh installs Node, Chromium and the npm packages these need.

mod common;
use common::bin_dir;
use std::path::PathBuf;
use std::process::Command;

fn web_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../relay/web")
}

/// Run `node ARGS` in relay/web; fail with its output.
fn node(args: &[&str]) {
    let dir = web_dir();
    assert!(
        dir.join("node_modules/libsodium-wrappers-sumo").exists(),
        "relay/web/node_modules is missing: run tests/run.sh (or `npm ci` in relay/web) first"
    );
    let out = Command::new("node")
        .args(args)
        .current_dir(&dir)
        .env("VEIL_BIN_DIR", bin_dir())
        .output()
        .expect("node is not installed: run tests/run.sh");
    let text = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    // Timings and test names in the cargo test output (with --nocapture).
    println!("{text}");
    assert!(out.status.success(), "node {args:?} failed:\n{text}");
}

#[test]
fn javascript_format_passes_every_vector() {
    node(&["--test", "test/vectors.test.js"]);
}

#[test]
fn javascript_download_stream_refuses_damaged_transfers() {
    node(&["--test", "test/receive.test.js"]);
}

#[test]
fn committed_bundle_matches_its_sources() {
    node(&["build.mjs", "--check"]);
}

#[test]
fn links_open_and_download_in_chromium() {
    node(&["--test", "test/browser.test.mjs"]);
}
