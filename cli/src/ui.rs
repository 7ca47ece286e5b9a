//! Turning library events into what a person or a script sees: progress bars on a
//! terminal, nothing when piped, one JSON object per line with `--json`.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use veil_client::{Event, EventSink};

/// How events are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `--json`: one object per line on stdout.
    Json,
    /// A person at a terminal (stderr).
    Human,
}

static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `--quiet`: from now on, show only codes, tickets, warnings, questions and errors.
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, std::sync::atomic::Ordering::Relaxed);
}

/// Whether `--quiet` was given.
pub fn quiet() -> bool {
    QUIET.load(std::sync::atomic::Ordering::Relaxed)
}

/// Build the event sink. `role` is "send" or "receive".
pub fn sink(mode: Mode, role: &'static str) -> EventSink {
    sink_qr(mode, role, false)
}

/// The event sink, with the code or ticket also drawn as a QR code when `qr` and
/// standard error is a terminal.
pub fn sink_qr(mode: Mode, role: &'static str, qr: bool) -> EventSink {
    let bar: Arc<Mutex<Option<ProgressBar>>> = Arc::new(Mutex::new(None));
    let tty = std::io::stderr().is_terminal();
    let show = Shown { role, tty, qr };
    Arc::new(move |e: Event| match mode {
        Mode::Json => {
            let mut out = std::io::stdout().lock();
            // A receiver's script gets one object per written file before the summary.
            if let Event::Done { files, .. } = &e
                && role == "receive"
            {
                for f in files {
                    let _ = writeln!(out, "{}", serde_json::json!({"event": "file", "path": f}));
                }
            }
            if let Ok(line) = serde_json::to_string(&e) {
                let _ = writeln!(out, "{line}");
            }
            let _ = out.flush();
        }
        Mode::Human => human(&e, show, &bar),
    })
}

/// Who is shown what: the command's role, whether standard error is a terminal, and
/// whether QR codes are wanted.
#[derive(Debug, Clone, Copy)]
struct Shown {
    role: &'static str,
    tty: bool,
    qr: bool,
}

fn human(e: &Event, show: Shown, bar: &Mutex<Option<ProgressBar>>) {
    let Shown { role, tty, qr } = show;
    if quiet() {
        match e {
            Event::Code { code } => eprintln!("{}", code.expose()),
            Event::Ticket { ticket, .. } => eprintln!("{}", ticket.expose()),
            Event::Warning { message } => eprintln!("warning: {message}"),
            _ => {}
        }
        return;
    }
    let mut g = match bar.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    let say = |s: String| match g.as_ref() {
        Some(b) => b.println(s),
        None => eprintln!("{s}"),
    };
    match e {
        Event::Code { code } => {
            let code = code.expose();
            say(format!("Code: {code}"));
            if role == "stream" {
                say(format!("Viewers run:\n\n    veil watch --play {code}      (or: veil watch {code} | mpv -)\n"));
            } else {
                say(format!("On the other machine run:\n\n    veil receive {code}\n"));
            }
            if let Some(art) = crate::qr::for_terminal(code, qr, tty) {
                say(format!("{art}\n"));
            }
        }
        Event::Ticket { ticket, url } => {
            let ticket = ticket.expose();
            say(format!("Ticket: {ticket}"));
            if let Some(url) = url {
                say(format!("Open in a browser: {}", url.expose()));
            }
            if role == "stream" {
                say(format!("Replay the recording (until it expires) with:\n\n    veil watch --from-start {ticket}\n"));
            } else {
                say(format!("The receiver runs:\n\n    veil receive {ticket}\n"));
            }
            // A phone scanning the browser link opens the page; else the ticket.
            let scanned = url.as_ref().map_or(ticket, |u| u.expose());
            if let Some(art) = crate::qr::for_terminal(scanned, qr, tty) {
                say(format!("{art}\n"));
            }
        }
        Event::Warning { message } => say(format!("warning: {message}")),
        Event::Waiting { what } if tty => say(format!("Waiting for the {what}...")),
        Event::KeyExchanged { verifier } => {
            say(format!("Connected. Verification words (compare with the other side): {verifier}"))
        }
        Event::Offer { .. } => {}
        Event::Delivered { recipient } => {
            say(format!("Left in the inbox of {recipient}: they receive it with `veil receive` (no code needed)."))
        }
        Event::Resumed { done, total } => {
            say(format!("Resuming: {} of {} already there", human_bytes(*done), human_bytes(*total)))
        }
        Event::Progress { done, total } if tty => {
            let b = g.get_or_insert_with(|| {
                let b = ProgressBar::new(*total);
                if let Ok(style) =
                    ProgressStyle::with_template("{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}")
                {
                    b.set_style(style.progress_chars("=> "));
                }
                b.set_prefix(if role == "send" { "sending  " } else { "receiving" });
                b
            });
            b.set_position(*done);
        }
        Event::Done { bytes, seconds, files } => {
            if let Some(b) = g.take() {
                b.finish_and_clear();
            }
            let rate = if *seconds > 0.0 { *bytes as f64 / seconds } else { 0.0 };
            if role == "stream" || role == "watch" {
                eprintln!("Stream ended cleanly after {}", human_bytes(*bytes));
                return;
            }
            let verb = if role == "send" { "Sent" } else { "Received" };
            eprintln!("{verb} {} in {:.1} s ({}/s)", human_bytes(*bytes), seconds, human_bytes(rate as u64));
            if role == "receive" {
                for f in files.iter().take(20) {
                    eprintln!("  {f}");
                }
                if files.len() > 20 {
                    eprintln!("  ... and {} more", files.len() - 20);
                }
            }
        }
        _ => {}
    }
}

/// `1.5 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{n} B") } else { format!("{v:.1} {}", UNITS[u]) }
}
