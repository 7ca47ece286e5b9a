//! The manifest: what a transfer contains, encrypted under a key derived from `K` and
//! signed by the sender's Ed25519 key.
//!
//! Stored layout: `"VMAN" || version (1) || envelope(KDF(K, 0, "veilman1"), ad, signed)`
//! with `ad = "VMAN" || version || transfer id`, and `signed` the postcard encoding of
//! [`SignedManifest`]. The signature covers `"veil manifest v1\0" || transfer id ||
//! recipient X25519 key (32 zero bytes if none) || postcard(sender name: Option<String>)
//! || body`.

use crate::chunk::{MAX_CHUNK_SIZE, chunk_count, envelope_open, envelope_seal};
use crate::error::{FormatError, Result, escape_text};
use crate::kdf::{CTX_MANIFEST, derive};
use crate::secret::{ContentKey, TransferId};
use crate::strict::{ed25519_key, postcard_exact};
use ed25519_dalek::{Signature, Signer, SigningKey};
use serde::{Deserialize, Serialize};

/// Magic at the start of a stored manifest.
pub const MANIFEST_MAGIC: &[u8; 4] = b"VMAN";
/// Current manifest version.
pub const MANIFEST_VERSION: u8 = 1;
/// Largest stored manifest accepted.
pub const MAX_MANIFEST_LEN: usize = 64 * 1024 * 1024;
/// Most entries in one transfer.
pub const MAX_ENTRIES: usize = 1_000_000;
/// Highest permission bits an entry may carry: no set-id, sticky or file-type bits.
pub const MAX_MODE: u32 = 0o777;
/// Largest total size a manifest may declare (1 PiB).
pub const MAX_TOTAL_SIZE: u64 = 1 << 50;
const SIG_DOMAIN: &[u8] = b"veil manifest v1\0";

/// What kind of content the transfer carries (how the receiver presents it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ContentKind {
    /// Files and folders.
    Files,
    /// A text snippet (one entry, printed rather than saved).
    Text,
    /// Standard input of the sender (one entry).
    Stdin,
}

/// A file or folder entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntryKind {
    /// A regular file; its bytes follow the previous entries' bytes.
    File,
    /// A folder (size 0).
    Dir,
}

/// One entry of a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Relative path with `/` separators, validated by [`validate_name`].
    pub path: String,
    /// File or folder.
    pub kind: EntryKind,
    /// Size in bytes (0 for folders).
    pub size: u64,
    /// Unix permission bits, at most [`MAX_MODE`] (`0o777`); anything above is malformed.
    pub mode: u32,
    /// BLAKE3 of the plaintext (zeros for folders).
    pub hash: [u8; 32],
}

/// The content description of one transfer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The transfer this manifest belongs to.
    pub transfer_id: TransferId,
    /// How the content is presented.
    pub content: ContentKind,
    /// Plaintext bytes per chunk.
    pub chunk_size: u32,
    /// Sum of all file sizes.
    pub total_size: u64,
    /// Number of chunks (`max(1, ceil(total / chunk_size))`).
    pub chunk_count: u64,
    /// Files and folders, in the order their bytes appear.
    pub entries: Vec<Entry>,
}

/// The signed form inside the encrypted envelope.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignedManifest {
    /// Sender's Ed25519 public key.
    pub signer: [u8; 32],
    /// Recipient X25519 public key in identity mode.
    pub recipient: Option<[u8; 32]>,
    /// Ed25519 signature (see module docs for what it covers).
    #[serde(with = "sig_bytes")]
    pub signature: [u8; 64],
    /// Postcard encoding of [`Manifest`].
    pub body: Vec<u8>,
    /// The sender's self-declared handle (covered by the signature; a claim, not a proof:
    /// receivers match the signer key against their contacts).
    pub sender_name: Option<String>,
}

/// Longest sender name a manifest may carry, in bytes.
pub const MAX_SENDER_NAME: usize = 128;

