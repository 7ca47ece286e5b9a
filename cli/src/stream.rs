//! `veil stream` and `veil watch`: live streams through the relay.

use crate::cli::{StreamArgs, WatchArgs};
use crate::common::{connect, relay_addr, wait};
use crate::identity;
use crate::input::{code_input, decode_ticket, raw_stdio};
use crate::{media, ui};
use anyhow::{Context, Result};
use veil_client::pipe::{ThreadReader, ThreadWriter};
use veil_client::{ClientError, Home};

/// `veil stream`: the screen, a file (both through ffmpeg) or standard input, live, to
/// the viewers.
pub(crate) async fn publish(home: Home, args: StreamArgs) -> Result<()> {
    let StreamArgs { screen, file, fps, size, duration, relay, code, viewers, record, expire, json, no_qr } = args;
    let capture = match (screen, file) {
        (true, _) => Some(media::Capture::Screen { display: std::env::var("DISPLAY").ok() }),
        (false, Some(p)) => {
            if !p.is_file() {
                return Err(ClientError::Usage(format!("{}: no such file", p.display())).into());
            }
            Some(media::Capture::File(p))
        }
        (false, None) => None,
    };
    let ffmpeg_args = match &capture {
        Some(c) => {
            let enc = media::Encoding { fps, size, seconds: duration.map(|d| d.as_secs_f64()) };
            media::require("ffmpeg")?;
            Some(media::ffmpeg_args(c, &enc, media::Os::current())?)
        }
        None => None,
    };
    let addr = relay_addr(&home, relay)?;
    let relay = connect(addr, &home, identity::load(&home)?).await?;
    // stdout may be a pipe others read: stream events go to stderr unless --json.
    let events = ui::sink_qr(if json { ui::Mode::Json } else { ui::Mode::Human }, "stream", !no_qr);
    let opts =
        veil_client::stream::PublishOptions { code, viewers, record: record.then_some(expire), ..Default::default() };
    let max = veil_client::stream::MAX_STREAM_MESSAGE;
    let (input, ffmpeg) = match ffmpeg_args {
        Some(a) => {
            let mut child = media::spawn_ffmpeg(&a, ui::quiet() || json)?;
            let Some(out) = child.stdout.take() else { anyhow::bail!("ffmpeg's output was not piped") };
            (ThreadReader::spawn(out, max).context("starting the ffmpeg reader")?, Some(child))
        }
        None => (ThreadReader::spawn(raw_stdio(0)?, max).context("starting the standard input reader")?, None),
    };
    let r = veil_client::stream::publish(relay.clone(), opts, input, events).await;
    relay.close().await;
    if let Some(mut child) = ffmpeg {
        if r.is_err() {
            let _ = child.kill();
        }
        let done = media::finish_ffmpeg(child);
        r?;
        return done;
    }
    r?;
    Ok(())
}

/// `veil watch`: a live or recorded stream to standard output.
pub(crate) async fn watch(home: Home, args: WatchArgs) -> Result<()> {
    let WatchArgs { code, from_start, play, relay } = args;
    // Find the player before anything else: a missing one is a clear error at once.
    let player = if play { Some(media::player()?) } else { None };
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
    let mut player = match player {
        Some((program, args)) => Some(media::spawn_player(&program, &args)?),
        None => None,
    };
    let out = match player.as_mut().and_then(|p| p.stdin.take()) {
        Some(stdin) => ThreadWriter::spawn(stdin).context("starting the player's writer")?,
        None => ThreadWriter::spawn(raw_stdio(1)?).context("starting the standard output writer")?,
    };
    let r = match ticket {
        Some((tid, key)) => veil_client::stream::watch_key(relay.clone(), tid, key, from_start, out, events).await,
        None => {
            let opts = veil_client::stream::WatchOptions { from_start, wait: wait() };
            veil_client::stream::watch(relay.clone(), &code, opts, out, events).await
        }
    };
    relay.close().await;
    if let Some(mut p) = player {
        // The writer is gone with the stream: the player sees the end and exits.
        let status = p.wait().context("waiting for the player")?;
        r?;
        if !status.success() {
            anyhow::bail!("the player exited with {status}");
        }
        return Ok(());
    }
    r?;
    Ok(())
}
