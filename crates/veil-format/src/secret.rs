//! Secret and public byte types. Secrets zeroize on drop and never print.

use zeroize::{Zeroize, ZeroizeOnDrop};

/// A 32-byte secret key. `Debug` prints `SecretKey(..)`; zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct SecretKey([u8; 32]);

impl SecretKey {
    /// Wrap raw key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
    /// A fresh key from the operating system's random number generator.
    pub fn random() -> Self {
        let mut k = [0u8; 32];
        crate::random_bytes(&mut k);
        Self(k)
    }
    /// The raw bytes. Handle with care.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

/// The random 256-bit content key `K` of one transfer or stream.
pub type ContentKey = SecretKey;

/// A transfer id: 16 random bytes, public (the relay knows it).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct TransferId(pub [u8; 16]);

impl TransferId {
    /// A fresh random id.
    pub fn random() -> Self {
        let mut b = [0u8; 16];
        crate::random_bytes(&mut b);
        Self(b)
    }
    /// Lowercase hex, as used in storage keys and on the wire in text.
    pub fn to_hex(&self) -> String {
        data_encoding::HEXLOWER.encode(&self.0)
    }
    /// Parse lowercase or uppercase hex.
    pub fn from_hex(s: &str) -> Option<Self> {
        let v = data_encoding::HEXLOWER_PERMISSIVE.decode(s.as_bytes()).ok()?;
        Some(Self(v.try_into().ok()?))
    }
}

impl std::fmt::Debug for TransferId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TransferId({})", self.to_hex())
    }
}

impl std::fmt::Display for TransferId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}
