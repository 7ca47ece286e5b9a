//! Where codes, tickets, passwords and text come from: an argument, standard input
//! (`-`), an environment variable or a prompt. Everything but the argument stays out of
//! `ps` and shell history.

use anyhow::{Context, Result, bail};
use std::io::IsTerminal;
use veil_client::ClientError;

/// A non-empty environment variable.
pub(crate) fn env_secret(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// An argument that may be `-`: then one line (without its line end) from standard
/// input, for `what`.
pub(crate) fn arg_or_stdin(value: String, what: &str) -> Result<String> {
    if value != "-" {
        return Ok(value);
    }
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).with_context(|| format!("reading the {what} from standard input"))?;
    let line = line.trim_end_matches(['\n', '\r']).to_string();
    if line.trim().is_empty() {
        return Err(ClientError::Usage(format!("no {what} on standard input")).into());
    }
    Ok(line)
}

/// A code or ticket: the argument (`-` reads standard input), else VEIL_CODE or
/// VEIL_TICKET, else asked on a terminal. None: nothing given (an empty answer).
pub(crate) fn code_input(arg: Option<String>, prompt: &str) -> Result<Option<String>> {
    if let Some(a) = arg {
        return Ok(Some(arg_or_stdin(a, "code or ticket")?));
    }
    if let Some(v) = env_secret("VEIL_CODE").or_else(|| env_secret("VEIL_TICKET")) {
        return Ok(Some(v));
    }
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return Ok(None);
    }
    crate::prompt::ask_code(prompt)
}

pub(crate) fn read_secret(env: &str, prompt: &str) -> Result<String> {
    if let Ok(v) = std::env::var(env) {
        return Ok(v);
    }
    if !std::io::stdin().is_terminal() {
        bail!("set {env} or run on a terminal to enter the password");
    }
    rpassword::prompt_password(prompt).context("reading the password")
}

/// Standard input (0) or output (1) as a plain file: no line buffering, no lock.
pub(crate) fn raw_stdio(fd: u8) -> Result<std::fs::File> {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        let owned = if fd == 0 {
            std::io::stdin().as_fd().try_clone_to_owned()
        } else {
            std::io::stdout().as_fd().try_clone_to_owned()
        };
        Ok(std::fs::File::from(owned.context("duplicating a standard stream")?))
    }
    #[cfg(windows)]
    {
        use std::os::windows::io::AsHandle;
        let owned = if fd == 0 {
            std::io::stdin().as_handle().try_clone_to_owned()
        } else {
            std::io::stdout().as_handle().try_clone_to_owned()
        };
        Ok(std::fs::File::from(owned.context("duplicating a standard stream")?))
    }
}

/// Decode a ticket, asking for its password if it has one.
pub(crate) fn decode_ticket(code: &str) -> Result<(veil_format::ticket::Ticket, Option<String>)> {
    let t = veil_format::ticket::Ticket::decode(code)?;
    let pw = if t.needs_password() { Some(read_secret("VEIL_PASSWORD", "Ticket password: ")?) } else { None };
    Ok((t, pw))
}
