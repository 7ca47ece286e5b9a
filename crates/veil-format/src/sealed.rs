//! Sealing a content key to a recipient's identity (identity mode), signed by the sender.
//!
//! Version 2 (what veil sends): X-Wing (X25519 + ML-KEM-768) to the recipient's key
//! bundle. `"VSEL" || 0x02 || X-Wing ciphertext (1120) || envelope`; the envelope key is
//! `KDF(BLAKE2b-256("veil seal v2\0" || ss || ct || C || R_ed), 1, "veilsea2")` with `C`
//! the commitment to the recipient's X-Wing key and `R_ed` its Ed25519 key; the AD is
//! `"VSEL" || 0x02 || C || R_ed`, the plaintext `sender Ed25519 public (32) || signature
//! (64) || tid (16) || K (32)`, and the signature covers
//! `"veil seal v2\0" || ct || C || R_ed || tid || K` (the encapsulation included).
//!
//! Version 1 (still opened, never sent): X25519 only. `"VSEL" || 0x01 || E (32) ||
//! envelope`, key `KDF(BLAKE2b-256("veil seal v1\0" || X25519(e, R) || E || R), 1,
//! "veilsea1")`, AD `"VSEL" || 0x01 || E || R`, the same plaintext, the signature over
//! `"veil seal v1\0" || E || R || tid || K`.
//!
//! Either way the relay never learns the sender and a sealed key cannot be re-addressed.

use crate::chunk::{envelope_open, envelope_seal};
use crate::error::{FormatError, Result};
use crate::identity::{Identity, PublicIdentity};
use crate::kdf::{CTX_SEAL, CTX_SEAL_XWING, blake2b_256, derive};
use crate::pq::{KeyBundle, XWING_CIPHERTEXT_LEN, XWING_RANDOMNESS_LEN};
use crate::secret::{ContentKey, SecretKey, TransferId};
use crate::strict::ed25519_key;
use ed25519_dalek::{Signature, Signer, SigningKey};
use x25519_dalek::{PublicKey as XPublic, StaticSecret};
use zeroize::Zeroizing;

/// Magic of a sealed key.
pub const SEALED_MAGIC: &[u8; 4] = b"VSEL";
/// The version veil seals with: X-Wing.
pub const SEALED_VERSION: u8 = 2;
/// The old X25519-only version (opened, never sealed).
pub const SEALED_VERSION_X25519: u8 = 1;
/// Bytes of a version 2 sealed key.
pub const SEALED_LEN: usize = 5 + XWING_CIPHERTEXT_LEN + 24 + 144 + 17;
const DOMAIN: &[u8] = b"veil seal v1\0";
const DOMAIN_V2: &[u8] = b"veil seal v2\0";

fn envelope_key(shared: &[u8; 32], e: &[u8; 32], r: &[u8; 32]) -> SecretKey {
    derive(&SecretKey::from_bytes(blake2b_256(&[DOMAIN, shared, e, r])), 1, CTX_SEAL)
}

