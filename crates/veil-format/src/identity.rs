//! Identities from a passphrase: `seed = Argon2id(NFKC(passphrase), salt(handle))`, then
//! an Ed25519 signing key, an X25519 receiving key and an X-Wing (post-quantum hybrid)
//! receiving key derived from the seed under distinct KDF subkey ids. Same passphrase +
//! handle, same identity, on any device.

use crate::error::{FormatError, Result};
use crate::kdf::{CTX_IDENTITY, blake2b_256, derive};
use crate::pq::{KeyBundle, XWingSecret};
use crate::secret::SecretKey;
use crate::strict::{base32_exact, ed25519_key, word_list};
use argon2::{Algorithm, Argon2, Params, Version};
use ed25519_dalek::SigningKey;
use unicode_normalization::UnicodeNormalization;
use x25519_dalek::{PublicKey as XPublic, StaticSecret};
use zeroize::{Zeroize, Zeroizing};

/// Argon2id parameters, identified by a version byte recorded with every identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    /// Version byte naming this parameter set.
    pub version: u8,
    /// Memory in KiB.
    pub m_kib: u32,
    /// Passes.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl KdfParams {
    /// Version 1, the default: 256 MiB, t = 3, p = 1.
    pub const V1: KdfParams = KdfParams { version: 1, m_kib: 256 * 1024, t: 3, p: 1 };
    /// Version 0xF0: 8 MiB, t = 1 -- for tests and test vectors only, never for real identities.
    pub const INSECURE_TEST: KdfParams = KdfParams { version: 0xF0, m_kib: 8 * 1024, t: 1, p: 1 };

    /// The parameter set for a version byte.
    pub fn from_version(v: u8) -> Result<KdfParams> {
        match v {
            1 => Ok(Self::V1),
            0xF0 => Ok(Self::INSECURE_TEST),
            _ => Err(FormatError::UnsupportedVersion { what: "key-derivation parameters", version: v }),
        }
    }

    /// Run Argon2id into a 32-byte key.
    pub fn hash(&self, password: &[u8], salt: &[u8]) -> Result<SecretKey> {
        let params = Params::new(self.m_kib, self.t, self.p, Some(32))
            .map_err(|_| FormatError::BadKdfParams("argon2 rejected the parameters"))?;
        let a2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut out = [0u8; 32];
        a2.hash_password_into(password, salt, &mut out).map_err(|_| FormatError::BadKdfParams("argon2 failed"))?;
        let key = SecretKey::from_bytes(out);
        out.zeroize();
        Ok(key)
    }
}

/// Normalise a passphrase: Unicode NFKC, surrounding white space removed.
pub fn normalize_passphrase(p: &str) -> Zeroizing<String> {
    Zeroizing::new(p.trim().nfkc().collect())
}

/// Normalise a handle: NFKC, trimmed, lowercase.
pub fn normalize_handle(h: &str) -> String {
    h.trim().nfkc().collect::<String>().to_lowercase()
}

/// The 16-byte Argon2id salt for a handle.
pub fn handle_salt(handle: &str) -> [u8; 16] {
    let h = blake2b_256(&[b"veil identity salt v1\0", normalize_handle(handle).as_bytes()]);
    let mut s = [0u8; 16];
    s.copy_from_slice(&h[..16]);
    s
}

/// A full (secret) identity. `Debug` shows only the public part.
#[derive(Clone)]
pub struct Identity {
    seed: SecretKey,
    signing: SigningKey,
    x_secret: StaticSecret,
    xwing: XWingSecret,
    params: KdfParams,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("public", &self.public().fingerprint())
            .field("params", &self.params.version)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// Derive from a passphrase and handle (slow by design: Argon2id).
    pub fn derive(passphrase: &str, handle: &str, params: KdfParams) -> Result<Identity> {
        let pass = normalize_passphrase(passphrase);
        if pass.is_empty() {
            return Err(FormatError::WeakPassphrase { bits: 0, hint: "empty passphrase" });
        }
        let seed = params.hash(pass.as_bytes(), &handle_salt(handle))?;
        Ok(Self::from_seed(seed, params))
    }

