//! `veil receive`: by code or ticket (from the argument, `-`, the environment or a
//! prompt), or everything waiting in the inbox.

use crate::cli::ReceiveArgs;
use crate::common::{connect, parallel, print_text, relay_addr, stdout_writer, wait};
use crate::consent::{changed_key_error, consent};
use crate::input::{code_input, decode_ticket};
use crate::{identity, inbox, ui};
use anyhow::Result;
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use veil_client::{ClientError, Home, ReceiveFrom, ReceiveOptions};

/// `veil receive`.
pub(crate) async fn run(home: Home, args: ReceiveArgs) -> Result<()> {
    let ReceiveArgs { code, relay, out, yes, overwrite, accept_changed_key, json } = args;
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    if !yes && !interactive {
        return Err(ClientError::Usage(
            "no terminal to ask for confirmation; pass --yes to accept without asking".into(),
        )
        .into());
    }
    let out = crate::config::Settings::load(&home)?.out(out).value;
    let refused_key = Arc::new(AtomicBool::new(false));
    let consent = consent(yes, interactive, accept_changed_key, refused_key.clone());
    let Some(code) = code_input(code, "Code or ticket (Enter for your inbox): ")? else {
        let how = inbox::Receiving { out, overwrite, json, consent, refused_key };
        return inbox::receive_all(&home, relay, how).await;
    };
    let code = ticket_of_link(code);
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
    let stream_out = stdout_writer();
    let opts =
        ReceiveOptions { home, from, out_dir: out, overwrite, parallel: parallel(), wait: wait(), consent, stream_out };
    let r = veil_client::receive(relay.clone(), opts, events).await;
    relay.close().await;
    let r = r.map_err(|e| changed_key_error(e, &refused_key))?;
    print_text(r.text, json)?;
    Ok(())
}

/// A browser link `https://RELAY/#TICKET` (as `veil send --link` prints) is its ticket:
/// the fragment; anything else is taken as typed.
fn ticket_of_link(input: String) -> String {
    let t = input.trim();
    let is_link = ["https://", "http://"].iter().any(|p| t.get(..p.len()).is_some_and(|s| s.eq_ignore_ascii_case(p)));
    match t.split_once('#') {
        Some((_, fragment)) if is_link => fragment.to_string(),
        _ => input,
    }
}

#[cfg(test)]
mod tests {
    use super::ticket_of_link;

    #[test]
    fn links_are_their_fragment() {
        assert_eq!(ticket_of_link("https://relay.example:8443/#veil1-abc".into()), "veil1-abc");
        assert_eq!(ticket_of_link(" HTTPS://r/#veil1p-x ".into()), "veil1p-x");
        assert_eq!(ticket_of_link("veil1-abc".into()), "veil1-abc");
        assert_eq!(ticket_of_link("7-guitar-orbit".into()), "7-guitar-orbit");
    }
}
