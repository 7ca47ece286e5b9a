//! One-time codes and the PAKE run over them.
//!
//! A code is `<nameplate>-<word>-<word>...`: the nameplate is a small number the relay
//! allocates to find the mailbox, the words come from the EFF short word list (1295
//! words, 10.3 bits each; two by default). The whole code is only ever a SPAKE2
//! password: nothing stored anywhere is encrypted under a key stretched from it.

use crate::chunk::{envelope_open, envelope_seal_with};
use crate::error::{FormatError, Result, escape_text};
use crate::kdf::{CTX_PAKE, CTX_PAKE_HYBRID, blake2b_256, derive};
use crate::pq::{MLKEM_CIPHERTEXT_LEN, MLKEM_PUBLIC_LEN, MlKemSecret, mlkem_encapsulate_with};
use crate::secret::{ContentKey, SecretKey, TransferId};
use spake2::{Ed25519Group, Identity as PakeIdentity, Password, Spake2};
use subtle::ConstantTimeEq;

/// The code word list (EFF short list 1 without its one hyphenated word, 1295 words).
pub fn code_words() -> &'static [&'static str] {
    use std::sync::OnceLock;
    static W: OnceLock<Vec<&'static str>> = OnceLock::new();
    W.get_or_init(|| crate::strict::word_list(include_str!("words-eff-short.txt")))
}

/// Default number of words in a generated code (2 x 10.3 = 20.7 bits).
pub const DEFAULT_CODE_WORDS: usize = 2;
/// Codes with fewer bits of words than this get a warning.
pub const MIN_CODE_BITS: f64 = 16.0;

/// A parsed one-time code. `Debug` hides the words.
#[derive(Clone, PartialEq, Eq)]
pub struct Code {
    nameplate: u32,
    words: Vec<String>,
}

impl std::fmt::Debug for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Code({}-..)", self.nameplate)
    }
}

impl Code {
    /// A fresh random code on `nameplate`.
    pub fn generate(nameplate: u32, words: usize) -> Code {
        let list = code_words();
        let words =
            (0..words.max(1)).map(|_| list[crate::random_below(list.len() as u32) as usize].to_string()).collect();
        Code { nameplate, words }
    }

    /// Parse what a user typed: `<number>-<word>[-<word>...]`, case-insensitive, spaces
    /// around it ignored. Words need not come from the list.
    pub fn parse(s: &str) -> Result<Code> {
        let s = s.trim().to_lowercase();
        let mut parts = s.split('-');
        let np = parts.next().unwrap_or("");
        if np.is_empty() || !np.bytes().all(|b| b.is_ascii_digit()) {
            return Err(FormatError::InvalidCode("must start with a number, like 7-guitar-orbit"));
        }
        let nameplate: u32 = np.parse().map_err(|_| FormatError::InvalidCode("nameplate number too large"))?;
        if nameplate == 0 {
            return Err(FormatError::InvalidCode("nameplate 0 is not valid"));
        }
        let words: Vec<String> = parts.map(str::to_string).collect();
        if words.is_empty() {
            return Err(FormatError::InvalidCode("needs at least one word after the number"));
        }
        for w in &words {
            if w.is_empty() || w.len() > 64 || !w.chars().all(|c| c.is_alphanumeric()) {
                return Err(FormatError::InvalidCode("words are letters or digits separated by single dashes"));
            }
        }
        Ok(Code { nameplate, words })
    }

    /// The nameplate number (public: the relay sees it).
    pub fn nameplate(&self) -> u32 {
        self.nameplate
    }

    /// Estimated entropy of the words, in bits (list words 10.3 bits each, other words
    /// by their letters).
    pub fn word_bits(&self) -> f64 {
        let list = code_words();
        self.words
            .iter()
            .map(|w| {
                if list.binary_search(&w.as_str()).is_ok() {
                    (list.len() as f64).log2()
                } else {
                    (w.len() as f64 * 4.7).min(20.0)
                }
            })
            .sum()
    }