fn ad(e: &[u8; 32], r: &[u8; 32]) -> Vec<u8> {
    let mut a = SEALED_MAGIC.to_vec();
    a.push(SEALED_VERSION_X25519);
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

fn v2_key(ss: &SecretKey, ct: &[u8], c: &[u8; 32], r_ed: &[u8; 32]) -> SecretKey {
    derive(&SecretKey::from_bytes(blake2b_256(&[DOMAIN_V2, ss.expose(), ct, c, r_ed])), 1, CTX_SEAL_XWING)
}

fn v2_ad(c: &[u8; 32], r_ed: &[u8; 32]) -> Vec<u8> {
    let mut a = SEALED_MAGIC.to_vec();
    a.push(SEALED_VERSION);
    a.extend_from_slice(c);
    a.extend_from_slice(r_ed);
    a
}

fn v2_signed_msg(ct: &[u8], c: &[u8; 32], r_ed: &[u8; 32], tid: &TransferId, key: &ContentKey) -> Zeroizing<Vec<u8>> {
    let mut m = Zeroizing::new(Vec::with_capacity(DOMAIN_V2.len() + ct.len() + 112));
    for part in [DOMAIN_V2, ct, c, r_ed, &tid.0, key.expose()] {
        m.extend_from_slice(part);
    }
    m
}

/// Seal `(tid, key)` to `recipient` with X-Wing, signed by `sender`. `bundle` must be the
/// recipient's key bundle: it is checked against `recipient` first (a substituted bundle
/// is `KeyBundleMismatch`).
pub fn seal_to(
    recipient: &PublicIdentity,
    bundle: &KeyBundle,
    sender: &SigningKey,
    tid: &TransferId,
    key: &ContentKey,
) -> Result<Vec<u8>> {
    let mut r = Zeroizing::new([0u8; XWING_RANDOMNESS_LEN]);
    crate::random_bytes(&mut r[..]);
    seal_to_with(recipient, bundle, sender, tid, key, &r, None)
}

/// [`seal_to`] with chosen X-Wing randomness and, optionally, envelope header (test
/// vectors only).
pub fn seal_to_with(
    recipient: &PublicIdentity,
    bundle: &KeyBundle,
    sender: &SigningKey,
    tid: &TransferId,
    key: &ContentKey,
    randomness: &[u8; XWING_RANDOMNESS_LEN],
    header: Option<[u8; 24]>,
) -> Result<Vec<u8>> {
    bundle.check_for(recipient)?;
    let (ct, ss) = bundle.xwing().encapsulate_with(randomness)?;
    let (c, r_ed) = (bundle.xwing().commitment(), recipient.ed25519);
    let sig = sender.sign(&v2_signed_msg(&ct, &c, &r_ed, tid, key)).to_bytes();
    let mut plain = Zeroizing::new(Vec::with_capacity(144));
    plain.extend_from_slice(&sender.verifying_key().to_bytes());
    plain.extend_from_slice(&sig);
    plain.extend_from_slice(&tid.0);
    plain.extend_from_slice(key.expose());
    let ek = v2_key(&ss, &ct, &c, &r_ed);
    let ad = v2_ad(&c, &r_ed);
    let mut out = Vec::with_capacity(SEALED_LEN);
    out.extend_from_slice(SEALED_MAGIC);
    out.push(SEALED_VERSION);
    out.extend_from_slice(&ct);
    out.extend_from_slice(&match header {
        Some(h) => crate::chunk::envelope_seal_with(&ek, &ad, &plain, h),
        None => envelope_seal(&ek, &ad, &plain),
    });
    Ok(out)
}

/// The old X25519-only sealing (version 1), with a chosen ephemeral secret: for test
/// vectors and compatibility tests only. veil never sends it ([`seal_to`] uses X-Wing).
pub fn seal_v1_with(
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
    out.push(SEALED_VERSION_X25519);
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

/// Open a sealed key (either version) with our identity; checks the sender's signature.
pub fn open_sealed(me: &Identity, sealed: &[u8]) -> Result<Unsealed> {
    if sealed.len() < 5 {
        return Err(FormatError::Truncated { what: "sealed key", need: 5, have: sealed.len() });
    }
    if &sealed[..4] != SEALED_MAGIC {
        return Err(FormatError::Malformed { what: "sealed key", reason: "bad magic" });
    }
    match sealed[4] {
        SEALED_VERSION => open_v2(me, sealed),
        SEALED_VERSION_X25519 => open_v1(me, sealed),
        v => Err(FormatError::UnsupportedVersion { what: "sealed key", version: v }),
    }
}

fn open_v2(me: &Identity, sealed: &[u8]) -> Result<Unsealed> {
    let need = 5 + XWING_CIPHERTEXT_LEN;
    if sealed.len() < need {
        return Err(FormatError::Truncated { what: "sealed key", need, have: sealed.len() });
    }
    let ct = &sealed[5..need];
    let ss = me.xwing_secret().decapsulate(ct)?;
    let (c, r_ed) = (me.xwing_secret().public().commitment(), me.public().ed25519);
    let plain = Zeroizing::new(envelope_open(&v2_key(&ss, ct, &c, &r_ed), &v2_ad(&c, &r_ed), &sealed[need..])?);
    let (sender, sig, tid, key) = split_plain(&plain)?;
    let vk = ed25519_key(&sender).ok_or(FormatError::BadSignature)?;
    vk.verify_strict(&v2_signed_msg(ct, &c, &r_ed, &tid, &key), &Signature::from_bytes(&sig))
        .map_err(|_| FormatError::BadSignature)?;
    Ok(Unsealed { sender, tid, key })
}

fn split_plain(plain: &[u8]) -> Result<([u8; 32], [u8; 64], TransferId, ContentKey)> {
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
    Ok((sender, sig, TransferId(tid), ContentKey::from_bytes(k)))
}

fn open_v1(me: &Identity, sealed: &[u8]) -> Result<Unsealed> {
    if sealed.len() < 37 {
        return Err(FormatError::Truncated { what: "sealed key", need: 37, have: sealed.len() });
    }
    let mut e = [0u8; 32];
    e.copy_from_slice(&sealed[5..37]);
    let r = me.public().x25519;
    let shared = me.x25519_secret().diffie_hellman(&XPublic::from(e));
    if !shared.was_contributory() {
        return Err(FormatError::DecryptionFailed);
    }
    let plain = Zeroizing::new(envelope_open(&envelope_key(shared.as_bytes(), &e, &r), &ad(&e, &r), &sealed[37..])?);
    let (sender, sig, tid, key) = split_plain(&plain)?;
    let vk = ed25519_key(&sender).ok_or(FormatError::BadSignature)?;
    vk.verify_strict(&signed_msg(&e, &r, &tid, &key), &Signature::from_bytes(&sig))
        .map_err(|_| FormatError::BadSignature)?;
    Ok(Unsealed { sender, tid, key })
}
