//! `veil completions SHELL` and `veil man [DIR]`: shell completions and man pages, both
//! generated from the clap definitions so they never drift from `--help`.

use crate::cli::Cli;
use anyhow::{Context, Result};
use clap::CommandFactory;
use std::io::Write;
use std::path::Path;

/// The completion script for `shell`.
pub(crate) fn completions(shell: clap_complete::Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "veil", &mut out);
    out
}

/// `veil completions SHELL`: the script on standard output.
pub(crate) fn print_completions(shell: clap_complete::Shell) -> Result<()> {
    let mut so = std::io::stdout().lock();
    so.write_all(&completions(shell))?;
    Ok(so.flush()?)
}

/// Man pages: `veil.1` on standard output without a folder; with one, `veil.1` and a page
/// per command (`veil-send.1`, ...) written into it.
pub(crate) fn man(dir: Option<&Path>) -> Result<()> {
    let cmd = Cli::command().name("veil");
    match dir {
        None => {
            let mut so = std::io::stdout().lock();
            clap_mangen::Man::new(cmd).render(&mut so)?;
            so.flush()?;
        }
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            clap_mangen::generate_to(cmd, dir).with_context(|| format!("writing man pages into {}", dir.display()))?;
            eprintln!("Wrote man pages into {}; read them with `man -l {}/veil.1`", dir.display(), dir.display());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bash_completion_knows_the_commands() {
        let out = completions(clap_complete::Shell::Bash);
        let s = String::from_utf8_lossy(&out);
        for sub in ["send", "receive", "stream", "watch", "identity", "completions", "man", "config"] {
            assert!(s.contains(sub), "bash completion lacks {sub}");
        }
    }

    #[test]
    fn man_pages_for_every_command() {
        let dir = std::env::temp_dir().join(format!("veil-man-test-{}", std::process::id()));
        man(Some(&dir)).unwrap_or_else(|e| panic!("{e:#}"));
        let top = std::fs::read_to_string(dir.join("veil.1")).unwrap_or_default();
        assert!(top.contains(".TH veil 1"), "{top}");
        assert!(dir.join("veil-send.1").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
