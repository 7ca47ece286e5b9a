//! Identity mode, receiving side: list the sealed keys waiting in our inbox on the relay,
//! open them locally, and delete entries once their transfer arrived. The relay only
//! lets a connection authenticated as the inbox's owner do this.

use crate::conn::Relay;
use crate::error::{ClientError, Result};
use bytes::Bytes;
use veil_format::identity::Identity;
use veil_format::manifest::{Manifest, VerifiedManifest};
use veil_format::sealed::open_sealed;
use veil_format::{Capabilities, ContentKey, TransferId};
use veil_wire::{ErrorCode, InboxEntryId, Request, Response};

/// A transfer waiting for us: the opened sealed key and, if the relay still has it, the
/// verified manifest (names and sizes, decrypted locally).
#[derive(Debug)]
pub struct Pending {
    /// Sender Ed25519 key (signed the sealed key).
    pub sender: [u8; 32],
    /// The transfer.
    pub tid: TransferId,
    /// Its content key.
    pub key: ContentKey,
    /// The manifest, verified for us and signed by the same sender.
    pub manifest: VerifiedManifest,
}

/// One inbox entry.
#[derive(Debug)]
pub struct InboxItem {
    /// Entry id on the relay.
    pub entry: InboxEntryId,
    /// Unix seconds when it was left.
    pub created: u64,
    /// The transfer, or why this entry cannot be received.
    pub pending: Result<Pending>,
}

/// The identity the relay connection is authenticated as.
fn me(relay: &Relay) -> Result<&Identity> {
    relay
        .identity()
        .ok_or_else(|| ClientError::Usage("the inbox needs an identity: run `veil identity new` first".into()))
}

/// List and open everything in our inbox, oldest first.
pub async fn list(relay: &Relay) -> Result<Vec<InboxItem>> {
    let me = me(relay)?;
    let inbox = veil_wire::inbox_id(&me.public().ed25519);
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let (entries, more) = match relay.call(&Request::InboxList { inbox, after }, None).await? {
            (Response::Inbox { entries, more }, _) => (entries, more),
            _ => return Err(ClientError::Protocol("unexpected answer to an inbox listing".into())),
        };
        after = entries.last().map(|e| e.id);
        for e in entries {
            let pending = open_entry(relay, me, &e.sealed).await;
            out.push(InboxItem { entry: e.id, created: e.created, pending });
        }
        if !more || after.is_none() {
            return Ok(out);
        }
    }
}

async fn open_entry(relay: &Relay, me: &Identity, sealed: &[u8]) -> Result<Pending> {
    let u = open_sealed(me, sealed)?;
    let caps = Capabilities::derive(&u.key);
    let req = Request::GetManifest { tid: u.tid.0, download: *caps.download.expose(), wait_secs: 0 };
    let body: Bytes = match relay.request(&req, None).await? {
        (Response::Data { .. }, Some(b)) => b,
        (Response::Error(e), _) if e.code == ErrorCode::Timeout => {
            return Err(ClientError::PeerGone("the sender has not finished uploading this transfer".into()));
        }
        (Response::Error(e), _) => return Err(ClientError::Relay(e)),
        _ => return Err(ClientError::Protocol("unexpected answer".into())),
    };
    let manifest = Manifest::open(&body, &u.key, &u.tid, Some(me.public().x25519))?;
    if manifest.signer != u.sender {
        return Err(ClientError::Format(veil_format::FormatError::BadSignature));
    }
    Ok(Pending { sender: u.sender, tid: u.tid, key: u.key, manifest })
}

/// Delete one entry of our inbox.
pub async fn delete(relay: &Relay, entry: InboxEntryId) -> Result<()> {
    let inbox = veil_wire::inbox_id(&me(relay)?.public().ed25519);
    relay.call(&Request::InboxDelete { inbox, entry }, None).await?;
    Ok(())
}
