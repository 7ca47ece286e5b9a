//! Post-quantum keys: X-Wing (X25519 + ML-KEM-768, RustCrypto `x-wing`) for identities
//! and sealed keys, and ML-KEM-768 (RustCrypto `ml-kem`) for the hybrid step after the
//! code PAKE. No lattice code here: only key derivation, encodings and the key bundle.
//!
//! An identity's X-Wing key pair comes deterministically from its seed
//! (`KDF(seed, 3, "veilid01")` is the 32-byte X-Wing decapsulation key), so the same
//! passphrase gives the same X-Wing key on any device. Its public half (1216 bytes) is too
//! long for an identity string: the `veilid2` string carries a 32-byte commitment to it,
//! and the owner publishes a [`KeyBundle`] (the X-Wing public key signed by its Ed25519
//! key) that a sender fetches and checks against the string before use.

use crate::error::{FormatError, Result};
use crate::kdf::blake2b_256;
use crate::secret::SecretKey;
use crate::strict::ed25519_key;
use ed25519_dalek::{Signature, Signer, SigningKey};
use ml_kem::{Decapsulate as _, KeyExport as _};
use x_wing::{Decapsulator as _, TryDecapsulate as _};
use zeroize::{Zeroize, Zeroizing};

/// Bytes of an X-Wing public (encapsulation) key: ML-KEM-768 (1184) then X25519 (32).
pub const XWING_PUBLIC_LEN: usize = x_wing::ENCAPSULATION_KEY_SIZE;
/// Bytes of an X-Wing ciphertext: ML-KEM-768 (1088) then X25519 (32).
pub const XWING_CIPHERTEXT_LEN: usize = x_wing::CIPHERTEXT_SIZE;
/// Bytes of randomness one X-Wing encapsulation draws (32 for ML-KEM, then 32 for X25519).
pub const XWING_RANDOMNESS_LEN: usize = x_wing::ENCAPSULATION_RANDOMNESS_SIZE;
/// Bytes of an ML-KEM-768 encapsulation key.
pub const MLKEM_PUBLIC_LEN: usize = 1184;
/// Bytes of an ML-KEM-768 ciphertext.
pub const MLKEM_CIPHERTEXT_LEN: usize = 1088;
/// Bytes of an ML-KEM-768 key-generation seed (`d || z`, FIPS 203).
pub const MLKEM_SEED_LEN: usize = 64;

/// Domain string of the commitment to an X-Wing public key.
const COMMIT_DOMAIN: &[u8] = b"veil xwing key v1\0";

/// The X-Wing secret of an identity. `Debug` shows nothing secret; zeroized on drop.
#[derive(Clone)]
pub struct XWingSecret(x_wing::DecapsulationKeyRejectNonContrib);

impl std::fmt::Debug for XWingSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("XWingSecret(..)")
    }
}

impl XWingSecret {
    /// The key pair whose 32-byte decapsulation key is `sk` (X-Wing expands it with
    /// SHAKE256 into an ML-KEM-768 seed and an X25519 secret).
    pub fn from_bytes(sk: &SecretKey) -> XWingSecret {
        XWingSecret(x_wing::DecapsulationKeyRejectNonContrib::from(*sk.expose()))
    }

    /// The public (encapsulation) key.
    pub fn public(&self) -> XWingPublic {
        let bytes = x_wing::KeyExport::to_bytes(self.0.encapsulation_key());
        let mut out = [0u8; XWING_PUBLIC_LEN];
        out.copy_from_slice(&bytes);
        XWingPublic(Box::new(out))
    }

    /// Decapsulate: the 32-byte shared secret. A ciphertext of the wrong length or one
    /// whose X25519 half gives an all-zero (non-contributory) result is
    /// `DecryptionFailed`; any other ciphertext yields some secret (ML-KEM's implicit
    /// rejection), which then fails to open whatever it keys.
    pub fn decapsulate(&self, ct: &[u8]) -> Result<SecretKey> {
        let ct = x_wing::Ciphertext::try_from(ct).map_err(|_| FormatError::DecryptionFailed)?;
        let mut ss = self.0.try_decapsulate(&ct).map_err(|_| FormatError::DecryptionFailed)?;
        Ok(secret_from(&mut ss))
    }
}