    /// True when the words carry less than [`MIN_CODE_BITS`].
    pub fn is_short(&self) -> bool {
        self.word_bits() < MIN_CODE_BITS
    }

    /// The full code as typed (`7-guitar-orbit`). Secret: show it to the user only.
    pub fn reveal(&self) -> String {
        format!("{}-{}", self.nameplate, self.words.join("-"))
    }
}

/// Which side of the PAKE we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The side that holds the content key (sender, publisher).
    Sender,
    /// The side that receives it.
    Receiver,
}

const ID_SENDER: &[u8] = b"veil/pake/v1/sender";
const ID_RECEIVER: &[u8] = b"veil/pake/v1/receiver";

/// A PAKE in progress.
pub struct PakeStart {
    inner: Spake2<Ed25519Group>,
    role: Role,
}

impl std::fmt::Debug for PakeStart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PakeStart").field("role", &self.role).finish_non_exhaustive()
    }
}

impl PakeStart {
    /// Start SPAKE2 with the code as password; returns the state and the message to post.
    pub fn new(role: Role, code: &Code) -> (PakeStart, Vec<u8>) {
        let pw = Password::new(code.reveal().as_bytes());
        let (a, b) = (PakeIdentity::new(ID_SENDER), PakeIdentity::new(ID_RECEIVER));
        let (inner, msg) = match role {
            Role::Sender => Spake2::<Ed25519Group>::start_a(&pw, &a, &b),
            Role::Receiver => Spake2::<Ed25519Group>::start_b(&pw, &a, &b),
        };
        (PakeStart { inner, role }, msg)
    }

    /// [`PakeStart::new`] with the secret scalar fixed (test vectors only): the scalar is
    /// `scalar_bytes` read as a little-endian integer modulo the group order, which is
    /// exactly what SPAKE2 makes of the 64 random bytes it draws.
    pub fn new_with(role: Role, code: &Code, scalar_bytes: [u8; 64]) -> (PakeStart, Vec<u8>) {
        let pw = Password::new(code.reveal().as_bytes());
        let (a, b) = (PakeIdentity::new(ID_SENDER), PakeIdentity::new(ID_RECEIVER));
        let rng = FixedBytes { bytes: scalar_bytes, used: 0 };
        let (inner, msg) = match role {
            Role::Sender => Spake2::<Ed25519Group>::start_a_with_rng(&pw, &a, &b, rng),
            Role::Receiver => Spake2::<Ed25519Group>::start_b_with_rng(&pw, &a, &b, rng),
        };
        (PakeStart { inner, role }, msg)
    }

    /// Finish with the peer's message. A wrong code is only noticed at confirmation.
    pub fn finish(self, peer_msg: &[u8]) -> Result<PakeKey> {
        let k = self
            .inner
            .finish(peer_msg)
            .map_err(|_| FormatError::Malformed { what: "PAKE message", reason: "invalid" })?;
        let key = SecretKey::from_bytes(blake2b_256(&[b"veil pake key v1\0", &k]));
        Ok(PakeKey { key, role: self.role })
    }
}

/// A "random" source that hands out fixed bytes, for [`PakeStart::new_with`]. SPAKE2 0.4
/// draws exactly 64 bytes (one `Scalar::random`); should it ever draw more, the bytes
/// repeat, so a vector would change visibly rather than panic.
struct FixedBytes {
    bytes: [u8; 64],
    used: usize,
}

