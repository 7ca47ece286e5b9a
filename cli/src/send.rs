//! `veil send`: files, folders, text or standard input, by code, ticket or to an identity.

use crate::cli::SendArgs;
use crate::common::{connect, parallel, relay_addr};
use crate::identity;
use crate::input::{arg_or_stdin, env_secret, read_secret};
use crate::ui;
use anyhow::Result;
use veil_client::{ClientError, Contacts, Home, SendInput, SendMode, SendOptions};
use veil_format::identity::Identity;

/// `veil send`.
pub(crate) async fn run(home: Home, args: SendArgs) -> Result<()> {
    let SendArgs { paths, text, relay, code, link, password, to, expire, max_downloads, json, no_qr } = args;
    let from_stdin = [text.as_deref(), code.as_deref()].iter().filter(|v| **v == Some("-")).count()
        + paths.iter().filter(|p| p.as_os_str() == "-").count();
    if from_stdin > 1 {
        return Err(ClientError::Usage("only one of the data, --text and --code can come from `-`".into()).into());
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
    let expire = crate::config::Settings::load(&home)?.expire(expire)?.value;
    let addr = relay_addr(&home, relay)?;
    let relay = connect(addr, &home, id).await?;
    let events = ui::sink_qr(if json { ui::Mode::Json } else { ui::Mode::Human }, "send", !no_qr);
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