/// An X-Wing public (encapsulation) key, checked to parse (the ML-KEM-768 half passes
/// FIPS 203's modulus check).
#[derive(Clone, PartialEq, Eq)]
pub struct XWingPublic(Box<[u8; XWING_PUBLIC_LEN]>);

impl std::fmt::Debug for XWingPublic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "XWingPublic({})", data_encoding::HEXLOWER.encode(&self.commitment()[..8]))
    }
}

impl XWingPublic {
    /// Parse 1216 bytes.
    pub fn from_bytes(b: &[u8]) -> Result<XWingPublic> {
        if b.len() != XWING_PUBLIC_LEN {
            return Err(FormatError::Malformed { what: "X-Wing public key", reason: "wrong length" });
        }
        x_wing::EncapsulationKey::try_from(b)
            .map_err(|_| FormatError::Malformed { what: "X-Wing public key", reason: "not a valid key" })?;
        let mut out = [0u8; XWING_PUBLIC_LEN];
        out.copy_from_slice(b);
        Ok(XWingPublic(Box::new(out)))
    }

    /// The raw 1216 bytes.
    pub fn as_bytes(&self) -> &[u8; XWING_PUBLIC_LEN] {
        &self.0
    }

    /// What a `veilid2` string carries: `BLAKE2b-256("veil xwing key v1\0" || key)`.
    pub fn commitment(&self) -> [u8; 32] {
        blake2b_256(&[COMMIT_DOMAIN, &self.0[..]])
    }

    fn key(&self) -> Result<x_wing::EncapsulationKey> {
        x_wing::EncapsulationKey::try_from(&self.0[..])
            .map_err(|_| FormatError::Malformed { what: "X-Wing public key", reason: "not a valid key" })
    }

    /// Encapsulate with 64 fresh random bytes: `(ciphertext (1120), shared secret)`.
    pub fn encapsulate(&self) -> Result<(Vec<u8>, SecretKey)> {
        let mut r = Zeroizing::new([0u8; XWING_RANDOMNESS_LEN]);
        crate::random_bytes(&mut r[..]);
        self.encapsulate_with(&r)
    }

    /// [`XWingPublic::encapsulate`] with chosen randomness (test vectors only): the first
    /// 32 bytes are ML-KEM's `m`, the last 32 the ephemeral X25519 secret.
    pub fn encapsulate_with(&self, randomness: &[u8; XWING_RANDOMNESS_LEN]) -> Result<(Vec<u8>, SecretKey)> {
        let mut r = x_wing::kem::common::array::Array::from(*randomness);
        let (ct, mut ss) = self.key()?.encapsulate_deterministic(&r);
        r.zeroize();
        Ok((ct.to_vec(), secret_from(&mut ss)))
    }
}

/// A fresh ML-KEM-768 key pair for one code-mode exchange. Zeroized on drop.
pub struct MlKemSecret(ml_kem::ml_kem_768::DecapsulationKey);

impl std::fmt::Debug for MlKemSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MlKemSecret(..)")
    }
}

impl MlKemSecret {
    /// A key pair from 64 random bytes.
    pub fn random() -> MlKemSecret {
        let mut seed = Zeroizing::new([0u8; MLKEM_SEED_LEN]);
        crate::random_bytes(&mut seed[..]);
        Self::from_seed(&seed)
    }

    /// The key pair of a 64-byte seed `d || z` (FIPS 203 `ML-KEM.KeyGen_internal`).
    pub fn from_seed(seed: &[u8; MLKEM_SEED_LEN]) -> MlKemSecret {
        MlKemSecret(ml_kem::ml_kem_768::DecapsulationKey::from_seed(ml_kem::Seed::from(*seed)))
    }