    /// Rebuild from a stored seed (what `veil` keeps in its state folder).
    pub fn from_seed(seed: SecretKey, params: KdfParams) -> Identity {
        let ed = derive(&seed, 1, CTX_IDENTITY);
        let x = derive(&seed, 2, CTX_IDENTITY);
        let signing = SigningKey::from_bytes(ed.expose());
        let x_secret = StaticSecret::from(*x.expose());
        let xwing = XWingSecret::from_bytes(&derive(&seed, 3, CTX_IDENTITY));
        Identity { seed, signing, x_secret, xwing, params }
    }

    /// An ephemeral identity (random seed) for senders without one.
    pub fn ephemeral() -> Identity {
        Self::from_seed(SecretKey::random(), KdfParams::V1)
    }

    /// The seed, for storing in the 0600 state file.
    pub fn seed(&self) -> &SecretKey {
        &self.seed
    }
    /// The parameter set this identity was derived with.
    pub fn params(&self) -> KdfParams {
        self.params
    }
    /// Ed25519 signing key.
    pub fn signing_key(&self) -> &SigningKey {
        &self.signing
    }
    /// X25519 secret for receiving sealed keys.
    pub fn x25519_secret(&self) -> &StaticSecret {
        &self.x_secret
    }
    /// X-Wing secret for receiving sealed keys (post-quantum hybrid).
    pub fn xwing_secret(&self) -> &XWingSecret {
        &self.xwing
    }
    /// The public identity (a `veilid2` string: it commits to the X-Wing key).
    pub fn public(&self) -> PublicIdentity {
        PublicIdentity {
            ed25519: self.signing.verifying_key().to_bytes(),
            x25519: XPublic::from(&self.x_secret).to_bytes(),
            xwing: Some(self.xwing.public().commitment()),
        }
    }
    /// Our key bundle: the X-Wing public key signed by our Ed25519 key, to publish.
    pub fn key_bundle(&self) -> KeyBundle {
        KeyBundle::sign(&self.signing, XPublic::from(&self.x_secret).to_bytes(), self.xwing.public())
    }
}

/// The public half of an identity: what people paste to each other.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicIdentity {
    /// Ed25519 verifying key (signatures, relay authentication).
    pub ed25519: [u8; 32],
    /// X25519 public key (receiving; old-style sealed keys and the manifest binding).
    pub x25519: [u8; 32],
    /// Commitment to the X-Wing public key (`veilid2` strings; `None` for an old
    /// `veilid1` string, whose owner's X-Wing key is then trusted on its Ed25519
    /// signature alone).
    pub xwing: Option<[u8; 32]>,
}

/// Prefix of an old (version 1) public identity string: no X-Wing commitment.
pub const IDENTITY_PREFIX: &str = "veilid1";
/// Prefix of a current (version 2) public identity string.
pub const IDENTITY_PREFIX_V2: &str = "veilid2";
/// What every identity string starts with (any version).
pub const IDENTITY_PREFIX_ANY: &str = "veilid";

/// True if `s` looks like an identity string of any version (case-insensitive).
pub fn looks_like_identity(s: &str) -> bool {
    s.trim().get(..IDENTITY_PREFIX_ANY.len()).is_some_and(|p| p.eq_ignore_ascii_case(IDENTITY_PREFIX_ANY))
}

const CHECKSUM_V1: &[u8] = b"veil identity checksum v1\0";
const CHECKSUM_V2: &[u8] = b"veil identity checksum v2\0";

impl PublicIdentity {
    /// `veilid2` + lowercase base32 (no padding) of
    /// `ed25519 || x25519 || xwing commitment || checksum(4)` (167 characters), or for an
    /// identity without a commitment the old `veilid1` form of
    /// `ed25519 || x25519 || checksum(4)` (116 characters).
    pub fn encode(&self) -> String {
        let mut b = Vec::with_capacity(100);
        b.extend_from_slice(&self.ed25519);
        b.extend_from_slice(&self.x25519);
        let (prefix, domain) = match &self.xwing {
            Some(c) => {
                b.extend_from_slice(c);
                (IDENTITY_PREFIX_V2, CHECKSUM_V2)
            }
            None => (IDENTITY_PREFIX, CHECKSUM_V1),
        };
        let c = blake2b_256(&[domain, &b]);
        b.extend_from_slice(&c[..4]);
        format!("{prefix}{}", crate::BASE32.encode(&b).to_ascii_lowercase())
    }

