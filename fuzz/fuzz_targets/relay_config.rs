//! The relay's TOML config file (relay/src/config_file.rs, compiled here by path) and the
//! duration strings in it, parsed with `humantime` as relay/src/main.rs does. A config
//! file is written by the operator, not by an attacker, but a crash on a typo is a bug.
//! Property: no panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../relay/src/config_file.rs"]
#[allow(dead_code)]
mod config_file;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let Ok(cfg) = config_file::parse_config(s) else { return };
    for d in [&cfg.max_expire, &cfg.idle_timeout, &cfg.sweep_interval, &cfg.stream_idle_timeout].into_iter().flatten() {
        let _ = humantime::parse_duration(d);
    }
    let _ = format!("{cfg:?}");
});