    /// The 1184-byte encapsulation key.
    pub fn public(&self) -> Vec<u8> {
        self.0.encapsulation_key().to_bytes().to_vec()
    }

    /// Decapsulate a 1088-byte ciphertext (implicit rejection: a wrong ciphertext gives
    /// an unrelated secret). Wrong length: `Malformed`.
    pub fn decapsulate(&self, ct: &[u8]) -> Result<SecretKey> {
        let ct = ml_kem::ml_kem_768::Ciphertext::try_from(ct)
            .map_err(|_| FormatError::Malformed { what: "ML-KEM ciphertext", reason: "wrong length" })?;
        let mut ss = self.0.decapsulate(&ct);
        Ok(secret_from(&mut ss))
    }
}

/// Encapsulate to an ML-KEM-768 encapsulation key with `m` (32 bytes; random in real use):
/// `(ciphertext (1088), shared secret)`. A key of the wrong length or that fails the
/// modulus check is `Malformed`.
pub fn mlkem_encapsulate_with(ek: &[u8], m: &[u8; 32]) -> Result<(Vec<u8>, SecretKey)> {
    let bad = || FormatError::Malformed { what: "ML-KEM encapsulation key", reason: "not a valid key" };
    let arr = ml_kem::kem::Key::<ml_kem::ml_kem_768::EncapsulationKey>::try_from(ek).map_err(|_| bad())?;
    let key = ml_kem::ml_kem_768::EncapsulationKey::new(&arr).map_err(|_| bad())?;
    let mut m = ml_kem::B32::from(*m);
    let (ct, mut ss) = key.encapsulate_deterministic(&m);
    m.zeroize();
    Ok((ct.to_vec(), secret_from(&mut ss)))
}

/// Move a KEM's 32-byte shared secret into a [`SecretKey`], wiping the crate's copy.
fn secret_from(ss: &mut ml_kem::SharedKey) -> SecretKey {
    let mut out = [0u8; 32];
    out.copy_from_slice(ss);
    ss.zeroize();
    SecretKey::from_bytes(out)
}

/// [`mlkem_encapsulate_with`] with 32 fresh random bytes.
pub fn mlkem_encapsulate(ek: &[u8]) -> Result<(Vec<u8>, SecretKey)> {
    let mut m = Zeroizing::new([0u8; 32]);
    crate::random_bytes(&mut m[..]);
    mlkem_encapsulate_with(ek, &m)
}

/// Magic of a key bundle.
pub const BUNDLE_MAGIC: &[u8; 4] = b"VKEY";
/// Current key-bundle version.
pub const BUNDLE_VERSION: u8 = 1;
/// Bytes of a key bundle: magic, version, Ed25519, X25519, X-Wing, signature.
pub const BUNDLE_LEN: usize = 4 + 1 + 32 + 32 + XWING_PUBLIC_LEN + 64;
const BUNDLE_DOMAIN: &[u8] = b"veil key bundle v1\0";

/// An identity's published keys: its X-Wing public key, signed by its Ed25519 key.
/// Decoding checks the signature; [`KeyBundle::check_for`] checks it belongs to an
/// identity string.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyBundle {
    ed25519: [u8; 32],
    x25519: [u8; 32],
    xwing: XWingPublic,
    signature: [u8; 64],
}

impl std::fmt::Debug for KeyBundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyBundle({})", crate::identity::fingerprint_of(&self.ed25519))
    }
}

fn bundle_message(ed25519: &[u8; 32], x25519: &[u8; 32], xwing: &XWingPublic) -> Vec<u8> {
    let mut m = Vec::with_capacity(BUNDLE_DOMAIN.len() + 64 + XWING_PUBLIC_LEN);
    m.extend_from_slice(BUNDLE_DOMAIN);
    m.extend_from_slice(ed25519);
    m.extend_from_slice(x25519);
    m.extend_from_slice(xwing.as_bytes());
    m
}

