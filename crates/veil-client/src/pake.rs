//! The key exchange over a relay mailbox (SPAKE2 + key confirmation + key delivery).

use crate::conn::Mailbox;
use crate::error::{ClientError, Result};
use veil_format::code::{CONFIRM_LEN, Code, PakeStart, Role};
use veil_format::{ContentKey, FormatError, TransferId};
use veil_wire::MailboxMsg;

async fn next_message(mb: &mut Mailbox) -> Result<Vec<u8>> {
    loop {
        match mb.recv().await? {
            Some(MailboxMsg::Message(b)) => return Ok(b),
            Some(MailboxMsg::PeerJoined) => continue,
            Some(MailboxMsg::PeerGone) => {
                return Err(ClientError::PeerGone("the other side disconnected during the key exchange".into()));
            }
            Some(MailboxMsg::Burned) => return Err(ClientError::Format(FormatError::WrongCode)),
            Some(_) => return Err(ClientError::Protocol("unexpected mailbox frame".into())),
            None => return Err(ClientError::Transport("the relay closed the mailbox".into())),
        }
    }
}

async fn burn(mb: &mut Mailbox) -> ClientError {
    let _ = mb.send(&MailboxMsg::Burn).await;
    ClientError::Format(FormatError::WrongCode)
}

/// Sender side: returns the verification string once the receiver holds `(tid, key)`.
pub async fn sender(mb: &mut Mailbox, code: &Code, tid: &TransferId, key: &ContentKey) -> Result<String> {
    let (st, msg) = PakeStart::new(Role::Sender, code);
    mb.send(&MailboxMsg::Message(msg)).await?;
    let peer = next_message(mb).await?;
    let Ok(pk) = st.finish(&peer) else { return Err(burn(mb).await) };
    let confirm = next_message(mb).await?;
    if pk.verify_peer(&confirm).is_err() {
        return Err(burn(mb).await);
    }
    let mut out = pk.confirmation().to_vec();
    out.extend_from_slice(&pk.seal_delivery(tid, key));
    mb.send(&MailboxMsg::Message(out)).await?;
    Ok(pk.verification_string())
}

/// Receiver side: returns `(tid, key, verification string)`.
pub async fn receiver(mb: &mut Mailbox, code: &Code) -> Result<(TransferId, ContentKey, String)> {
    let (st, msg) = PakeStart::new(Role::Receiver, code);
    mb.send(&MailboxMsg::Message(msg)).await?;
    let peer = next_message(mb).await?;
    let Ok(pk) = st.finish(&peer) else { return Err(burn(mb).await) };
    mb.send(&MailboxMsg::Message(pk.confirmation().to_vec())).await?;
    let reply = next_message(mb).await?;
    if reply.len() < CONFIRM_LEN || pk.verify_peer(&reply[..CONFIRM_LEN]).is_err() {
        return Err(burn(mb).await);
    }
    let (tid, key) = pk.open_delivery(&reply[CONFIRM_LEN..])?;
    Ok((tid, key, pk.verification_string()))
}