impl rand_core::RngCore for FixedBytes {
    fn next_u32(&mut self) -> u32 {
        rand_core::impls::next_u32_via_fill(self)
    }
    fn next_u64(&mut self) -> u64 {
        rand_core::impls::next_u64_via_fill(self)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for d in dest {
            *d = self.bytes[self.used % self.bytes.len()];
            self.used += 1;
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> std::result::Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

// Only ever used to reproduce test vectors.
impl rand_core::CryptoRng for FixedBytes {}

/// The key both sides share after SPAKE2 (if the codes matched).
#[derive(Debug)]
pub struct PakeKey {
    key: SecretKey,
    role: Role,
}

/// Length of a key-confirmation message.
pub const CONFIRM_LEN: usize = 32;

impl PakeKey {
    /// Our key-confirmation message.
    pub fn confirmation(&self) -> [u8; CONFIRM_LEN] {
        let id = if self.role == Role::Sender { 1 } else { 2 };
        *derive(&self.key, id, CTX_PAKE).expose()
    }

    /// Check the peer's confirmation (constant time). Failure means a wrong code.
    pub fn verify_peer(&self, msg: &[u8]) -> Result<()> {
        let id = if self.role == Role::Sender { 2 } else { 1 };
        let expect = derive(&self.key, id, CTX_PAKE);
        if msg.len() == CONFIRM_LEN && bool::from(expect.expose().ct_eq(msg)) {
            Ok(())
        } else {
            Err(FormatError::WrongCode)
        }
    }

    /// Receiver, after sending its confirmation: a fresh ML-KEM-768 key pair and the
    /// message that carries its encapsulation key under the PAKE key
    /// (`envelope(KDF(Kp, 5, "veilpak1"), "veil pq offer v1", ek)`, 1225 bytes).
    pub fn pq_offer(&self) -> (PqOffer, Vec<u8>) {
        let mut header = [0u8; 24];
        crate::random_bytes(&mut header);
        self.pq_offer_with(MlKemSecret::random(), header)
    }

    /// [`PakeKey::pq_offer`] with a chosen key pair and envelope header (test vectors only).
    pub fn pq_offer_with(&self, secret: MlKemSecret, header: [u8; 24]) -> (PqOffer, Vec<u8>) {
        let ek = secret.public();
        let msg = envelope_seal_with(&derive(&self.key, 5, CTX_PAKE), PQ_OFFER_AD, &ek, header);
        (PqOffer { secret, ek, kp: self.key.clone() }, msg)
    }

    /// Sender, after the receiver's confirmation verified: open the receiver's offer,
    /// encapsulate to it, and derive the hybrid key. Returns the key and the ML-KEM
    /// ciphertext (1088 bytes) to send. An offer that does not open is `WrongCode`.
    pub fn pq_accept(&self, offer: &[u8]) -> Result<(HybridKey, Vec<u8>)> {
        let mut m = zeroize::Zeroizing::new([0u8; 32]);
        crate::random_bytes(&mut m[..]);
        self.pq_accept_with(offer, &m)
    }

    /// [`PakeKey::pq_accept`] with chosen encapsulation randomness `m` (test vectors only).
    pub fn pq_accept_with(&self, offer: &[u8], m: &[u8; 32]) -> Result<(HybridKey, Vec<u8>)> {
        if offer.len() != PQ_OFFER_LEN {
            return Err(FormatError::PostQuantumMissing);
        }
        let ek =
            envelope_open(&derive(&self.key, 5, CTX_PAKE), PQ_OFFER_AD, offer).map_err(|_| FormatError::WrongCode)?;
        let (ct, ss) = mlkem_encapsulate_with(&ek, m)?;
        Ok((HybridKey::derive(&self.key, &ss, &ek, &ct), ct))
    }

    /// A short string both people can compare, like a safety number: four words.
    pub fn verification_string(&self) -> String {
        verification_words(&self.key)
    }
}

/// AD of the envelope that carries the receiver's ML-KEM encapsulation key.
const PQ_OFFER_AD: &[u8] = b"veil pq offer v1";
/// Bytes of the receiver's offer: envelope header (24) + ML-KEM-768 key (1184) + 17.
pub const PQ_OFFER_LEN: usize = 24 + MLKEM_PUBLIC_LEN + 17;
/// Bytes of the sender's answer after its confirmation: ML-KEM-768 ciphertext (1088) then
/// the key delivery (90).
pub const PQ_ANSWER_LEN: usize = MLKEM_CIPHERTEXT_LEN + DELIVERY_LEN;
/// Bytes of a key delivery envelope: header (24) + 49 + 17.
pub const DELIVERY_LEN: usize = 24 + 49 + 17;
const DELIVERY_AD: &[u8] = b"veil key delivery v2";
const HYBRID_DOMAIN: &[u8] = b"veil pake hybrid v1\0";

/// The receiver's side of the hybrid step: its ML-KEM-768 key pair until the sender's
/// ciphertext arrives.
pub struct PqOffer {
    secret: MlKemSecret,
    ek: Vec<u8>,
    kp: SecretKey,
}

impl std::fmt::Debug for PqOffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PqOffer(..)")
    }
}

impl PqOffer {
    /// Decapsulate the sender's ML-KEM ciphertext and derive the hybrid key.
    pub fn finish(self, ct: &[u8]) -> Result<HybridKey> {
        let ss = self.secret.decapsulate(ct)?;
        Ok(HybridKey::derive(&self.kp, &ss, &self.ek, ct))
    }
}

/// The key that delivers `(tid, K)` in code mode: from both the PAKE key and the ML-KEM
/// shared secret, `Kh = BLAKE2b-256("veil pake hybrid v1\0" || Kp || ss || ek || ct)`.
pub struct HybridKey {
    key: SecretKey,
}

impl std::fmt::Debug for HybridKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HybridKey(..)")
    }
}