/// Check a sender name: 1..=[`MAX_SENDER_NAME`] bytes, no control characters.
pub fn validate_sender_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > MAX_SENDER_NAME || name.chars().any(char::is_control) {
        return Err(FormatError::Malformed {
            what: "manifest",
            reason: "sender name empty, too long or with control characters",
        });
    }
    Ok(())
}

mod sig_bytes {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &[u8; 64], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 64], D::Error> {
        let v: &[u8] = <&[u8]>::deserialize(d)?;
        v.try_into().map_err(|_| serde::de::Error::custom("signature must be 64 bytes"))
    }
}

/// What a verified manifest tells the receiver.
#[derive(Debug, Clone)]
pub struct VerifiedManifest {
    /// The content description.
    pub manifest: Manifest,
    /// Ed25519 public key of the sender who signed it.
    pub signer: [u8; 32],
    /// The name the sender declared for itself (signed, but only a claim).
    pub sender_name: Option<String>,
}

impl Manifest {
    /// Build a manifest, computing chunk count and total size.
    pub fn new(transfer_id: TransferId, content: ContentKind, chunk_size: u32, entries: Vec<Entry>) -> Result<Self> {
        let total_size = entries
            .iter()
            .try_fold(0u64, |acc, e| acc.checked_add(e.size))
            .ok_or(FormatError::TooLarge { what: "transfer", size: u64::MAX, limit: MAX_TOTAL_SIZE })?;
        let m = Manifest {
            transfer_id,
            content,
            chunk_size,
            total_size,
            chunk_count: chunk_count(total_size, chunk_size),
            entries,
        };
        m.validate()?;
        Ok(m)
    }

    /// Check every invariant a receiver relies on.
    pub fn validate(&self) -> Result<()> {
        if self.chunk_size == 0 || self.chunk_size > MAX_CHUNK_SIZE {
            return Err(FormatError::Malformed { what: "manifest", reason: "chunk size out of range" });
        }
        if self.total_size > MAX_TOTAL_SIZE {
            return Err(FormatError::TooLarge { what: "transfer", size: self.total_size, limit: MAX_TOTAL_SIZE });
        }
        if self.entries.len() > MAX_ENTRIES {
            return Err(FormatError::TooLarge {
                what: "entry list",
                size: self.entries.len() as u64,
                limit: MAX_ENTRIES as u64,
            });
        }
        if self.entries.iter().any(|e| e.mode > MAX_MODE) {
            return Err(FormatError::Malformed { what: "manifest", reason: "mode above 0o777" });
        }
        let mut sum = 0u64;
        let mut seen = std::collections::HashSet::new();
        let mut files = std::collections::HashSet::new();
        for e in &self.entries {
            validate_name(&e.path)?;
            let folded = e.path.to_lowercase();
            if !seen.insert(folded.clone()) {
                return Err(FormatError::UnsafeName { name: escape_text(&e.path), reason: "duplicate name" });
            }
            match e.kind {
                EntryKind::Dir if e.size != 0 => {
                    return Err(FormatError::Malformed { what: "manifest", reason: "folder with a size" });
                }
                EntryKind::File => {
                    files.insert(folded);
                }
                EntryKind::Dir => {}
            }
            sum =
                sum.checked_add(e.size).ok_or(FormatError::Malformed { what: "manifest", reason: "sizes overflow" })?;
        }
        // No entry may live below a file, whichever comes first in the list.
        for e in &self.entries {
            let folded = e.path.to_lowercase();
            let below_file = folded.match_indices('/').any(|(i, _)| files.contains(&folded[..i]));
            if below_file {
                return Err(FormatError::UnsafeName { name: escape_text(&e.path), reason: "path goes through a file" });
            }
        }
        if sum != self.total_size {
            return Err(FormatError::Malformed { what: "manifest", reason: "total size does not match entries" });
        }
        if self.chunk_count != chunk_count(self.total_size, self.chunk_size) {
            return Err(FormatError::Malformed { what: "manifest", reason: "chunk count does not match size" });
        }
        if matches!(self.content, ContentKind::Text | ContentKind::Stdin)
            && (self.entries.len() != 1 || self.entries[0].kind != EntryKind::File)
        {
            return Err(FormatError::Malformed { what: "manifest", reason: "text and stdin carry exactly one file" });
        }
        Ok(())
    }

