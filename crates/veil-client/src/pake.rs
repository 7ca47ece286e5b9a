//! The key exchange over a relay mailbox: SPAKE2, key confirmation, the post-quantum
//! hybrid step (ML-KEM-768 under the PAKE key) and key delivery, in the same two
//! messages per side as before the hybrid step (no extra round trip):
//!
//! ```text
//! sender -> receiver   SPAKE2 A (33)            receiver -> sender   SPAKE2 B (33)
//! receiver -> sender   confirmation (32) || offer: envelope(ML-KEM-768 ek) (1225)
//! sender -> receiver   confirmation (32) || ML-KEM ciphertext (1088) || delivery (90)
//! ```
//!
//! A peer that leaves the hybrid step out (an older veil, or a relay or attacker
//! stripping it) is refused and the nameplate burned.

use crate::conn::Mailbox;
use crate::error::{ClientError, Result};
use veil_format::code::{CONFIRM_LEN, Code, PQ_ANSWER_LEN, PQ_OFFER_LEN, PakeStart, Role};
use veil_format::{ContentKey, FormatError, TransferId};
use veil_wire::MailboxMsg;

// Both post-quantum messages fit one mailbox message.
const _: () = assert!(CONFIRM_LEN + PQ_OFFER_LEN <= veil_wire::MAX_MAILBOX_BODY);
const _: () = assert!(CONFIRM_LEN + PQ_ANSWER_LEN <= veil_wire::MAX_MAILBOX_BODY);

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
    burn_with(mb, FormatError::WrongCode).await
}

async fn burn_with(mb: &mut Mailbox, e: FormatError) -> ClientError {
    let _ = mb.send(&MailboxMsg::Burn).await;
    ClientError::Format(e)
}

/// Sender side: returns the verification string once the receiver holds `(tid, key)`.
/// The key is delivered only once `ready` says the relay registered the transfer.
pub async fn sender(
    mb: &mut Mailbox,
    code: &Code,
    tid: &TransferId,
    key: &ContentKey,
    ready: impl std::future::Future<Output = bool>,
) -> Result<String> {
    let (st, msg) = PakeStart::new(Role::Sender, code);
    mb.send(&MailboxMsg::Message(msg)).await?;
    let peer = next_message(mb).await?;
    let Ok(pk) = st.finish(&peer) else { return Err(burn(mb).await) };
    let reply = next_message(mb).await?;
    if reply.len() < CONFIRM_LEN || pk.verify_peer(&reply[..CONFIRM_LEN]).is_err() {
        return Err(burn(mb).await);
    }
    // The receiver knows the code; without its ML-KEM offer we would deliver K under a
    // classical key alone: refuse.
    if reply.len() != CONFIRM_LEN + PQ_OFFER_LEN {
        return Err(burn_with(mb, FormatError::PostQuantumMissing).await);
    }
    let (hybrid, ct) = match pk.pq_accept(&reply[CONFIRM_LEN..]) {
        Ok(x) => x,
        Err(e) => return Err(burn_with(mb, e).await),
    };
    if !ready.await {
        return Err(ClientError::Protocol("the relay did not register the transfer".into()));
    }
    let mut out = pk.confirmation().to_vec();
    out.extend_from_slice(&ct);
    out.extend_from_slice(&hybrid.seal_delivery(tid, key));
    mb.send(&MailboxMsg::Message(out)).await?;
    Ok(pk.verification_string())
}

/// Receiver side: returns `(tid, key, verification string)`.
pub async fn receiver(mb: &mut Mailbox, code: &Code) -> Result<(TransferId, ContentKey, String)> {
    let (st, msg) = PakeStart::new(Role::Receiver, code);
    mb.send(&MailboxMsg::Message(msg)).await?;
    let peer = next_message(mb).await?;
    let Ok(pk) = st.finish(&peer) else { return Err(burn(mb).await) };
    let (offer, offer_msg) = pk.pq_offer();
    let mut out = pk.confirmation().to_vec();
    out.extend_from_slice(&offer_msg);
    mb.send(&MailboxMsg::Message(out)).await?;
    let reply = next_message(mb).await?;
    if reply.len() < CONFIRM_LEN || pk.verify_peer(&reply[..CONFIRM_LEN]).is_err() {
        return Err(burn(mb).await);
    }
    // An old-style answer (confirmation || classical delivery) or anything else without
    // the ML-KEM ciphertext: the hybrid step was stripped.
    if reply.len() != CONFIRM_LEN + PQ_ANSWER_LEN {
        return Err(burn_with(mb, FormatError::PostQuantumMissing).await);
    }
    let (ct, delivery) = reply[CONFIRM_LEN..].split_at(PQ_ANSWER_LEN - veil_format::code::DELIVERY_LEN);
    let opened = offer.finish(ct).and_then(|hybrid| hybrid.open_delivery(delivery));
    let (tid, key) = match opened {
        Ok(x) => x,
        Err(_) => return Err(burn(mb).await),
    };
    Ok((tid, key, pk.verification_string()))
}