impl HybridKey {
    fn derive(kp: &SecretKey, ss: &SecretKey, ek: &[u8], ct: &[u8]) -> HybridKey {
        HybridKey { key: SecretKey::from_bytes(blake2b_256(&[HYBRID_DOMAIN, kp.expose(), ss.expose(), ek, ct])) }
    }

    /// The raw key (test vectors only).
    pub fn expose(&self) -> &[u8; 32] {
        self.key.expose()
    }

    /// Encrypt the transfer id and content key for the receiver:
    /// `envelope(KDF(Kh, 1, "veilpqh1"), "veil key delivery v2", 0x02 || tid || K)`.
    pub fn seal_delivery(&self, tid: &TransferId, key: &ContentKey) -> Vec<u8> {
        let mut header = [0u8; 24];
        crate::random_bytes(&mut header);
        self.seal_delivery_with(tid, key, header)
    }

    /// [`HybridKey::seal_delivery`] with a chosen header (test vectors only).
    pub fn seal_delivery_with(&self, tid: &TransferId, key: &ContentKey, header: [u8; 24]) -> Vec<u8> {
        let mut plain = zeroize::Zeroizing::new(Vec::with_capacity(49));
        plain.push(2u8);
        plain.extend_from_slice(&tid.0);
        plain.extend_from_slice(key.expose());
        envelope_seal_with(&derive(&self.key, 1, CTX_PAKE_HYBRID), DELIVERY_AD, &plain, header)
    }

    /// Decrypt what [`HybridKey::seal_delivery`] made.
    pub fn open_delivery(&self, sealed: &[u8]) -> Result<(TransferId, ContentKey)> {
        let plain =
            zeroize::Zeroizing::new(envelope_open(&derive(&self.key, 1, CTX_PAKE_HYBRID), DELIVERY_AD, sealed)?);
        if plain.len() != 49 {
            return Err(FormatError::Malformed { what: "key delivery", reason: "wrong length" });
        }
        if plain[0] != 2 {
            return Err(FormatError::UnsupportedVersion { what: "key delivery", version: plain[0] });
        }
        let mut tid = [0u8; 16];
        tid.copy_from_slice(&plain[1..17]);
        let mut k = [0u8; 32];
        k.copy_from_slice(&plain[17..49]);
        Ok((TransferId(tid), ContentKey::from_bytes(k)))
    }
}

fn verification_words(key: &SecretKey) -> String {
    let v = derive(key, 4, CTX_PAKE);
    let list = code_words();
    let b = v.expose();
    (0..4)
        .map(|i| {
            let n = u16::from_le_bytes([b[2 * i], b[2 * i + 1]]) as usize % list.len();
            escape_text(list[n])
        })
        .collect::<Vec<_>>()
        .join(" ")
}
