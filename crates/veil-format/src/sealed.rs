//! Sealing a content key to a recipient's X25519 identity (identity mode), signed by the
//! sender. Layout: `"VSEL" || version (1) || ephemeral X25519 public (32) || envelope`.
//! The envelope key is `KDF(BLAKE2b-256("veil seal v1\0" || X25519(e, R) || E || R), 1,
//! "veilsea1")`, its AD `"VSEL" || version || E || R`, and its plaintext `sender Ed25519
//! public (32) || signature (64) || tid (16) || K (32)`. The signature covers
//! `"veil seal v1\0" || E || R || tid || K`, so the relay never learns the sender and a
//! sealed key cannot be re-addressed.

use crate::chunk::{envelope_open, envelope_seal};
use crate::error::{FormatError, Result};
use crate::identity::{Identity, PublicIdentity};
use crate::kdf::{CTX_SEAL, blake2b_256, derive};
use crate::secret::{ContentKey, SecretKey, TransferId};
use crate::strict::ed25519_key;
use ed25519_dalek::{Signature, Signer, SigningKey};
use x25519_dalek::{PublicKey as XPublic, StaticSecret};
use zeroize::Zeroizing;

/// Magic of a sealed key.
pub const SEALED_MAGIC: &[u8; 4] = b"VSEL";
/// Current version.
pub const SEALED_VERSION: u8 = 1;
const DOMAIN: &[u8] = b"veil seal v1\0";

fn envelope_key(shared: &[u8; 32], e: &[u8; 32], r: &[u8; 32]) -> SecretKey {
    derive(&SecretKey::from_bytes(blake2b_256(&[DOMAIN, shared, e, r])), 1, CTX_SEAL)
}

fn ad(e: &[u8; 32], r: &[u8; 32]) -> Vec<u8> {
    let mut a = SEALED_MAGIC.to_vec();
    a.push(SEALED_VERSION);
    a.extend_from_slice(e);
    a.extend_from_slice(r);
    a
}

fn signed_msg(e: &[u8; 32], r: &[u8; 32], tid: &TransferId, key: &ContentKey) -> Zeroizing<Vec<u8>> {
    let mut m = Zeroizing::new(DOMAIN.to_vec());
    m.extend_from_slice(e);
    m.extend_from_slice(r);
    m.extend_from_slice(&tid.0);
    m.extend_from_slice(key.expose());
    m
}

/// Seal `(tid, key)` to `recipient`, signed by `sender`.
pub fn seal_to(recipient: &PublicIdentity, sender: &SigningKey, tid: &TransferId, key: &ContentKey) -> Result<Vec<u8>> {
    let mut eb = [0u8; 32];
    crate::random_bytes(&mut eb);
    seal_to_with(recipient, sender, tid, key, eb)
}

/// [`seal_to`] with a chosen ephemeral secret (test vectors only).
pub fn seal_to_with(
    recipient: &PublicIdentity,
    sender: &SigningKey,
    tid: &TransferId,
    key: &ContentKey,
    eph: [u8; 32],
) -> Result<Vec<u8>> {
    let esk = StaticSecret::from(eph);
    let e = XPublic::from(&esk).to_bytes();
    let r = recipient.x25519;
    let shared = esk.diffie_hellman(&XPublic::from(r));
    if !shared.was_contributory() {
        return Err(FormatError::InvalidIdentity("recipient key is a low-order point"));
    }
    let sig = sender.sign(&signed_msg(&e, &r, tid, key)).to_bytes();
    let mut plain = Zeroizing::new(Vec::with_capacity(144));
    plain.extend_from_slice(&sender.verifying_key().to_bytes());
    plain.extend_from_slice(&sig);
    plain.extend_from_slice(&tid.0);
    plain.extend_from_slice(key.expose());
    let mut out = SEALED_MAGIC.to_vec();
    out.push(SEALED_VERSION);
    out.extend_from_slice(&e);
    out.extend_from_slice(&envelope_seal(&envelope_key(shared.as_bytes(), &e, &r), &ad(&e, &r), &plain));
    Ok(out)
}

/// What opening a sealed key yields.
#[derive(Debug)]
pub struct Unsealed {
    /// Sender's Ed25519 key (verified signature).
    pub sender: [u8; 32],
    /// The transfer.
    pub tid: TransferId,
    /// Its content key.
    pub key: ContentKey,
}

/// Open a sealed key with our identity; checks the sender's signature.
pub fn open_sealed(me: &Identity, sealed: &[u8]) -> Result<Unsealed> {
    if sealed.len() < 37 {
        return Err(FormatError::Truncated { what: "sealed key", need: 37, have: sealed.len() });
    }
    if &sealed[..4] != SEALED_MAGIC {
        return Err(FormatError::Malformed { what: "sealed key", reason: "bad magic" });
    }
    if sealed[4] != SEALED_VERSION {
        return Err(FormatError::UnsupportedVersion { what: "sealed key", version: sealed[4] });
    }
    let mut e = [0u8; 32];
    e.copy_from_slice(&sealed[5..37]);
    let r = me.public().x25519;
    let shared = me.x25519_secret().diffie_hellman(&XPublic::from(e));
    if !shared.was_contributory() {
        return Err(FormatError::DecryptionFailed);
    }
    let plain = Zeroizing::new(envelope_open(&envelope_key(shared.as_bytes(), &e, &r), &ad(&e, &r), &sealed[37..])?);
    if plain.len() != 144 {
        return Err(FormatError::Malformed { what: "sealed key", reason: "wrong length" });
    }
    let mut sender = [0u8; 32];
    sender.copy_from_slice(&plain[..32]);
    let mut sig = [0u8; 64];
    sig.copy_from_slice(&plain[32..96]);
    let mut tid = [0u8; 16];
    tid.copy_from_slice(&plain[96..112]);
    let mut k = [0u8; 32];
    k.copy_from_slice(&plain[112..144]);
    let (tid, key) = (TransferId(tid), ContentKey::from_bytes(k));
    let vk = ed25519_key(&sender).ok_or(FormatError::BadSignature)?;
    vk.verify_strict(&signed_msg(&e, &r, &tid, &key), &Signature::from_bytes(&sig))
        .map_err(|_| FormatError::BadSignature)?;
    Ok(Unsealed { sender, tid, key })
}
