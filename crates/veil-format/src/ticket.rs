//! Link-mode tickets: the transfer id and the content key at full entropy, as a
//! copy-paste-safe string with a version prefix. Never stretched from a short secret.
//!
//! * `veil1-<base32(tid(16) || K(32))>`
//! * `veil1p-<base32(tid(16) || salt(16) || kdf version(1) || envelope)>` where
//!   `envelope` wraps `K` under `KDF(Argon2id(password, salt), 1, "veiltkt1")` with
//!   associated data `"veil ticket v1" || tid`.

use crate::chunk::{envelope_open, envelope_seal};
use crate::error::{FormatError, Result};
use crate::identity::{KdfParams, normalize_passphrase};
use crate::kdf::{CTX_TICKET, derive};
use crate::secret::{ContentKey, TransferId};
use crate::strict::base32_exact;

/// Prefix of a plain ticket.
pub const TICKET_PREFIX: &str = "veil1-";
/// Prefix of a password-protected ticket.
pub const TICKET_PASSWORD_PREFIX: &str = "veil1p-";

/// A decoded ticket.
#[derive(Debug, Clone)]
pub enum Ticket {
    /// Transfer id and key in the clear (inside the ticket).
    Plain {
        /// The transfer.
        tid: TransferId,
        /// Its content key.
        key: ContentKey,
    },
    /// The key is wrapped under a password.
    Password {
        /// The transfer.
        tid: TransferId,
        /// Argon2id salt.
        salt: [u8; 16],
        /// Argon2id parameter version.
        kdf: u8,
        /// The wrapped content key.
        wrapped: Vec<u8>,
    },
}

/// True if `s` looks like a ticket rather than a code.
pub fn is_ticket(s: &str) -> bool {
    let s = s.trim().to_lowercase();
    s.starts_with(TICKET_PREFIX) || s.starts_with(TICKET_PASSWORD_PREFIX)
}

impl Ticket {
    /// Encode a plain ticket.
    pub fn encode_plain(tid: &TransferId, key: &ContentKey) -> String {
        let mut b = zeroize::Zeroizing::new(Vec::with_capacity(48));
        b.extend_from_slice(&tid.0);
        b.extend_from_slice(key.expose());
        format!("{TICKET_PREFIX}{}", crate::BASE32.encode(&b).to_ascii_lowercase())
    }

    /// Encode a ticket whose key is wrapped under `password` (Argon2id with `params`). An
    /// empty password (after trimming) is refused.
    pub fn encode_with_password(
        tid: &TransferId,
        key: &ContentKey,
        password: &str,
        params: KdfParams,
    ) -> Result<String> {
        let password = normalize_passphrase(password);
        if password.is_empty() {
            return Err(FormatError::WeakPassphrase { bits: 0, hint: "empty password" });
        }
        let mut salt = [0u8; 16];
        crate::random_bytes(&mut salt);
        let wk = derive(&params.hash(password.as_bytes(), &salt)?, 1, CTX_TICKET);
        let wrapped = envelope_seal(&wk, &ticket_ad(tid), key.expose());
        let mut b = Vec::with_capacity(33 + wrapped.len());
        b.extend_from_slice(&tid.0);
        b.extend_from_slice(&salt);
        b.push(params.version);
        b.extend_from_slice(&wrapped);
        Ok(format!("{TICKET_PASSWORD_PREFIX}{}", crate::BASE32.encode(&b).to_ascii_lowercase()))
    }

    /// Parse a ticket string (case-insensitive, white space ignored).
    pub fn decode(s: &str) -> Result<Ticket> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_lowercase();
        if let Some(body) = s.strip_prefix(TICKET_PASSWORD_PREFIX) {
            let b = base32_exact(body).ok_or(FormatError::InvalidTicket("not base32"))?;
            if b.len() != 16 + 16 + 1 + 24 + 32 + 17 {
                return Err(FormatError::InvalidTicket("wrong length (incomplete copy?)"));
            }
            let mut tid = [0u8; 16];
            tid.copy_from_slice(&b[..16]);
            let mut salt = [0u8; 16];
            salt.copy_from_slice(&b[16..32]);
            return Ok(Ticket::Password { tid: TransferId(tid), salt, kdf: b[32], wrapped: b[33..].to_vec() });
        }
        if let Some(body) = s.strip_prefix(TICKET_PREFIX) {
            let b = zeroize::Zeroizing::new(base32_exact(body).ok_or(FormatError::InvalidTicket("not base32"))?);
            if b.len() != 48 {
                return Err(FormatError::InvalidTicket("wrong length (incomplete copy?)"));
            }
            let mut tid = [0u8; 16];
            tid.copy_from_slice(&b[..16]);
            let mut k = [0u8; 32];
            k.copy_from_slice(&b[16..]);
            return Ok(Ticket::Plain { tid: TransferId(tid), key: ContentKey::from_bytes(k) });
        }
        if s.starts_with("veil") {
            return Err(FormatError::UnsupportedVersion { what: "ticket", version: 0 });
        }
        Err(FormatError::InvalidTicket("must start with veil1-"))
    }

    /// The transfer id.
    pub fn transfer_id(&self) -> TransferId {
        match self {
            Ticket::Plain { tid, .. } | Ticket::Password { tid, .. } => *tid,
        }
    }

    /// Whether a password is needed.
    pub fn needs_password(&self) -> bool {
        matches!(self, Ticket::Password { .. })
    }

    /// The content key; `password` is required for protected tickets. A wrong password
    /// is `DecryptionFailed`.
    pub fn key(&self, password: Option<&str>) -> Result<ContentKey> {
        match self {
            Ticket::Plain { key, .. } => Ok(key.clone()),
            Ticket::Password { tid, salt, kdf, wrapped } => {
                let password = password.ok_or(FormatError::InvalidTicket("this ticket needs a password"))?;
                let params = KdfParams::from_version(*kdf)?;
                let wk = derive(&params.hash(normalize_passphrase(password).as_bytes(), salt)?, 1, CTX_TICKET);
                let k = zeroize::Zeroizing::new(envelope_open(&wk, &ticket_ad(tid), wrapped)?);
                let arr: [u8; 32] = k.as_slice().try_into().map_err(|_| FormatError::DecryptionFailed)?;
                Ok(ContentKey::from_bytes(arr))
            }
        }
    }
}

fn ticket_ad(tid: &TransferId) -> Vec<u8> {
    let mut ad = b"veil ticket v1".to_vec();
    ad.extend_from_slice(&tid.0);
    ad
}
