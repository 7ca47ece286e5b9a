//! Key bundles (post-quantum identity keys): publishing ours on the relay beside our
//! inbox, and finding and checking a recipient's before sealing a key to it.
//!
//! A bundle is the owner's X-Wing public key signed by its Ed25519 key. A sender checks
//! it against the recipient's identity string (the `veilid2` form commits to the X-Wing
//! key); a bundle that does not belong to the identity is refused loudly, like a changed
//! contact key. For an old `veilid1` string the signature is all there is to check; the
//! first bundle that passes is then pinned in the contact (its identity upgraded to the
//! `veilid2` string), so a later substitution is refused.

use crate::conn::Relay;
use crate::contacts::Contacts;
use crate::error::{ClientError, Result};
use crate::home::Home;
use bytes::Bytes;
use veil_format::identity::PublicIdentity;
use veil_format::pq::KeyBundle;
use veil_wire::{ErrorCode, Request, Response};

// What we publish and seal fits what the relay keeps.
const _: () = assert!(veil_format::pq::BUNDLE_LEN <= veil_wire::MAX_BUNDLE_BODY as usize);
const _: () = assert!(veil_format::sealed::SEALED_LEN <= veil_wire::MAX_INBOX_BODY as usize);

/// Publish our key bundle (the relay keeps one per identity, replacing the last). The
/// connection authenticates as our identity when the relay asks.
pub async fn publish(relay: &Relay) -> Result<()> {
    let me = relay
        .identity()
        .ok_or_else(|| ClientError::Usage("publishing needs an identity: run `veil identity new` first".into()))?;
    let bundle = Bytes::from(me.key_bundle().encode());
    let len = bundle.len() as u32;
    relay.call(&Request::BundlePut { len }, Some(bundle)).await?;
    Ok(())
}

/// The bundle the relay holds for `recipient`, decoded (signature checked) but not yet
/// checked against the identity; `None` if none is published.
pub async fn fetch(relay: &Relay, recipient: &PublicIdentity) -> Result<Option<KeyBundle>> {
    let inbox = veil_wire::inbox_id(&recipient.ed25519);
    match relay.request(&Request::BundleGet { inbox }, None).await? {
        (Response::Data { .. }, Some(b)) => Ok(Some(KeyBundle::decode(&b).map_err(|e| match e {
            // A bundle that fails to parse or verify under the recipient's own key is as
            // bad as a substituted one.
            veil_format::FormatError::BadSignature => {
                veil_format::FormatError::KeyBundleMismatch { identity: recipient.fingerprint() }
            }
            other => other,
        })?)),
        (Response::Error(e), _) if e.code == ErrorCode::NotFound => Ok(None),
        (Response::Error(e), _) => Err(ClientError::Relay(e)),
        _ => Err(ClientError::UnexpectedAnswer { request: "a key bundle request" }),
    }
}

/// The checked bundle to seal a key to `recipient`: from the relay, checked against the
/// identity string (`KeyBundleMismatch` if it does not belong to it) and against what our
/// contacts pinned for that person. A bundle seen for a contact known by an old
/// `veilid1` string is pinned (the contact's identity becomes the `veilid2` string).
pub async fn for_recipient(relay: &Relay, home: &Home, recipient: &PublicIdentity) -> Result<KeyBundle> {
    let Some(bundle) = fetch(relay, recipient).await? else {
        return Err(ClientError::NoKeyBundle { recipient: recipient.fingerprint() });
    };
    bundle.check_for(recipient)?;
    let mut contacts = Contacts::load(home)?;
    if let Some(name) = contacts.by_key(&recipient.ed25519).map(str::to_string)
        && let Some(known) = contacts.get(&name)
    {
        bundle.check_for(&known)?;
        if known.xwing.is_none() {
            contacts.pin(&name, &bundle.identity())?;
            contacts.save(home)?;
        }
    }
    Ok(bundle)
}
