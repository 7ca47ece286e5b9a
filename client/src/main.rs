//! `veil`: send files and text through a blind relay.
#![forbid(unsafe_code)]

mod identity;
mod inbox;
mod ui;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use veil_client::pipe::{ThreadReader, ThreadWriter};
use veil_client::{
    ClientError, ConnectOptions, Contacts, Home, ReceiveFrom, ReceiveOptions, Relay, RelayAddr, SendInput, SendMode,
    SendOptions, SenderStatus,
};
use veil_format::escape_text;
use veil_format::identity::Identity;

/// veil: end-to-end encrypted file transfer through a blind relay.
///
/// Codes, tickets, passwords and `--text` given as arguments show in `ps` and in your
/// shell history. Each can also come from standard input (`-`), from an environment
/// variable (VEIL_CODE, VEIL_TICKET, VEIL_PASSWORD, VEIL_TEXT) or from a prompt.
// No Debug: the parsed arguments hold codes, tickets and text.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Send files, folders, text or stdin (`-`).
    Send {
        /// Files or folders; `-` reads standard input.
        paths: Vec<PathBuf>,
        /// Send this text instead of files (`-`: read it from standard input; VEIL_TEXT
        /// also works and stays out of `ps`).
        #[arg(long, conflicts_with = "paths")]
        text: Option<String>,
        /// Relay address `host:port[#sha256]` (default: VEIL_RELAY, config, 127.0.0.1:4433).
        #[arg(long)]
        relay: Option<String>,
        /// Use this code (`<number>-<word>-<word>`) instead of a generated one (`-`: read
        /// it from standard input; VEIL_CODE also works and stays out of `ps`).
        #[arg(long, conflicts_with = "link")]
        code: Option<String>,
        /// Make a ticket for a receiver who comes later, instead of a code.
        #[arg(long)]
        link: bool,
        /// Protect the ticket with a password (read from VEIL_PASSWORD or a prompt).
        #[arg(long, requires = "link")]
        password: bool,
        /// Send to a person: a contact name or a public identity (`veilid1...`). The key
        /// is left sealed in their inbox on the relay; they may be offline.
        #[arg(long, conflicts_with_all = ["code", "link"])]
        to: Option<String>,
        /// Delete from the relay after this long.
        #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
        expire: Duration,
        /// Allow this many complete downloads.
        #[arg(long)]
        max_downloads: Option<u32>,
        /// One JSON object per line on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Receive with a code or a ticket; without one, everything waiting in your inbox.
    Receive {
        /// The code or ticket from the sender. `-` reads it from standard input; without
        /// it, VEIL_CODE or VEIL_TICKET, else a prompt on a terminal (an empty answer, or
        /// no terminal, fetches your inbox). Only the argument shows in `ps`.
        code: Option<String>,
        /// Relay address.
        #[arg(long)]
        relay: Option<String>,
        /// Output folder.
        #[arg(long, default_value = ".")]
        out: PathBuf,
        /// Accept without asking.
        #[arg(long, short = 'y')]
        yes: bool,
        /// Replace existing files.
        #[arg(long)]
        overwrite: bool,
        /// Accept a sender that claims a contact's name but signed with another key.
        /// Without it such a transfer is refused, or on a terminal needs a typed "yes"
        /// (even with --yes).
        #[arg(long)]
        accept_changed_key: bool,
        /// One JSON object per line on stdout.
        #[arg(long)]
        json: bool,
    },
    /// What is waiting in your inbox: sender, names, sizes, age.
    Inbox {
        /// Relay address.
        #[arg(long)]
        relay: Option<String>,
        /// One JSON object per entry on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Names for the people you send to and receive from.
    Contacts {
        #[command(subcommand)]
        cmd: ContactsCmd,
    },
    /// Stream standard input live to viewers (`ffmpeg ... -f mpegts - | veil stream`).
    Stream {
        /// Relay address.
        #[arg(long)]
        relay: Option<String>,
        /// Use this code instead of a generated one.
        #[arg(long)]
        code: Option<String>,
        /// How many viewers may join (each with its own key exchange).
        #[arg(long, default_value_t = 1)]
        viewers: u32,
        /// Keep the encrypted segments on the relay so the stream can be replayed
        /// (`veil watch --from-start`, also with the printed ticket once you are gone).
        /// A recorded stream starts at once instead of waiting for the first viewer.
        #[arg(long)]
        record: bool,
        /// With --record: delete the recording from the relay after this long.
        #[arg(long, default_value = "24h", value_parser = humantime::parse_duration, requires = "record")]
        expire: Duration,
        /// One JSON object per line on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Watch a live stream; the plaintext goes to standard output.
    Watch {
        /// The code from the publisher, or the ticket of a recorded stream (`-`: read it
        /// from standard input; without it, VEIL_CODE or VEIL_TICKET, else a prompt).
        code: Option<String>,
        /// Replay a recorded stream from its beginning, then follow it live.
        #[arg(long)]
        from_start: bool,
        /// Relay address.
        #[arg(long)]
        relay: Option<String>,
    },
    /// Your passphrase identity.
    Identity {
        #[command(subcommand)]
        cmd: IdentityCmd,
    },
}

#[derive(Subcommand)]
enum IdentityCmd {
    /// Create (or re-derive on a new device) your identity.
    New {
        /// Your handle (e-mail address or name); also VEIL_HANDLE.
        #[arg(long)]
        handle: Option<String>,
        /// Read the passphrase from this file (else VEIL_PASSPHRASE, a prompt, or generate one).
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
        /// Accept a weak passphrase.
        #[arg(long)]
        i_know_it_is_weak: bool,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Show your public identity and fingerprint.
    Show {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Print your public identity string (to give to people who send to you).
    Export,
    /// Add someone's public identity as a contact (same as `veil contacts add`).
    Import {
        /// Name for the contact.
        name: String,
        /// Their public identity (`veilid1...`).
        identity: String,
    },
}

#[derive(Subcommand)]
enum ContactsCmd {
    /// Add a contact.
    Add {
        /// Name for the contact.
        name: String,
        /// Their public identity (`veilid1...`).
        identity: String,
    },
    /// List contacts with their fingerprints.
    List {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Remove a contact.
    Remove {
        /// The contact's name.
        name: String,
    },
}

fn main() {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("VEIL_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let code = match run(cli) {
        Ok(()) => 0,
        Err(e) => {
            let client = e.downcast_ref::<ClientError>();
            let usage = matches!(client, Some(ClientError::Usage(_) | ClientError::PasswordNeeded));
            if let Some(io) = e.downcast_ref::<std::io::Error>()
                && io.kind() == std::io::ErrorKind::BrokenPipe
            {
                std::process::exit(0);
            }
            let hint = client.map_or("", hint);
            eprintln!("veil: error: {}{hint}", escape_text(&format!("{e:#}")).replace("\\n", "\n"));
            if usage { 2 } else { 1 }
        }
    };
    std::process::exit(code);
}

pub(crate) fn relay_addr(home: &Home, flag: Option<String>) -> Result<RelayAddr> {
    let s = match flag.or_else(|| std::env::var("VEIL_RELAY").ok()).filter(|s| !s.is_empty()) {
        Some(s) => s,
        None => home.config()?.relay.unwrap_or_else(|| veil_client::DEFAULT_RELAY.to_string()),
    };
    Ok(RelayAddr::parse(&s)?)
}

/// The flag or variable that fixes a library error, added to its message.
pub(crate) fn hint(e: &ClientError) -> &'static str {
    match e {
        ClientError::Exists(_) => "; use --overwrite to replace it",
        ClientError::PasswordNeeded => " (--password or VEIL_PASSWORD)",
        _ => "",
    }
}

/// Connect to the relay; VEIL_RETRY_SECS sets how long a broken connection is retried.
pub(crate) async fn connect(addr: RelayAddr, home: &Home, identity: Option<Identity>) -> Result<Arc<Relay>> {
    let retry_budget = std::env::var("VEIL_RETRY_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(veil_client::conn::DEFAULT_RETRY_BUDGET, Duration::from_secs);
    Ok(Relay::connect_with(addr, home.clone(), ConnectOptions { identity, retry_budget }).await?)
}

pub(crate) fn parallel() -> usize {
    std::env::var("VEIL_PARALLEL").ok().and_then(|s| s.parse().ok()).unwrap_or(6)
}

pub(crate) fn wait() -> Duration {
    Duration::from_secs(std::env::var("VEIL_WAIT_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(3600))
}

#[tokio::main]
async fn run(cli: Cli) -> Result<()> {
    let home = Home::from_env();
    match cli.cmd {
        Cmd::Send { paths, text, relay, code, link, password, to, expire, max_downloads, json } => {
            let from_stdin = [text.as_deref(), code.as_deref()].iter().filter(|v| **v == Some("-")).count()
                + paths.iter().filter(|p| p.as_os_str() == "-").count();
            if from_stdin > 1 {
                return Err(
                    ClientError::Usage("only one of the data, --text and --code can come from `-`".into()).into()
                );
            }
            let text = match text {
                Some(t) => Some(arg_or_stdin(t, "text")?),
                None => env_secret("VEIL_TEXT").filter(|_| paths.is_empty()),
            };
            let code = match code {
                Some(c) => Some(arg_or_stdin(c, "code")?),
                None if !link && to.is_none() => env_secret("VEIL_CODE"),
                None => None,
            };
            let input = match (text, paths.as_slice()) {
                (Some(t), _) => SendInput::Text(t),
                (None, [p]) if p.as_os_str() == "-" => SendInput::Reader(Box::new(std::io::stdin())),
                (None, []) => {
                    return Err(ClientError::Usage("nothing to send: give files, folders, `-` or --text".into()).into());
                }
                (None, ps) => {
                    if ps.iter().any(|p| p.as_os_str() == "-") {
                        return Err(ClientError::Usage("`-` (stdin) cannot be mixed with files".into()).into());
                    }
                    SendInput::Paths(ps.to_vec())
                }
            };
            let mode = if let Some(to) = to {
                SendMode::To { recipient: Contacts::load(&home)?.resolve(&to)? }
            } else if link {
                let pw = if password { Some(read_secret("VEIL_PASSWORD", "Ticket password: ")?) } else { None };
                SendMode::Link { password: pw }
            } else {
                SendMode::Code(code)
            };
            let mine = identity::load_full(&home)?;
            let sender_name = mine
                .as_ref()
                .map(|(_, h)| veil_format::identity::normalize_handle(h))
                .filter(|h| veil_format::manifest::validate_sender_name(h).is_ok());
            let id = mine.map(|(id, _)| id);
            let signer = id.clone().unwrap_or_else(Identity::ephemeral);
            let addr = relay_addr(&home, relay)?;
            let relay = connect(addr, &home, id).await?;
            let events = ui::sink(if json { ui::Mode::Json } else { ui::Mode::Human }, "send");
            let opts = SendOptions {
                home,
                input,
                mode,
                expire,
                max_downloads,
                signer,
                sender_name,
                chunk_size: veil_format::chunk::DEFAULT_CHUNK_SIZE,
                parallel: parallel(),
            };
            let r = veil_client::send(relay.clone(), opts, events).await;
            relay.close().await;
            r?;
            Ok(())
        }
        Cmd::Receive { code, relay, out, yes, overwrite, accept_changed_key, json } => {
            let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
            if !yes && !interactive {
                return Err(ClientError::Usage(
                    "no terminal to ask for confirmation; pass --yes to accept without asking".into(),
                )
                .into());
            }
            let refused_key = Arc::new(AtomicBool::new(false));
            let consent = consent(yes, interactive, accept_changed_key, refused_key.clone());
            let Some(code) = code_input(code, "Code or ticket (Enter for your inbox): ")? else {
                return inbox::receive_all(&home, relay, out, overwrite, json, consent, refused_key).await;
            };
            let from = if veil_format::ticket::is_ticket(&code) {
                let (_, pw) = decode_ticket(&code)?;
                ReceiveFrom::Ticket(code, pw)
            } else {
                veil_format::code::Code::parse(&code)?;
                ReceiveFrom::Code(code)
            };
            let addr = relay_addr(&home, relay)?;
            let relay = connect(addr, &home, identity::load(&home)?).await?;
            let events = ui::sink(if json { ui::Mode::Json } else { ui::Mode::Human }, "receive");
            let opts = ReceiveOptions {
                home,
                from,
                out_dir: out,
                overwrite,
                parallel: parallel(),
                wait: wait(),
                consent,
                stream_out: stdout_writer(),
            };
            let r = veil_client::receive(relay.clone(), opts, events).await;
            relay.close().await;
            let r = r.map_err(|e| changed_key_error(e, &refused_key))?;
            print_text(r.text, json)?;
            Ok(())
        }
        Cmd::Inbox { relay, json } => inbox::list(&home, relay, json).await,
        Cmd::Contacts { cmd } => match cmd {
            ContactsCmd::Add { name, identity } => contacts_add(&home, &name, &identity),
            ContactsCmd::List { json } => contacts_list(&home, json),
            ContactsCmd::Remove { name } => {
                let mut c = Contacts::load(&home)?;
                if !c.remove(&name) {
                    return Err(
                        ClientError::Usage(format!("{} is not one of your contacts", escape_text(&name))).into()
                    );
                }
                c.save(&home)?;
                eprintln!("Removed {}", escape_text(&name));
                Ok(())
            }
        },
        Cmd::Stream { relay, code, viewers, record, expire, json } => {
            let addr = relay_addr(&home, relay)?;
            let relay = connect(addr, &home, identity::load(&home)?).await?;
            // stdout may be a pipe others read: stream events go to stderr unless --json.
            let events = ui::sink(if json { ui::Mode::Json } else { ui::Mode::Human }, "stream");
            let opts = veil_client::stream::PublishOptions {
                code,
                viewers,
                record: record.then_some(expire),
                ..Default::default()
            };
            let input = ThreadReader::spawn(raw_stdio(0)?, veil_client::stream::MAX_STREAM_MESSAGE)
                .context("starting the standard input reader")?;
            let r = veil_client::stream::publish(relay.clone(), opts, input, events).await;
            relay.close().await;
            r?;
            Ok(())
        }
        Cmd::Watch { code, from_start, relay } => {
            let Some(code) = code_input(code, "Code or ticket: ")? else {
                return Err(ClientError::Usage("give the stream's code or ticket (or `-`, VEIL_CODE)".into()).into());
            };
            let ticket = if veil_format::ticket::is_ticket(&code) {
                let (t, pw) = decode_ticket(&code)?;
                Some((t.transfer_id(), t.key(pw.as_deref())?))
            } else {
                veil_format::code::Code::parse(&code)?;
                None
            };
            let addr = relay_addr(&home, relay)?;
            let relay = connect(addr, &home, None).await?;
            // stdout carries the stream: human messages only, on stderr.
            let events = ui::sink(ui::Mode::Human, "watch");
            let out = ThreadWriter::spawn(raw_stdio(1)?).context("starting the standard output writer")?;
            let r = match ticket {
                Some((tid, key)) => {
                    veil_client::stream::watch_key(relay.clone(), tid, key, from_start, out, events).await
                }
                None => {
                    let opts = veil_client::stream::WatchOptions { from_start, wait: wait() };
                    veil_client::stream::watch(relay.clone(), &code, opts, out, events).await
                }
            };
            relay.close().await;
            r?;
            Ok(())
        }
        Cmd::Identity { cmd } => match cmd {
            IdentityCmd::New { handle, passphrase_file, i_know_it_is_weak, json } => {
                identity::new(&home, handle, passphrase_file, i_know_it_is_weak, json)
            }
            IdentityCmd::Show { json } => identity::show(&home, json),
            IdentityCmd::Export => identity::export(&home),
            IdentityCmd::Import { name, identity } => contacts_add(&home, &name, &identity),
        },
    }
}

/// Where a received `stdin` transfer goes.
pub(crate) fn stdout_writer() -> veil_client::receive::Output {
    Arc::new(std::sync::Mutex::new(std::io::stdout()))
}

/// Text of a received text transfer: JSON, escaped on a terminal, raw into a pipe.
fn print_text(text: Option<String>, json: bool) -> Result<()> {
    if let Some(t) = text {
        let mut so = std::io::stdout().lock();
        if json {
            writeln!(so, "{}", serde_json::json!({"event": "text", "text": t}))?;
        } else if std::io::stdout().is_terminal() {
            let safe: String = t.split('\n').map(escape_text).collect::<Vec<_>>().join("\n");
            writeln!(so, "{safe}")?;
        } else {
            so.write_all(t.as_bytes())?;
        }
    }
    Ok(())
}

/// The consent callback. A sender claiming a contact's name with another key is refused
/// unless `--accept-changed-key`, or on a terminal the user types "yes" (even with --yes).
fn consent(
    yes: bool,
    interactive: bool,
    accept_changed_key: bool,
    refused: Arc<AtomicBool>,
) -> veil_client::receive::Consent {
    Arc::new(move |o: &veil_client::Offer| {
        describe(o);
        if matches!(o.status, SenderStatus::ChangedKey { .. }) && !accept_changed_key {
            if interactive && ask_exact("Type \"yes\" to accept this transfer from the changed key anyway: ", "yes") {
                return true;
            }
            refused.store(true, Ordering::Relaxed);
            return false;
        }
        yes || ask("Accept? [y/N] ")
    })
}

fn changed_key_error(e: ClientError, refused: &AtomicBool) -> anyhow::Error {
    if matches!(e, ClientError::Declined) && refused.load(Ordering::Relaxed) {
        return anyhow::anyhow!(
            "refused: the sender claims a contact's name but its key changed (see the warning above); pass --accept-changed-key to receive anyway"
        );
    }
    e.into()
}

fn contacts_add(home: &Home, name: &str, id: &str) -> Result<()> {
    let public = veil_format::identity::PublicIdentity::decode(id)?;
    let mut c = Contacts::load(home)?;
    let n = c.add(name, &public)?;
    c.save(home)?;
    eprintln!("Added {} ({})", escape_text(&n), public.fingerprint());
    Ok(())
}

fn contacts_list(home: &Home, json: bool) -> Result<()> {
    let list = Contacts::load(home)?.list();
    let mut so = std::io::stdout().lock();
    if json {
        let v: Vec<_> = list
            .iter()
            .map(|(n, p)| serde_json::json!({"name": n, "fingerprint": p.fingerprint(), "identity": p.encode()}))
            .collect();
        writeln!(so, "{}", serde_json::Value::Array(v))?;
    } else if list.is_empty() {
        eprintln!("No contacts yet: `veil contacts add NAME IDENTITY`");
    } else {
        for (n, p) in list {
            writeln!(so, "{:<24} {}", escape_text(&n), p.fingerprint())?;
        }
    }
    Ok(())
}

/// "alice (verified contact)", or the fingerprint with what the sender claims.
pub(crate) fn sender_label(status: &SenderStatus, fingerprint: &str) -> String {
    match status {
        SenderStatus::Contact { name } => format!("{} (verified contact)", escape_text(name)),
        SenderStatus::ChangedKey { name, .. } => {
            format!("{fingerprint} (CLAIMS TO BE YOUR CONTACT {} BUT THE KEY CHANGED)", escape_text(name))
        }
        SenderStatus::Unknown { claimed: Some(c) } => {
            format!("{fingerprint} (calls itself \"{}\"; not one of your contacts)", escape_text(c))
        }
        _ => format!("{fingerprint} (unverified: not one of your contacts)"),
    }
}

fn describe(o: &veil_client::Offer) {
    use veil_format::manifest::EntryKind;
    let m = &o.manifest;
    let files = m.entries.iter().filter(|e| e.kind == EntryKind::File).count();
    if let SenderStatus::ChangedKey { name, known, presented } = &o.status {
        let name = escape_text(name);
        eprintln!("@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@");
        eprintln!("@    WARNING: THE IDENTITY OF YOUR CONTACT {name} HAS CHANGED!");
        eprintln!("@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@");
        eprintln!("The sender calls itself \"{name}\", one of your contacts, but signed with another key.");
        eprintln!("Someone may be impersonating {name}, or {name} made a new identity.");
        eprintln!("  key you know:  {known}");
        eprintln!("  key presented: {presented}");
        eprintln!("Compare fingerprints with {name} another way. If the new key is right:");
        eprintln!("  veil contacts remove {name} && veil contacts add {name} IDENTITY");
    }
    eprintln!("From: {}", sender_label(&o.status, &o.sender));
    eprintln!("Offering {} file(s), {}:", files, ui::human_bytes(m.total_size));
    for e in m.entries.iter().take(10) {
        eprintln!("  {}{}", escape_text(&e.path), if e.kind == EntryKind::Dir { "/" } else { "" });
    }
    if m.entries.len() > 10 {
        eprintln!("  ... and {} more", m.entries.len() - 10);
    }
}

fn ask_exact(prompt: &str, word: &str) -> bool {
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).is_ok() && line.trim() == word
}

fn ask(prompt: &str) -> bool {
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    if std::io::stdin().read_line(&mut line).is_err() {
        return false;
    }
    matches!(line.trim().to_lowercase().as_str(), "y" | "yes")
}

/// A non-empty environment variable.
fn env_secret(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// An argument that may be `-`: then one line (without its line end) from standard
/// input, for `what`.
fn arg_or_stdin(value: String, what: &str) -> Result<String> {
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
fn code_input(arg: Option<String>, prompt: &str) -> Result<Option<String>> {
    if let Some(a) = arg {
        return Ok(Some(arg_or_stdin(a, "code or ticket")?));
    }
    if let Some(v) = env_secret("VEIL_CODE").or_else(|| env_secret("VEIL_TICKET")) {
        return Ok(Some(v));
    }
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return Ok(None);
    }
    eprint!("{prompt}");
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).context("reading the code")?;
    let line = line.trim();
    Ok((!line.is_empty()).then(|| line.to_string()))
}

fn read_secret(env: &str, prompt: &str) -> Result<String> {
    if let Ok(v) = std::env::var(env) {
        return Ok(v);
    }
    if !std::io::stdin().is_terminal() {
        bail!("set {env} or run on a terminal to enter the password");
    }
    rpassword::prompt_password(prompt).context("reading the password")
}

/// Standard input (0) or output (1) as a plain file: no line buffering, no lock.
fn raw_stdio(fd: u8) -> anyhow::Result<std::fs::File> {
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
fn decode_ticket(code: &str) -> anyhow::Result<(veil_format::ticket::Ticket, Option<String>)> {
    let t = veil_format::ticket::Ticket::decode(code)?;
    let pw = if t.needs_password() { Some(read_secret("VEIL_PASSWORD", "Ticket password: ")?) } else { None };
    Ok((t, pw))
}
