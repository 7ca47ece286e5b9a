//! Identity mode, receiving side: list the sealed keys waiting in our inbox on the relay,
//! open them locally, and delete entries once their transfer arrived. The relay only
//! lets a connection authenticated as the inbox's owner do this.

use crate::conn::Relay;
use crate::error::{ClientError, Result};
use bytes::Bytes;
use veil_format::identity::Identity;
use veil_format::manifest::{EntryKind, Manifest, VerifiedManifest};
use veil_format::sealed::open_sealed;
use veil_format::{Capabilities, ContentKey, TransferId};
use veil_wire::{ErrorCode, InboxEntryId, Request, Response};

/// Largest manifest fetched to describe an inbox entry (anyone can fill an inbox: a
/// listing must not fetch and hold 64 MiB per entry). Bigger ones are described as too
/// large and can still be received.
pub const LIST_MANIFEST_LIMIT: u32 = 1 << 20;
/// Names kept per entry in a listing.
pub const LIST_NAMES: usize = 10;

/// A transfer waiting for us: the opened sealed key and a summary of its verified
/// manifest (the manifest itself is not kept: it is fetched again to receive).
#[derive(Debug)]
pub struct Pending {
    /// Sender Ed25519 key (signed the sealed key).
    pub sender: [u8; 32],
    /// The transfer.
    pub tid: TransferId,
    /// Its content key.
    pub key: ContentKey,
    /// The name the sender claims (signed).
    pub sender_name: Option<String>,
    /// Files in the transfer.
    pub files: usize,
    /// Plaintext bytes.
    pub bytes: u64,
    /// The first [`LIST_NAMES`] names (raw: escape before printing).
    pub names: Vec<String>,
    /// Entries past those names.
    pub more_names: usize,
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

/// List and open everything in our inbox, oldest first. Publishes our key bundle first
/// (we are talking to the relay as ourselves anyway), so senders find our post-quantum
/// key; a relay that refuses it does not stop the listing.
pub async fn list(relay: &Relay) -> Result<Vec<InboxItem>> {
    let me = me(relay)?;
    if let Err(e) = crate::bundle::publish(relay).await {
        tracing::warn!(error = %e, "could not publish our key bundle");
    }
    let inbox = veil_wire::inbox_id(&me.public().ed25519);
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let (entries, more) = match relay.call(&Request::InboxList { inbox, after }, None).await? {
            (Response::Inbox { entries, more }, _) => (entries, more),
            _ => return Err(ClientError::UnexpectedAnswer { request: "an inbox listing" }),
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
    let answer = match relay.request_capped(&req, None, LIST_MANIFEST_LIMIT).await {
        Ok(r) => r,
        Err(ClientError::BodyTooLarge { .. }) => {
            return Err(ClientError::Usage(format!(
                "its manifest is larger than {} KiB, too large to preview; receive it to see its contents",
                LIST_MANIFEST_LIMIT >> 10
            )));
        }
        Err(e) => return Err(e),
    };
    let body: Bytes = match answer {
        (Response::Data { .. }, Some(b)) => b,
        (Response::Error(e), _) if e.code == ErrorCode::Timeout => {
            return Err(ClientError::PeerGone("the sender has not finished uploading this transfer".into()));
        }
        (Response::Error(e), _) => return Err(ClientError::Relay(e)),
        _ => return Err(ClientError::UnexpectedAnswer { request: "a manifest request" }),
    };
    let VerifiedManifest { manifest, signer, sender_name } =
        Manifest::open(&body, &u.key, &u.tid, Some(me.public().x25519))?;
    drop(body);
    if signer != u.sender {
        return Err(ClientError::Format(veil_format::FormatError::BadSignature));
    }
    let files = manifest.entries.iter().filter(|e| e.kind == EntryKind::File).count();
    let names: Vec<String> = manifest.entries.iter().take(LIST_NAMES).map(|e| e.path.clone()).collect();
    let more_names = manifest.entries.len().saturating_sub(names.len());
    Ok(Pending {
        sender: u.sender,
        tid: u.tid,
        key: u.key,
        sender_name,
        files,
        bytes: manifest.total_size,
        names,
        more_names,
    })
}

/// Delete one entry of our inbox.
pub async fn delete(relay: &Relay, entry: InboxEntryId) -> Result<()> {
    let inbox = veil_wire::inbox_id(&me(relay)?.public().ed25519);
    relay.call(&Request::InboxDelete { inbox, entry }, None).await?;
    Ok(())
}
