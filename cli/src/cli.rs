//! The command line: clap definitions only. Each command's behaviour is in its module.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

/// veil: end-to-end encrypted file transfer through a blind relay.
///
/// Codes, tickets, passwords and `--text` given as arguments show in `ps` and in your
/// shell history. Each can also come from standard input (`-`), from an environment
/// variable (VEIL_CODE, VEIL_TICKET, VEIL_PASSWORD, VEIL_TEXT) or from a prompt.
///
/// Defaults (relay, output folder, expiry) can be kept in $VEIL_HOME/config.toml; `veil
/// config` shows the effective settings and where each came from.
// No Debug: the parsed arguments hold codes, tickets and text.
#[derive(Parser)]
#[command(version, after_help = AFTER_HELP)]
pub(crate) struct Cli {
    /// Only what you need: the code or ticket, questions and errors; no progress bars,
    /// QR codes or summaries.
    #[arg(long, short = 'q', global = true)]
    pub(crate) quiet: bool,
    #[command(subcommand)]
    pub(crate) cmd: Cmd,
}

/// The exit codes and environment, under `veil --help`.
pub(crate) const AFTER_HELP: &str = "\
Exit status:
  0  done (a transfer only when complete and authenticated)
  1  failed
  2  usage error (bad flags, code or config file; nothing to send)
  3  declined: you refused the transfer (or a sender whose key changed)

Environment: VEIL_RELAY, VEIL_HOME, VEIL_CODE, VEIL_TICKET, VEIL_TEXT, VEIL_PASSWORD,
VEIL_PASSPHRASE, VEIL_HANDLE, VEIL_LOG, NO_COLOR (no colours; veil prints none itself).";