    /// Encrypt and sign. `recipient` binds the manifest to an identity in identity mode.
    pub fn seal(&self, key: &ContentKey, signer: &SigningKey, recipient: Option<[u8; 32]>) -> Result<Vec<u8>> {
        self.seal_named(key, signer, recipient, None)
    }

    /// [`Manifest::seal`] carrying the sender's handle, covered by the signature.
    pub fn seal_named(
        &self,
        key: &ContentKey,
        signer: &SigningKey,
        recipient: Option<[u8; 32]>,
        sender_name: Option<&str>,
    ) -> Result<Vec<u8>> {
        self.validate()?;
        if let Some(n) = sender_name {
            validate_sender_name(n)?;
        }
        let sender_name = sender_name.map(str::to_string);
        let body = postcard::to_allocvec(self)
            .map_err(|_| FormatError::Malformed { what: "manifest", reason: "encoding failed" })?;
        let msg = signed_message(&self.transfer_id, recipient.as_ref(), sender_name.as_deref(), &body)?;
        let signature = signer.sign(&msg).to_bytes();
        let signed =
            SignedManifest { signer: signer.verifying_key().to_bytes(), recipient, signature, body, sender_name };
        let plain = postcard::to_allocvec(&signed)
            .map_err(|_| FormatError::Malformed { what: "manifest", reason: "encoding failed" })?;
        let mk = derive(key, 0, CTX_MANIFEST);
        let mut out = Vec::with_capacity(plain.len() + 64);
        out.extend_from_slice(MANIFEST_MAGIC);
        out.push(MANIFEST_VERSION);
        out.extend_from_slice(&envelope_seal(&mk, &manifest_ad(&self.transfer_id), &plain));
        Ok(out)
    }

    /// Decrypt, verify the signature and validate. `recipient` is our X25519 key in
    /// identity mode (a manifest signed for someone else is rejected).
    pub fn open(
        sealed: &[u8],
        key: &ContentKey,
        tid: &TransferId,
        recipient: Option<[u8; 32]>,
    ) -> Result<VerifiedManifest> {
        if sealed.len() > MAX_MANIFEST_LEN {
            return Err(FormatError::TooLarge {
                what: "manifest",
                size: sealed.len() as u64,
                limit: MAX_MANIFEST_LEN as u64,
            });
        }
        if sealed.len() < 5 {
            return Err(FormatError::Truncated { what: "manifest", need: 5, have: sealed.len() });
        }
        if &sealed[..4] != MANIFEST_MAGIC {
            return Err(FormatError::Malformed { what: "manifest", reason: "bad magic" });
        }
        if sealed[4] != MANIFEST_VERSION {
            return Err(FormatError::UnsupportedVersion { what: "manifest", version: sealed[4] });
        }
        let mk = derive(key, 0, CTX_MANIFEST);
        let plain = envelope_open(&mk, &manifest_ad(tid), &sealed[5..])?;
        let signed: SignedManifest = postcard_exact(&plain, "manifest")?;
        if signed.recipient != recipient {
            return Err(FormatError::BadSignature);
        }
        let vk = ed25519_key(&signed.signer).ok_or(FormatError::BadSignature)?;
        let msg = signed_message(tid, signed.recipient.as_ref(), signed.sender_name.as_deref(), &signed.body)?;
        vk.verify_strict(&msg, &Signature::from_bytes(&signed.signature)).map_err(|_| FormatError::BadSignature)?;
        let manifest: Manifest = postcard_exact(&signed.body, "manifest")?;
        if manifest.transfer_id != *tid {
            return Err(FormatError::Malformed { what: "manifest", reason: "belongs to another transfer" });
        }
        manifest.validate()?;
        if let Some(n) = &signed.sender_name {
            validate_sender_name(n)?;
        }
        Ok(VerifiedManifest { manifest, signer: signed.signer, sender_name: signed.sender_name })
    }