impl KeyBundle {
    /// Sign a bundle of these public keys with `signing` (whose public key is `ed25519`).
    pub(crate) fn sign(signing: &SigningKey, x25519: [u8; 32], xwing: XWingPublic) -> KeyBundle {
        let ed25519 = signing.verifying_key().to_bytes();
        let signature = signing.sign(&bundle_message(&ed25519, &x25519, &xwing)).to_bytes();
        KeyBundle { ed25519, x25519, xwing, signature }
    }

    /// `"VKEY" || 0x01 || ed25519 (32) || x25519 (32) || xwing (1216) || signature (64)`.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(BUNDLE_LEN);
        b.extend_from_slice(BUNDLE_MAGIC);
        b.push(BUNDLE_VERSION);
        b.extend_from_slice(&self.ed25519);
        b.extend_from_slice(&self.x25519);
        b.extend_from_slice(self.xwing.as_bytes());
        b.extend_from_slice(&self.signature);
        b
    }

    /// Parse and verify a bundle (exact length, magic, version, a valid Ed25519 key, a
    /// valid X-Wing key and a signature that passes `verify_strict`).
    pub fn decode(b: &[u8]) -> Result<KeyBundle> {
        if b.len() < 5 {
            return Err(FormatError::Truncated { what: "key bundle", need: 5, have: b.len() });
        }
        if &b[..4] != BUNDLE_MAGIC {
            return Err(FormatError::Malformed { what: "key bundle", reason: "bad magic" });
        }
        if b[4] != BUNDLE_VERSION {
            return Err(FormatError::UnsupportedVersion { what: "key bundle", version: b[4] });
        }
        if b.len() != BUNDLE_LEN {
            return Err(FormatError::Malformed { what: "key bundle", reason: "wrong length" });
        }
        let mut ed25519 = [0u8; 32];
        ed25519.copy_from_slice(&b[5..37]);
        let mut x25519 = [0u8; 32];
        x25519.copy_from_slice(&b[37..69]);
        let xwing = XWingPublic::from_bytes(&b[69..69 + XWING_PUBLIC_LEN])?;
        let mut signature = [0u8; 64];
        signature.copy_from_slice(&b[69 + XWING_PUBLIC_LEN..]);
        let vk = ed25519_key(&ed25519).ok_or(FormatError::BadSignature)?;
        vk.verify_strict(&bundle_message(&ed25519, &x25519, &xwing), &Signature::from_bytes(&signature))
            .map_err(|_| FormatError::BadSignature)?;
        Ok(KeyBundle { ed25519, x25519, xwing, signature })
    }

    /// The Ed25519 key that signed it.
    pub fn ed25519(&self) -> &[u8; 32] {
        &self.ed25519
    }

    /// The X-Wing key (check [`KeyBundle::check_for`] before sealing to it).
    pub fn xwing(&self) -> &XWingPublic {
        &self.xwing
    }

    /// The `veilid2` identity this bundle belongs to.
    pub fn identity(&self) -> crate::identity::PublicIdentity {
        crate::identity::PublicIdentity {
            ed25519: self.ed25519,
            x25519: self.x25519,
            xwing: Some(self.xwing.commitment()),
        }
    }

    /// Require that this bundle belongs to `id`: the same Ed25519 and X25519 keys and, for
    /// a `veilid2` string, the X-Wing key it commits to. Otherwise `KeyBundleMismatch`.
    pub fn check_for(&self, id: &crate::identity::PublicIdentity) -> Result<()> {
        let commitment_ok = id.xwing.is_none_or(|c| c == self.xwing.commitment());
        if self.ed25519 != id.ed25519 || self.x25519 != id.x25519 || !commitment_ok {
            return Err(FormatError::KeyBundleMismatch { identity: id.fingerprint() });
        }
        Ok(())
    }
}