#[derive(Subcommand)]
pub(crate) enum Cmd {
    /// Send files, folders, text or stdin (`-`).
    Send(SendArgs),
    /// Receive with a code or a ticket; without one, everything waiting in your inbox.
    Receive(ReceiveArgs),
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
    /// Stream live to viewers: your screen (--screen), a media file (--file) or standard
    /// input (`ffmpeg ... -f mpegts - | veil stream`).
    Stream(StreamArgs),
    /// Watch a live stream; the plaintext goes to standard output.
    Watch(WatchArgs),
    /// Your passphrase identity.
    Identity {
        #[command(subcommand)]
        cmd: IdentityCmd,
    },
    /// Show the effective settings and where each comes from (flag, environment,
    /// config file, default).
    Config {
        /// Relay address, as a command would be given it.
        #[arg(long)]
        relay: Option<String>,
        /// Output folder, as `veil receive --out`.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Expiry, as `veil send --expire`.
        #[arg(long, value_parser = humantime::parse_duration)]
        expire: Option<Duration>,
        /// One JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish).
    ///
    /// bash: `veil completions bash > ~/.local/share/bash-completion/completions/veil`;
    /// zsh: `veil completions zsh > ~/.zfunc/_veil` (with `fpath+=~/.zfunc` before
    /// `compinit`); fish: `veil completions fish > ~/.config/fish/completions/veil.fish`;
    /// PowerShell: `veil completions powershell >> $PROFILE`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page, or write one per command into DIR (`veil man ~/.local/share/man/man1`).
    Man {
        /// Folder for veil.1, veil-send.1, ... (without it: veil.1 on standard output).
        dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
pub(crate) enum IdentityCmd {
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
    Export {
        /// Also write your key bundle (your post-quantum public key, signed) to this
        /// file, for `veil contacts add NAME --bundle FILE` on a machine without the relay.
        #[arg(long)]
        bundle: Option<PathBuf>,
    },
    /// Publish your key bundle (post-quantum public key) on the relay, so people can send
    /// to you with `send --to` (`veil inbox` does it too).
    Publish {
        /// Relay address `host:port[#sha256]` (default: VEIL_RELAY, config, 127.0.0.1:4433).
        #[arg(long)]
        relay: Option<String>,
    },
    /// Add someone's public identity as a contact (same as `veil contacts add`).
    Import {
        /// Name for the contact.
        name: String,
        /// Their public identity (`veilid2...`, or the older `veilid1...`).
        identity: String,
    },
}

#[derive(Subcommand)]
pub(crate) enum ContactsCmd {
    /// Add a contact.
    Add {
        /// Name for the contact.
        name: String,
        /// Their public identity (`veilid2...`, or the older `veilid1...`); optional with
        /// --bundle, which then must match it.
        #[arg(required_unless_present = "bundle")]
        identity: Option<String>,
        /// Their key bundle file (from `veil identity export --bundle FILE`): adds the
        /// identity it belongs to, after checking its signature.
        #[arg(long)]
        bundle: Option<PathBuf>,
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

// Arguments of `veil send`.
#[derive(Args)]
pub(crate) struct SendArgs {
    /// Files or folders; `-` reads standard input.
    pub(crate) paths: Vec<PathBuf>,
    /// Send this text instead of files (`-`: read it from standard input; VEIL_TEXT
    /// also works and stays out of `ps`).
    #[arg(long, conflicts_with = "paths")]
    pub(crate) text: Option<String>,
    /// Relay address `host:port[#sha256]` (default: VEIL_RELAY, config, 127.0.0.1:4433).
    #[arg(long)]
    pub(crate) relay: Option<String>,
    /// Use this code (`<number>-<word>-<word>`) instead of a generated one (`-`: read
    /// it from standard input; VEIL_CODE also works and stays out of `ps`).
    #[arg(long, conflicts_with = "link")]
    pub(crate) code: Option<String>,
    /// Make a ticket for a receiver who comes later, instead of a code.
    #[arg(long)]
    pub(crate) link: bool,
    /// Protect the ticket with a password (read from VEIL_PASSWORD or a prompt).
    #[arg(long, requires = "link")]
    pub(crate) password: bool,
    /// Send to a person: a contact name or a public identity (`veilid2...`). The key
    /// is left sealed in their inbox on the relay; they may be offline.
    #[arg(long, conflicts_with_all = ["code", "link"])]
    pub(crate) to: Option<String>,
    /// Delete from the relay after this long (default: `expire` in config.toml, else 24h).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub(crate) expire: Option<Duration>,
    /// Allow this many complete downloads.
    #[arg(long)]
    pub(crate) max_downloads: Option<u32>,
    /// One JSON object per line on stdout.
    #[arg(long)]
    pub(crate) json: bool,
    /// Do not draw the code or ticket as a QR code (drawn only on a terminal).
    #[arg(long)]
    pub(crate) no_qr: bool,
}

// Arguments of `veil receive`.
#[derive(Args)]
pub(crate) struct ReceiveArgs {
    /// The code or ticket from the sender. `-` reads it from standard input; without
    /// it, VEIL_CODE or VEIL_TICKET, else a prompt on a terminal (an empty answer, or
    /// no terminal, fetches your inbox). Only the argument shows in `ps`.
    pub(crate) code: Option<String>,
    /// Relay address.
    #[arg(long)]
    pub(crate) relay: Option<String>,
    /// Output folder (default: `out` in config.toml, else the current folder).
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
    /// Accept without asking.
    #[arg(long, short = 'y')]
    pub(crate) yes: bool,
    /// Replace existing files.
    #[arg(long)]
    pub(crate) overwrite: bool,
    /// Accept a sender that claims a contact's name but signed with another key.
    /// Without it such a transfer is refused, or on a terminal needs a typed "yes"
    /// (even with --yes).
    #[arg(long)]
    pub(crate) accept_changed_key: bool,
    /// One JSON object per line on stdout.
    #[arg(long)]
    pub(crate) json: bool,
}

// Arguments of `veil stream`.
#[derive(Args)]
#[command(group = clap::ArgGroup::new("source").args(["screen", "file"]))]
pub(crate) struct StreamArgs {
    /// Stream your screen: ffmpeg captures it (x11grab of $DISPLAY on Linux, avfoundation
    /// on macOS, gdigrab on Windows) and encodes H.264 (ultrafast, zerolatency) in MPEG-TS.
    /// The ffmpeg command is printed.
    #[arg(long)]
    pub(crate) screen: bool,
    /// Stream a media file at its own pace (ffmpeg -re, H.264 + AAC in MPEG-TS).
    #[arg(long, value_name = "PATH")]
    pub(crate) file: Option<PathBuf>,
    /// Frames per second of --screen.
    #[arg(long, default_value_t = 30, requires = "source", value_parser = clap::value_parser!(u32).range(1..=120))]
    pub(crate) fps: u32,
    /// Scale the video to WIDTHxHEIGHT (e.g. 1280x720).
    #[arg(long, requires = "source", value_parser = crate::media::parse_size)]
    pub(crate) size: Option<(u32, u32)>,
    /// With --screen or --file: stop after this long (e.g. 30s, 5m).
    #[arg(long, requires = "source", value_parser = humantime::parse_duration)]
    pub(crate) duration: Option<Duration>,
    /// Relay address.
    #[arg(long)]
    pub(crate) relay: Option<String>,
    /// Use this code instead of a generated one.
    #[arg(long)]
    pub(crate) code: Option<String>,
    /// How many viewers may join (each with its own key exchange).
    #[arg(long, default_value_t = 1)]
    pub(crate) viewers: u32,
    /// Keep the encrypted segments on the relay so the stream can be replayed
    /// (`veil watch --from-start`, also with the printed ticket once you are gone).
    /// A recorded stream starts at once instead of waiting for the first viewer.
    #[arg(long)]
    pub(crate) record: bool,
    /// With --record: delete the recording from the relay after this long.
    #[arg(long, default_value = "24h", value_parser = humantime::parse_duration, requires = "record")]
    pub(crate) expire: Duration,
    /// One JSON object per line on stdout.
    #[arg(long)]
    pub(crate) json: bool,
    /// Do not draw the code or ticket as a QR code (drawn only on a terminal).
    #[arg(long)]
    pub(crate) no_qr: bool,
}

// Arguments of `veil watch`.
#[derive(Args)]
pub(crate) struct WatchArgs {
    /// The code from the publisher, or the ticket of a recorded stream (`-`: read it
    /// from standard input; without it, VEIL_CODE or VEIL_TICKET, else a prompt).
    pub(crate) code: Option<String>,
    /// Replay a recorded stream from its beginning, then follow it live.
    #[arg(long)]
    pub(crate) from_start: bool,
    /// Play it: pipe the stream into mpv, else ffplay (VEIL_PLAYER overrides: a command
    /// reading the stream on its standard input).
    #[arg(long)]
    pub(crate) play: bool,
    /// Relay address.
    #[arg(long)]
    pub(crate) relay: Option<String>,
}