    /// Where the bytes of entry `i` start in the concatenated content.
    pub fn offsets(&self) -> Vec<u64> {
        let mut off = 0u64;
        self.entries
            .iter()
            .map(|e| {
                let o = off;
                off += e.size;
                o
            })
            .collect()
    }
}

fn manifest_ad(tid: &TransferId) -> Vec<u8> {
    let mut ad = Vec::with_capacity(21);
    ad.extend_from_slice(MANIFEST_MAGIC);
    ad.push(MANIFEST_VERSION);
    ad.extend_from_slice(&tid.0);
    ad
}

fn signed_message(
    tid: &TransferId,
    recipient: Option<&[u8; 32]>,
    sender_name: Option<&str>,
    body: &[u8],
) -> Result<Vec<u8>> {
    let name = postcard::to_allocvec(&sender_name)
        .map_err(|_| FormatError::Malformed { what: "manifest", reason: "encoding failed" })?;
    let mut m = Vec::with_capacity(SIG_DOMAIN.len() + 48 + name.len() + body.len());
    m.extend_from_slice(SIG_DOMAIN);
    m.extend_from_slice(&tid.0);
    m.extend_from_slice(recipient.unwrap_or(&[0u8; 32]));
    m.extend_from_slice(&name);
    m.extend_from_slice(body);
    Ok(m)
}

const WINDOWS_RESERVED: &[&str] = &[
    "con", "prn", "aux", "nul", "com0", "com1", "com2", "com3", "com4", "com5", "com6", "com7", "com8", "com9", "com¹",
    "com²", "com³", "lpt0", "lpt1", "lpt2", "lpt3", "lpt4", "lpt5", "lpt6", "lpt7", "lpt8", "lpt9", "lpt¹", "lpt²",
    "lpt³", "conin$", "conout$",
];

/// Reject every name that could escape an output folder or misbehave on some system:
/// empty, absolute, `.`/`..` components, backslashes, drive letters and other `:`,
/// NUL and control characters, bidirectional text controls (which make a name display
/// differently from what it is, like `photo<U+202E>gpj.exe`), Windows reserved device names, trailing dots/spaces,
/// over-long components.
pub fn validate_name(name: &str) -> Result<()> {
    let bad = |reason| Err(FormatError::UnsafeName { name: escape_text(name), reason });
    if name.is_empty() {
        return bad("empty name");
    }
    if name.len() > 4096 {
        return bad("name longer than 4096 bytes");
    }
    if name.starts_with('/') {
        return bad("absolute path");
    }
    if name.contains('\\') {
        return bad("backslash in name");
    }
    if name.contains(':') {
        return bad("colon in name (drive letter or stream)");
    }
    if name.chars().any(|c| c.is_control()) {
        return bad("control character in name");
    }
    if name.chars().any(is_bidi_control) {
        return bad("bidirectional text control in name");
    }
    for comp in name.split('/') {
        if comp.is_empty() {
            return bad("empty path component");
        }
        if comp == "." || comp == ".." {
            return bad("relative path component");
        }
        if comp.len() > 255 {
            return bad("path component longer than 255 bytes");
        }
        if comp.ends_with('.') || comp.ends_with(' ') {
            return bad("component ends with a dot or space");
        }
        let lower = comp.to_lowercase();
        let stem = lower.split('.').next().unwrap_or("").trim_end();
        if WINDOWS_RESERVED.contains(&stem) {
            return bad("reserved device name");
        }
    }
    Ok(())
}

/// Unicode bidirectional embedding, override and isolate controls and the implicit
/// direction marks (U+200E, U+200F, U+061C).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}
