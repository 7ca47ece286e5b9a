//! `veil stream` and `veil watch`: live streams through the relay.

use crate::cli::{StreamArgs, WatchArgs};
use crate::common::{connect, relay_addr, wait};
use crate::identity;
use crate::input::{code_input, decode_ticket, raw_stdio};
use crate::ui;
use anyhow::{Context, Result};
use veil_client::pipe::{ThreadReader, ThreadWriter};
use veil_client::{ClientError, Home};

/// `veil stream`: standard input, live, to the viewers.
pub(crate) async fn publish(home: Home, args: StreamArgs) -> Result<()> {
    let StreamArgs { relay, code, viewers, record, expire, json, no_qr } = args;
    let addr = relay_addr(&home, relay)?;
    let relay = connect(addr, &home, identity::load(&home)?).await?;
    // stdout may be a pipe others read: stream events go to stderr unless --json.
    let events = ui::sink_qr(if json { ui::Mode::Json } else { ui::Mode::Human }, "stream", !no_qr);
    let opts =
        veil_client::stream::PublishOptions { code, viewers, record: record.then_some(expire), ..Default::default() };
    let input = ThreadReader::spawn(raw_stdio(0)?, veil_client::stream::MAX_STREAM_MESSAGE)
        .context("starting the standard input reader")?;
    let r = veil_client::stream::publish(relay.clone(), opts, input, events).await;
    relay.close().await;
    r?;
    Ok(())
}

/// `veil watch`: a live or recorded stream to standard output.
pub(crate) async fn watch(home: Home, args: WatchArgs) -> Result<()> {
    let WatchArgs { code, from_start, relay } = args;
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
        Some((tid, key)) => veil_client::stream::watch_key(relay.clone(), tid, key, from_start, out, events).await,
        None => {
            let opts = veil_client::stream::WatchOptions { from_start, wait: wait() };
            veil_client::stream::watch(relay.clone(), &code, opts, out, events).await
        }
    };
    relay.close().await;
    r?;
    Ok(())
}