    /// Parse a string made by [`PublicIdentity::encode`], either version
    /// (case-insensitive, spaces ignored).
    pub fn decode(s: &str) -> Result<PublicIdentity> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_lowercase();
        let (body, len, domain) = if let Some(body) = s.strip_prefix(IDENTITY_PREFIX_V2) {
            (body, 100, CHECKSUM_V2)
        } else if let Some(body) = s.strip_prefix(IDENTITY_PREFIX) {
            (body, 68, CHECKSUM_V1)
        } else if s.starts_with(IDENTITY_PREFIX_ANY) {
            return Err(FormatError::InvalidIdentity("unknown identity string version; upgrade veil"));
        } else {
            return Err(FormatError::InvalidIdentity("must start with veilid2 (or the older veilid1)"));
        };
        let b = base32_exact(body).ok_or(FormatError::InvalidIdentity("not base32"))?;
        if b.len() != len {
            return Err(FormatError::InvalidIdentity("wrong length"));
        }
        let c = blake2b_256(&[domain, &b[..len - 4]]);
        if c[..4] != b[len - 4..] {
            return Err(FormatError::InvalidIdentity("checksum mismatch (typo?)"));
        }
        let mut ed25519 = [0u8; 32];
        let mut x25519 = [0u8; 32];
        ed25519.copy_from_slice(&b[..32]);
        x25519.copy_from_slice(&b[32..64]);
        let xwing = (len == 100).then(|| {
            let mut c = [0u8; 32];
            c.copy_from_slice(&b[64..96]);
            c
        });
        ed25519_key(&ed25519).ok_or(FormatError::InvalidIdentity("not a valid Ed25519 key"))?;
        Ok(PublicIdentity { ed25519, x25519, xwing })
    }

    /// The same identity without its X-Wing commitment (its old `veilid1` form).
    pub fn without_commitment(&self) -> PublicIdentity {
        PublicIdentity { xwing: None, ..*self }
    }

    /// Same Ed25519 and X25519 keys, whatever the string version: the same person (a
    /// `veilid1` string and the `veilid2` string of one identity are the same identity).
    pub fn same_keys(&self, other: &PublicIdentity) -> bool {
        self.ed25519 == other.ed25519 && self.x25519 == other.x25519
    }

    /// A short fingerprint to read aloud: 80 bits as five groups of four hex digits.
    pub fn fingerprint(&self) -> String {
        fingerprint_of(&self.ed25519)
    }
}

/// Fingerprint of an Ed25519 signer key (what a receiver can show for a manifest signer).
pub fn fingerprint_of(ed25519: &[u8; 32]) -> String {
    let h = blake2b_256(&[b"veil fingerprint v1\0", ed25519]);
    let hex = data_encoding::HEXLOWER.encode(&h[..10]);
    hex.as_bytes().chunks(4).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join("-")
}

impl std::fmt::Debug for PublicIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicIdentity({})", self.fingerprint())
    }
}

/// The passphrase word list (EFF large list less its 4 hyphenated words: 7772 words,
/// 12.9 bits each).
pub fn passphrase_words() -> &'static [&'static str] {
    use std::sync::OnceLock;
    static W: OnceLock<Vec<&'static str>> = OnceLock::new();
    W.get_or_init(|| word_list(include_str!("words-eff-long.txt")))
}

/// Default number of words in a generated passphrase (7 x 12.9 = 90 bits).
pub const DEFAULT_PASSPHRASE_WORDS: usize = 7;
/// Passphrases estimated below this many bits are refused unless the user insists.
pub const MIN_PASSPHRASE_BITS: u32 = 70;

/// Generate a diceware passphrase of `words` words joined by `-`.
pub fn generate_passphrase(words: usize) -> Zeroizing<String> {
    let list = passphrase_words();
    let mut out = Zeroizing::new(String::new());
    for i in 0..words.max(1) {
        if i > 0 {
            out.push('-');
        }
        out.push_str(list[crate::random_below(list.len() as u32) as usize]);
    }
    out
}

/// Characters that separate the words of a passphrase for [`estimate_bits`].
const WORD_SEPARATORS: [char; 4] = ['-', ' ', '_', '.'];

