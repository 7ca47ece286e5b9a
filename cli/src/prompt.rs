//! The code prompt of `veil receive` and `veil watch`: a small line editor on a terminal
//! with Tab completion of the code words (as magic-wormhole has), so a code read aloud
//! needs only a few letters per word; a pasted ticket is taken as it is. Typed text never
//! shows in `ps` or the shell history.

use anyhow::{Context, Result};
use std::io::Write;

/// What Tab does to the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Completion {
    /// Nothing to complete (a nameplate, a ticket, no word matches).
    Nothing,
    /// The line becomes this (one match, or the matches' longest common prefix).
    Line(String),
    /// Several words match and the line cannot grow: show them.
    Choices(Vec<&'static str>),
}

/// Complete the last word of a code (`<number>-<word>-<word>`) from `words`; after a
/// complete word that is not the last, a `-` follows.
pub(crate) fn complete(line: &str, words: &'static [&'static str], words_per_code: usize) -> Completion {
    let Some((head, prefix)) = line.rsplit_once('-') else { return Completion::Nothing };
    let nameplate_ok = head.split('-').next().is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    if !nameplate_ok || veil_format::ticket::is_ticket(line) {
        return Completion::Nothing;
    }
    let prefix_lower = prefix.to_ascii_lowercase();
    let matches: Vec<&'static str> = words.iter().copied().filter(|w| w.starts_with(&prefix_lower)).collect();
    let typed_words = head.split('-').count(); // the nameplate and the words before this one
    match matches.as_slice() {
        [] => Completion::Nothing,
        [one] => {
            let dash = if typed_words < words_per_code { "-" } else { "" };
            Completion::Line(format!("{head}-{one}{dash}"))
        }
        many => {
            let common = common_prefix(many);
            if common.len() > prefix_lower.len() {
                Completion::Line(format!("{head}-{common}"))
            } else {
                Completion::Choices(many.to_vec())
            }
        }
    }
}

fn common_prefix(words: &[&str]) -> String {
    let Some(first) = words.first() else { return String::new() };
    let mut n = first.len();
    for w in &words[1..] {
        n = n.min(first.bytes().zip(w.bytes()).take_while(|(a, b)| a == b).count());
    }
    first[..n].to_string()
}

/// Ask for a code or ticket on the terminal (standard input and standard error are
/// terminals). None: an empty answer.
pub(crate) fn ask_code(prompt: &str) -> Result<Option<String>> {
    #[cfg(unix)]
    if let Some(r) = raw::ask(prompt) {
        return r;
    }
    // No raw mode (or not unix): a plain line.
    eprint!("{prompt}");
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).context("reading the code")?;
    let line = line.trim();
    Ok((!line.is_empty()).then(|| line.to_string()))
}

#[cfg(unix)]
mod raw {
    use super::{Completion, complete};
    use anyhow::{Result, bail};
    use rustix::termios::{LocalModes, OptionalActions, SpecialCodeIndex, Termios, tcgetattr, tcsetattr};
    use std::io::{Read, Write};

