//! How an error reaches the user: one line on standard error (control characters
//! escaped), and an exit code: 0 done, 1 failed, 2 usage, 3 declined. A broken pipe on
//! standard output is a clean exit, as in ripgrep.

use veil_client::ClientError;
use veil_format::escape_text;

/// Exit code of a usage error.
pub(crate) const EXIT_USAGE: i32 = 2;
/// Exit code of a transfer the user refused (or a changed sender key, refused).
pub(crate) const EXIT_DECLINED: i32 = 3;

/// A transfer refused on the receiver's side: by the user's answer, or because the
/// sender's key changed and nobody accepted it. Exit code 3.
#[derive(Debug)]
pub(crate) struct Refused(pub(crate) String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

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
    if e.downcast_ref::<Refused>().is_some() {
        return EXIT_DECLINED;
    }
    match client {
        Some(ClientError::Usage(_) | ClientError::PasswordNeeded) => EXIT_USAGE,
        Some(ClientError::Declined) => EXIT_DECLINED,
        _ => 1,
    }
}

/// The flag or variable that fixes a library error, added to its message (the library
/// knows nothing of flags).
pub(crate) fn hint(e: &ClientError) -> &'static str {
    match e {
        ClientError::Exists(_) => "; use --overwrite to replace it",
        ClientError::PasswordNeeded => " (--password or VEIL_PASSWORD)",
        ClientError::Declined => "; nothing was written",
        ClientError::NoKeyBundle { .. } => {
            ": ask them to run `veil identity publish` (or `veil inbox`) with a current veil"
        }
        _ => "",
    }
}