/// Rough guessing-entropy estimate in bits. Repetition adds nothing: a word, a character
/// run or a repeated pattern counts once. Diceware phrases from our list count 12.9 bits
/// per *distinct* word (compared lowercase); anything else is first reduced (repeated
/// words dropped, runs of one character collapsed, each word cut to its shortest
/// repeating unit), then counted by its character classes, with repeated characters at a
/// quarter and an overall discount for human-chosen text.
pub fn estimate_bits(passphrase: &str) -> u32 {
    let p = normalize_passphrase(passphrase);
    let list = passphrase_words();
    let words: Vec<String> = p.split(WORD_SEPARATORS).filter(|w| !w.is_empty()).map(str::to_lowercase).collect();
    if !words.is_empty() && words.iter().all(|w| list.binary_search(&w.as_str()).is_ok()) {
        let distinct: std::collections::BTreeSet<&String> = words.iter().collect();
        return (distinct.len() as f64 * (list.len() as f64).log2()) as u32;
    }
    let reduced = Zeroizing::new(reduce_repetition(&p));
    let (mut lower, mut upper, mut digit, mut other) = (false, false, false, false);
    let mut distinct = std::collections::BTreeSet::new();
    for c in reduced.chars() {
        distinct.insert(c);
        if c.is_ascii_lowercase() {
            lower = true
        } else if c.is_ascii_uppercase() {
            upper = true
        } else if c.is_ascii_digit() {
            digit = true
        } else {
            other = true
        }
    }
    let charset = 26 * u32::from(lower) + 26 * u32::from(upper) + 10 * u32::from(digit) + 33 * u32::from(other);
    let per_char = f64::from(charset.max(2)).log2();
    // Human-chosen text is far from uniform: count each distinct character once fully
    // and repeats at a quarter.
    let n = reduced.chars().count() as f64;
    let d = distinct.len() as f64;
    ((d + (n - d) * 0.25) * per_char * 0.6) as u32
}

/// The passphrase with its repetition removed: each word (split at
/// [`WORD_SEPARATORS`], compared exactly) kept only at its first occurrence together with
/// the separator before it, runs of one character collapsed to one, and each word cut to
/// its shortest repeating unit (`abcabcab` -> `abc`).
fn reduce_repetition(p: &str) -> String {
    // (separators before the word, the word)
    let mut tokens: Vec<(String, String)> = Vec::new();
    let (mut separator, mut word) = (String::new(), String::new());
    for c in p.chars() {
        if WORD_SEPARATORS.contains(&c) {
            if !word.is_empty() {
                tokens.push((std::mem::take(&mut separator), std::mem::take(&mut word)));
            }
            separator.push(c);
        } else {
            word.push(c);
        }
    }
    if !word.is_empty() {
        tokens.push((separator, word));
    }
    let mut out = String::with_capacity(p.len());
    let mut seen = std::collections::HashSet::new();
    for (separator, word) in &tokens {
        if seen.insert(word.as_str()) {
            out.push_str(separator);
            out.extend(shortest_period(&collapse_runs(word)));
        }
    }
    out
}

/// `aaab` -> `ab`.
fn collapse_runs(w: &str) -> Vec<char> {
    let mut out: Vec<char> = Vec::with_capacity(w.len());
    for c in w.chars() {
        if out.last() != Some(&c) {
            out.push(c);
        }
    }
    out
}

/// The shortest prefix `u` of `w` such that `w` is `u` repeated (the last copy possibly
/// cut short), if it repeats at least twice; else `w`. Linear time (KMP failure function).
fn shortest_period(w: &[char]) -> &[char] {
    let n = w.len();
    if n < 2 {
        return w;
    }
    // fail[i] = length of the longest proper border of w[..=i].
    let mut fail = vec![0usize; n];
    let mut k = 0;
    for i in 1..n {
        while k > 0 && w[i] != w[k] {
            k = fail[k - 1];
        }
        if w[i] == w[k] {
            k += 1;
        }
        fail[i] = k;
    }
    let period = n - fail[n - 1];
    if 2 * period <= n { &w[..period] } else { w }
}

/// Refuse passphrases estimated below [`MIN_PASSPHRASE_BITS`].
pub fn check_passphrase(passphrase: &str) -> Result<u32> {
    let bits = estimate_bits(passphrase);
    if bits < MIN_PASSPHRASE_BITS {
        let hint = if normalize_passphrase(passphrase).chars().count() < 16 { "too short" } else { "too predictable" };
        return Err(FormatError::WeakPassphrase { bits, hint });
    }
    Ok(bits)
}