    /// The terminal's settings, put back on drop (also on an error or a panic).
    struct Restore(Termios);

    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = tcsetattr(std::io::stdin(), OptionalActions::Now, &self.0);
        }
    }

    /// None when the terminal cannot be put in raw mode (then a plain line is read).
    pub(super) fn ask(prompt: &str) -> Option<Result<Option<String>>> {
        let saved = tcgetattr(std::io::stdin()).ok()?;
        let mut t = saved.clone();
        t.local_modes.remove(LocalModes::ICANON | LocalModes::ECHO | LocalModes::ISIG);
        t.special_codes[SpecialCodeIndex::VMIN] = 1;
        t.special_codes[SpecialCodeIndex::VTIME] = 0;
        tcsetattr(std::io::stdin(), OptionalActions::Now, &t).ok()?;
        let _restore = Restore(saved);
        Some(edit(prompt))
    }

    fn edit(prompt: &str) -> Result<Option<String>> {
        let words = veil_format::code::code_words();
        let per_code = veil_format::code::DEFAULT_CODE_WORDS;
        let mut err = std::io::stderr().lock();
        let mut stdin = std::io::stdin().lock();
        let mut line = String::new();
        write!(err, "{prompt}")?;
        err.flush()?;
        let mut byte = [0u8; 1];
        loop {
            if stdin.read(&mut byte)? == 0 {
                break;
            }
            match byte[0] {
                b'\r' | b'\n' => break,
                // Ctrl-C, Ctrl-D on an empty line.
                0x03 => {
                    writeln!(err)?;
                    bail!("cancelled");
                }
                0x04 if line.is_empty() => {
                    writeln!(err)?;
                    bail!("cancelled");
                }
                0x7f | 0x08 if !line.is_empty() => {
                    line.pop();
                    write!(err, "\x08 \x08")?;
                }
                // Ctrl-U: clear the line.
                0x15 => {
                    for _ in 0..line.len() {
                        write!(err, "\x08 \x08")?;
                    }
                    line.clear();
                }
                b'\t' => match complete(&line, words, per_code) {
                    Completion::Line(new) => {
                        write!(err, "{}", &new[line.len()..])?;
                        line = new;
                    }
                    Completion::Choices(c) => {
                        let shown: Vec<&str> = c.iter().copied().take(40).collect();
                        let more =
                            if c.len() > shown.len() { format!(" ... ({} in all)", c.len()) } else { String::new() };
                        write!(err, "\r\n{}{more}\r\n{prompt}{line}", shown.join("  "))?;
                    }
                    Completion::Nothing => write!(err, "\x07")?,
                },
                b if b.is_ascii_graphic() || b == b' ' => {
                    line.push(b as char);
                    err.write_all(&[b])?;
                }
                // Escape sequences (arrow keys) and other control bytes are ignored.
                _ => {}
            }
            err.flush()?;
        }
        write!(err, "\r\n")?;
        err.flush()?;
        let line = line.trim();
        Ok((!line.is_empty()).then(|| line.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WORDS: &[&str] = &["acorn", "acre", "baton", "gem", "guitar", "orbit"];

    #[test]
    fn unique_word_completes_with_a_dash_until_the_last() {
        assert_eq!(complete("7-gui", WORDS, 2), Completion::Line("7-guitar-".into()));
        assert_eq!(complete("7-guitar-or", WORDS, 2), Completion::Line("7-guitar-orbit".into()));
        assert_eq!(complete("7-GUI", WORDS, 2), Completion::Line("7-guitar-".into()));
    }

    #[test]
    fn several_matches_grow_to_the_common_prefix_then_list() {
        assert_eq!(complete("7-a", WORDS, 2), Completion::Line("7-ac".into()));
        assert_eq!(complete("7-ac", WORDS, 2), Completion::Choices(vec!["acorn", "acre"]));
    }

    #[test]
    fn nothing_for_a_nameplate_a_ticket_or_no_match() {
        assert_eq!(complete("7", WORDS, 2), Completion::Nothing);
        assert_eq!(complete("x-gui", WORDS, 2), Completion::Nothing);
        assert_eq!(complete("7-zz", WORDS, 2), Completion::Nothing);
        assert_eq!(complete("veil1-gui", WORDS, 2), Completion::Nothing);
    }

    #[test]
    fn the_real_word_list_completes() {
        let words = veil_format::code::code_words();
        // A word no other word starts with completes fully, with the dash.
        let w = words.iter().copied().find(|w| words.iter().filter(|o| o.starts_with(*w)).count() == 1);
        let w = w.unwrap_or_default();
        assert_eq!(complete(&format!("3-{}", &w[..w.len() - 1]), words, 2), Completion::Line(format!("3-{w}-")));
    }
}
