//! How an error reaches the user: one line on standard error (control characters
//! escaped), and an exit code: 0 done, 1 failed, 2 usage. A broken pipe on standard
//! output is a clean exit, as in ripgrep.

use veil_client::ClientError;
use veil_format::escape_text;

/// Print `result`'s error, if any, and give the process's exit code.
pub(crate) fn exit_code(result: anyhow::Result<()>) -> i32 {
    let Err(e) = result else { return 0 };
    if let Some(io) = e.downcast_ref::<std::io::Error>()
        && io.kind() == std::io::ErrorKind::BrokenPipe
    {
        return 0;
    }
    let client = e.downcast_ref::<ClientError>();
    let hint = client.map_or("", hint);
    eprintln!("veil: error: {}{hint}", escape_text(&format!("{e:#}")).replace("\\n", "\n"));
    match client {
        Some(ClientError::Usage(_) | ClientError::PasswordNeeded) => 2,
        _ => 1,
    }
}

/// The flag or variable that fixes a library error, added to its message (the library
/// knows nothing of flags).
pub(crate) fn hint(e: &ClientError) -> &'static str {
    match e {
        ClientError::Exists(_) => "; use --overwrite to replace it",
        ClientError::PasswordNeeded => " (--password or VEIL_PASSWORD)",
        ClientError::NoKeyBundle { .. } => {
            ": ask them to run `veil identity publish` (or `veil inbox`) with a current veil"
        }
        _ => "",
    }
}
