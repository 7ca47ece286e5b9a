//! # veil-wire: the relay wire protocol
//!
//! Frames, error codes and limits spoken between `veil` clients and `veil-relay`, with no
//! IO: the relay and the client library move these bytes over QUIC streams. The exact
//! bytes, the flows and hex vectors are in [`spec`] (`PROTOCOL.md`).
//!
//! One QUIC connection per client, negotiated with ALPN [`ALPN`] (the protocol version
//! lives in the ALPN, so an old client meets a clear handshake failure rather than
//! garbage). Every request runs on its own bidirectional stream: the client writes one
//! [`Request`] frame (followed, for uploads, by exactly `len` raw body bytes), the relay
//! answers with one [`Response`] frame (followed, for downloads, by exactly `len` raw
//! bytes). A mailbox stream stays open and carries [`MailboxMsg`] frames both ways.
//!
//! ```
//! use veil_wire::{Request, encode_frame, decode_frame};
//! let bytes = encode_frame(&Request::Ping).unwrap();
//! let (req, used): (Request, usize) = decode_frame(&bytes).unwrap().unwrap();
//! assert_eq!(req, Request::Ping);
//! assert_eq!(used, bytes.len());
//! ```
#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};

#[doc = include_str!("../PROTOCOL.md")]
pub mod spec {}

/// ALPN protocol id; the version of this protocol.
pub const ALPN: &[u8] = b"veil/1";
/// Largest control frame (header frames; bodies are separate and limited by [`MAX_CHUNK_BODY`]).
pub const MAX_FRAME_LEN: usize = 64 * 1024;
/// Largest chunk or manifest body the relay accepts in one request.
pub const MAX_CHUNK_BODY: u32 = 17 * 1024 * 1024;
/// Largest manifest body.
pub const MAX_MANIFEST_BODY: u32 = 64 * 1024 * 1024;
/// Largest chunk index a relay accepts (2^40 chunks of even 1 byte is far past any limit).
pub const MAX_CHUNK_INDEX: u64 = 1 << 40;
/// Largest mailbox message.
pub const MAX_MAILBOX_BODY: usize = 4096;
/// Most messages one side may post in one key exchange on a mailbox (SPAKE2 and key
/// confirmation take two, the delivery rides on the second).
pub const MAX_MAILBOX_MESSAGES: usize = 8;

/// A transfer id (16 random bytes chosen by the sender).
pub type TransferId = [u8; 16];
/// A capability as presented by a client (32 bytes derived from the content key).
pub type Capability = [u8; 32];
/// What the relay stores instead of a capability.
pub type CapabilityHash = [u8; 32];

/// Hash a capability for storage/comparison on the relay (BLAKE3 in derive-key mode).
pub fn cap_hash(cap: &Capability) -> CapabilityHash {
    blake3::derive_key("veil capability hash v1", cap)
}

/// Lowercase hex of a transfer id (storage keys, logs).
pub fn tid_hex(tid: &TransferId) -> String {
    tid.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parse what [`tid_hex`] made (exactly 32 hex digits; nothing else, so one transfer id
/// has one spelling: `u8::from_str_radix` alone would also take `+f`).
pub fn tid_from_hex(hex: &str) -> Option<TransferId> {
    if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut t = [0u8; 16];
    for (i, b) in t.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(t)
}

/// Which side of a mailbox a client is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Side {
    /// The side that holds the content key (sender, publisher).
    Sender,
    /// The receiving side (receiver, viewer).
    Receiver,
}

/// A request: the first frame on every client-opened bidirectional stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Liveness check; answered with [`Response::Ok`].
    Ping,
    /// Register a new transfer. Idempotent for the same id and hashes (resume).
    Create {
        /// Transfer id.
        tid: TransferId,
        /// Hash of the owner capability.
        owner: CapabilityHash,
        /// Hash of the download capability.
        download: CapabilityHash,
        /// Hash of the receipt.
        receipt: CapabilityHash,
        /// Seconds until the relay deletes it.
        expire_secs: u64,
        /// Successful downloads allowed (None: unlimited until expiry).
        max_downloads: Option<u32>,
        /// Declared ciphertext size, if known (checked against the relay's limit).
        size_hint: Option<u64>,
    },
    /// Upload chunk `index`; `len` body bytes follow. Answered once durably stored.
    PutChunk {
        /// Transfer id.
        tid: TransferId,
        /// Owner capability.
        owner: Capability,
        /// Chunk index.
        index: u64,
        /// Body length.
        len: u32,
    },
    /// Upload the sealed manifest; `len` body bytes follow.
    PutManifest {
        /// Transfer id.
        tid: TransferId,
        /// Owner capability.
        owner: Capability,
        /// Body length.
        len: u32,
    },
    /// Mark the upload complete with `chunk_count` chunks (all must be present).
    Complete {
        /// Transfer id.
        tid: TransferId,
        /// Owner capability.
        owner: Capability,
        /// Number of chunks.
        chunk_count: u64,
    },
    /// What the relay holds of a transfer (resume).
    Status {
        /// Transfer id.
        tid: TransferId,
        /// Owner or download capability.
        cap: Capability,
    },
    /// Fetch the manifest; waits up to `wait_secs` for it to be uploaded.
    GetManifest {
        /// Transfer id.
        tid: TransferId,
        /// Download capability.
        download: Capability,
        /// Longest wait for a manifest not uploaded yet.
        wait_secs: u32,
    },
    /// Fetch chunk `index`; waits up to `wait_secs` for it to be uploaded.
    GetChunk {
        /// Transfer id.
        tid: TransferId,
        /// Download capability.
        download: Capability,
        /// Chunk index.
        index: u64,
        /// Longest wait for a chunk not uploaded yet.
        wait_secs: u32,
    },
    /// The receiver authenticated the whole transfer: count one download.
    Receipt {
        /// Transfer id.
        tid: TransferId,
        /// Receipt capability.
        receipt: Capability,
    },
    /// Delete a transfer now.
    Delete {
        /// Transfer id.
        tid: TransferId,
        /// Owner capability.
        owner: Capability,
    },
    /// Open a rendezvous mailbox: allocate a nameplate (None) or claim one.
    Mailbox {
        /// The nameplate to claim, or None to allocate one.
        nameplate: Option<u32>,
        /// Our side.
        side: Side,
    },
    /// Publish a live stream: the relay answers [`Response::Ok`], then the publisher
    /// writes [`StreamFrame`]s and the relay writes [`StreamFrame::Viewers`] back.
    StreamPublish {
        /// Stream id.
        tid: TransferId,
        /// Hash of the owner capability.
        owner: CapabilityHash,
        /// Hash of the download (watch) capability.
        download: CapabilityHash,
        /// Most viewers at once.
        max_viewers: u32,
    },
    /// Watch a live stream: the relay answers [`Response::Ok`], then sends
    /// [`StreamFrame`]s from the next segment boundary on.
    StreamWatch {
        /// Stream id.
        tid: TransferId,
        /// Download capability.
        download: Capability,
    },
    /// Ask for a fresh nonce to prove an identity on this connection
    /// (answered with [`Response::Challenge`]).
    AuthChallenge,
    /// Prove an identity for the rest of this connection: an Ed25519 signature over
    /// [`auth_message`] of the last challenge's nonce. Answered with [`Response::Ok`].
    Auth {
        /// Ed25519 public key.
        ed25519: [u8; 32],
        /// Signature over `auth_message(nonce)`.
        #[serde(with = "sig_bytes")]
        signature: [u8; 64],
    },
    /// Leave a sealed key in an inbox; `len` body bytes follow (at most [`MAX_INBOX_BODY`]).
    InboxPut {
        /// The recipient's inbox id ([`inbox_id`] of their Ed25519 key).
        inbox: InboxId,
        /// Seconds until the relay deletes the entry (clamped to the relay's limit).
        expire_secs: u64,
        /// Body length.
        len: u32,
    },
    /// List an inbox, oldest first (the connection must be authenticated as its owner).
    InboxList {
        /// Inbox id.
        inbox: InboxId,
        /// Only entries after this one (paging; None from the start).
        after: Option<InboxEntryId>,
    },
    /// Delete one inbox entry (the connection must be authenticated as its owner).
    InboxDelete {
        /// Inbox id.
        inbox: InboxId,
        /// Entry id from [`Response::Inbox`].
        entry: InboxEntryId,
    },
    /// Publish a live stream as [`Request::StreamPublish`] does, and record it: the relay
    /// also keeps its segments as the chunks of a transfer with the stream's id,
    /// replayable with the download capability until it expires.
    StreamPublishRecorded {
        /// Stream id (and the recording's transfer id).
        tid: TransferId,
        /// Hash of the owner capability.
        owner: CapabilityHash,
        /// Hash of the download (watch) capability.
        download: CapabilityHash,
        /// Most viewers at once.
        max_viewers: u32,
        /// Hash of the receipt capability (as for [`Request::Create`]).
        receipt: CapabilityHash,
        /// Seconds the recording is kept after the stream ends (same bounds as a
        /// transfer's expiry).
        expire_secs: u64,
    },
    /// Ask for the base URL of the relay's web page (answered with [`Response::Web`]).
    /// A relay older than this request answers `Error` (`BadRequest`): it has no page.
    WebUrl,
    /// Publish our key bundle (opaque to the relay; at most [`MAX_BUNDLE_BODY`] bytes
    /// follow): it replaces the bundle kept for the inbox of the identity this connection
    /// is authenticated as ([`ErrorCode::AuthRequired`] otherwise). Answered with
    /// [`Response::Ok`].
    BundlePut {
        /// Body length.
        len: u32,
    },
    /// Fetch the key bundle published for an inbox: [`Response::Data`] and the bundle,
    /// or [`ErrorCode::NotFound`]. Anyone may ask (a bundle is public and signed).
    BundleGet {
        /// The owner's inbox id ([`inbox_id`] of its Ed25519 key).
        inbox: InboxId,
    },
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

/// An inbox id: opaque to the relay, derived from the owner's Ed25519 key.
pub type InboxId = [u8; 32];
/// An inbox entry id, chosen by the relay: creation time (u64 big-endian seconds) then
/// 8 random bytes, so ids sort oldest first.
pub type InboxEntryId = [u8; 16];
/// Largest sealed key the relay accepts in an inbox.
pub const MAX_INBOX_BODY: u32 = 4096;
/// Largest key bundle the relay keeps for an identity (veil's are 1349 bytes).
pub const MAX_BUNDLE_BODY: u32 = 4096;
/// Most entries one [`Response::Inbox`] carries (the client lists again for more); 12
/// entries of [`MAX_INBOX_BODY`] bytes stay under [`MAX_FRAME_LEN`].
pub const MAX_INBOX_LIST: usize = 12;
/// Domain prefix of the relay authentication message.
pub const AUTH_DOMAIN: &[u8] = b"veil relay auth v2\0";
/// TLS exporter label (RFC 8446 section 7.5) of the value that binds an authentication to
/// its QUIC connection: both ends export [`AUTH_EXPORTER_LEN`] bytes with this label and
/// an empty context.
pub const AUTH_EXPORTER_LABEL: &[u8] = b"EXPORTER-veil-relay-auth";
/// Bytes of TLS exporter output bound into the authentication message.
pub const AUTH_EXPORTER_LEN: usize = 32;

/// The inbox id of an Ed25519 public key: BLAKE3 derive_key("veil inbox id v1", key).
pub fn inbox_id(ed25519: &[u8; 32]) -> InboxId {
    blake3::derive_key("veil inbox id v1", ed25519)
}

/// What a client signs to authenticate:
/// `"veil relay auth v2\0" || nonce || exporter || ALPN`, where `exporter` is the TLS
/// exporter value of the connection ([`AUTH_EXPORTER_LABEL`]), so a signature made for
/// one connection is worthless on any other (a machine in the middle cannot pass a
/// relay's challenge on to a client and reuse the answer).
pub fn auth_message(nonce: &[u8; 32], exporter: &[u8; AUTH_EXPORTER_LEN]) -> Vec<u8> {
    let mut m = Vec::with_capacity(AUTH_DOMAIN.len() + 32 + AUTH_EXPORTER_LEN + ALPN.len());
    m.extend_from_slice(AUTH_DOMAIN);
    m.extend_from_slice(nonce);
    m.extend_from_slice(exporter);
    m.extend_from_slice(ALPN);
    m
}

/// One entry of an inbox listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxEntry {
    /// Entry id (for [`Request::InboxDelete`]).
    pub id: InboxEntryId,
    /// Unix seconds when it was left.
    pub created: u64,
    /// The sealed key, as uploaded.
    #[serde(with = "serde_bytes")]
    pub sealed: Vec<u8>,
}

/// Frames of a live stream (after [`Request::StreamPublish`] / [`Request::StreamWatch`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamFrame {
    /// A new segment begins: its chunk prefix (version + secretstream header).
    Segment {
        /// Segment index.
        index: u64,
        /// Whether this is the final segment (the authenticated end of the stream).
        last: bool,
        /// Chunk prefix bytes.
        #[serde(with = "serde_bytes")]
        prefix: Vec<u8>,
    },
    /// One sealed message of the current segment (length prefix + ciphertext).
    Message(#[serde(with = "serde_bytes")] Vec<u8>),
    /// Publisher -> relay -> viewers: the stream ended cleanly.
    End,
    /// Relay -> publisher: viewers attached now.
    Viewers(u32),
    /// Relay -> viewer: you fell behind; this many segments were skipped.
    Skipped(u64),
    /// Relay -> viewer: the stream was cut (publisher gone, relay stopping).
    Aborted(String),
}

/// A borrowed view of a [`StreamFrame`] (same encoding), so a relay can look into a
/// frame it forwards without copying the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum StreamFrameRef<'a> {
    /// See [`StreamFrame::Segment`].
    Segment {
        /// Segment index.
        index: u64,
        /// Final segment.
        last: bool,
        /// Chunk prefix bytes.
        #[serde(borrow)]
        prefix: &'a [u8],
    },
    /// See [`StreamFrame::Message`].
    Message(#[serde(borrow)] &'a [u8]),
    /// See [`StreamFrame::End`].
    End,
    /// See [`StreamFrame::Viewers`].
    Viewers(u32),
    /// See [`StreamFrame::Skipped`].
    Skipped(u64),
    /// See [`StreamFrame::Aborted`].
    Aborted(&'a str),
}

impl StreamFrame {
    /// Whether an encoded frame (length prefix included) is one after which nothing more
    /// comes on a viewer's stream ([`StreamFrame::End`] or [`StreamFrame::Aborted`]),
    /// judged from its variant byte without decoding the rest.
    pub fn is_terminal_encoded(frame: &[u8]) -> bool {
        // postcard writes the variant index as a varint; these are below 128.
        matches!(frame.get(4), Some(2) | Some(5))
    }
}

/// Largest plaintext a publisher puts in one stream message (so a message frame stays
/// under [`MAX_FRAME_LEN`]).
pub const MAX_STREAM_MESSAGE: usize = 63 * 1024;
// A message frame: variant (1) + length varint (3) + message length prefix (4) + ciphertext
// (plaintext + 17).
const _: () = assert!(1 + 3 + 4 + MAX_STREAM_MESSAGE + 17 <= MAX_FRAME_LEN);

/// What the relay knows about a transfer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferStatus {
    /// Chunk indices stored, as half-open ranges `[start, end)`, ascending.
    pub chunks: Vec<(u64, u64)>,
    /// Whether the manifest is stored.
    pub manifest: bool,
    /// Chunk count if the upload is complete.
    pub complete: Option<u64>,
    /// Successful downloads so far.
    pub downloads: u32,
    /// Download limit.
    pub max_downloads: Option<u32>,
    /// Seconds until expiry.
    pub expires_in_secs: u64,
}

/// The relay's answer: the first frame it writes on a request stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// Done.
    Ok,
    /// Status of a transfer.
    Status(TransferStatus),
    /// `len` body bytes follow (manifest or chunk).
    Data {
        /// Body length.
        len: u32,
    },
    /// Receipt counted.
    Counted {
        /// Downloads left (None: unlimited).
        remaining: Option<u32>,
    },
    /// The mailbox is open on this nameplate.
    MailboxOpened {
        /// Nameplate number.
        nameplate: u32,
    },
    /// The request failed.
    Error(WireError),
    /// This nameplate's mailbox lives on another relay instance sharing the store:
    /// open it there.
    Redirect {
        /// `host:port` of that instance.
        addr: String,
        /// SHA-256 of its certificate (hex).
        fingerprint: String,
    },
    /// A nonce to sign for [`Request::Auth`] (valid once, on this connection).
    Challenge {
        /// Random nonce.
        nonce: [u8; 32],
    },
    /// Entries of an inbox, oldest first.
    Inbox {
        /// Up to [`MAX_INBOX_LIST`] entries.
        entries: Vec<InboxEntry>,
        /// More entries are waiting (delete these, or list again).
        more: bool,
    },
    /// Answer to [`Request::WebUrl`]: the base URL of the page that opens links in a
    /// browser (`URL#TICKET`), or None when this relay serves no page.
    Web {
        /// `https://...`, ending in `/`.
        url: Option<String>,
    },
}

/// A typed error sent to the client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct WireError {
    /// Machine-readable code.
    pub code: ErrorCode,
    /// Human-readable detail (never contains secrets).
    pub message: String,
}

impl WireError {
    /// Build an error.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
}

/// Every error code of the protocol, declared once. Discriminants are the wire values
/// (postcard encodes the variant index as a varint): never reorder, only append.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The frame could not be decoded or makes no sense here.
    BadRequest,
    /// A frame or body exceeds the protocol limit.
    TooLarge,
    /// No such transfer, chunk, manifest or nameplate.
    NotFound,
    /// Wrong capability.
    Forbidden,
    /// The transfer expired.
    Expired,
    /// The download limit was reached.
    DownloadLimit,
    /// A relay limit (size, connections, transfers) was exceeded.
    LimitExceeded,
    /// Waited too long for data that was not uploaded.
    Timeout,
    /// The nameplate is already used by two parties.
    NameplateInUse,
    /// The nameplate was burned by a failed key confirmation.
    Burned,
    /// The store failed; try again.
    Storage,
    /// Conflicting state (e.g. transfer id reused with other capabilities).
    Conflict,
    /// Incomplete upload: chunks missing.
    Incomplete,
    /// Anything else.
    Internal,
    /// The transfer is complete: its manifest and chunks can no longer change.
    Completed,
    /// This relay needs the connection to prove an identity first
    /// ([`Request::AuthChallenge`], [`Request::Auth`]), then the request again.
    AuthRequired,
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            ErrorCode::BadRequest => "bad request",
            ErrorCode::TooLarge => "too large",
            ErrorCode::NotFound => "not found",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::Expired => "expired",
            ErrorCode::DownloadLimit => "download limit reached",
            ErrorCode::LimitExceeded => "relay limit exceeded",
            ErrorCode::Timeout => "timed out",
            ErrorCode::NameplateInUse => "nameplate in use",
            ErrorCode::Burned => "code burned",
            ErrorCode::Storage => "storage error",
            ErrorCode::Conflict => "conflict",
            ErrorCode::Incomplete => "incomplete",
            ErrorCode::Internal => "internal error",
            ErrorCode::Completed => "transfer complete and immutable",
            ErrorCode::AuthRequired => "authentication required",
        };
        f.write_str(s)
    }
}

/// Frames on an open mailbox stream, both directions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MailboxMsg {
    /// Client -> relay: deliver to the other side. Relay -> client: from the other side.
    Message(#[serde(with = "serde_bytes")] Vec<u8>),
    /// Client -> relay: key confirmation failed; burn the nameplate and tell the peer.
    Burn,
    /// Relay -> client: the nameplate was burned (by the peer's failed confirmation).
    Burned,
    /// Relay -> client: the other side joined.
    PeerJoined,
    /// Relay -> client: the other side left before finishing.
    PeerGone,
    /// Client -> relay: done with the mailbox (release the nameplate).
    Close,
}

/// Errors decoding frames.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The declared length exceeds [`MAX_FRAME_LEN`].
    #[error("frame of {0} bytes exceeds the {MAX_FRAME_LEN}-byte limit")]
    TooLarge(usize),
    /// The body is not a valid frame.
    #[error("malformed frame")]
    Malformed,
}

/// Encode a frame: `length (u32 LE) || postcard(value)`.
pub fn encode_frame<T: Serialize>(value: &T) -> Result<Vec<u8>, FrameError> {
    let mut out = vec![0u8; 4];
    let body = postcard::to_extend(value, Vec::new()).map_err(|_| FrameError::Malformed)?;
    if body.len() > MAX_FRAME_LEN {
        return Err(FrameError::TooLarge(body.len()));
    }
    out[..4].copy_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// The bytes of a [`StreamFrame::Message`] frame that come before the message itself
/// (length prefix, variant, the message's varint length), so a sender can hand the
/// message over without copying it into a frame: `header || message` is exactly
/// `encode_frame(&StreamFrame::Message(message))`.
pub fn stream_message_header(message_len: usize) -> Result<Vec<u8>, FrameError> {
    let mut h = Vec::with_capacity(4 + 1 + 10);
    h.extend_from_slice(&[0; 4]);
    h.push(1); // StreamFrame::Message
    let mut n = message_len;
    loop {
        // postcard writes lengths as LEB128 varints.
        let low = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            h.push(low);
            break;
        }
        h.push(low | 0x80);
    }
    let body = h.len() - 4 + message_len;
    if body > MAX_FRAME_LEN {
        return Err(FrameError::TooLarge(body));
    }
    h[..4].copy_from_slice(&(body as u32).to_le_bytes());
    Ok(h)
}

/// Check a frame's 4-byte length prefix; returns the body length.
pub fn frame_len(prefix: [u8; 4]) -> Result<usize, FrameError> {
    let len = u32::from_le_bytes(prefix) as usize;
    if len > MAX_FRAME_LEN {
        return Err(FrameError::TooLarge(len));
    }
    Ok(len)
}

/// Decode a frame body (without its length prefix). Trailing bytes are an error.
pub fn decode_body<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, FrameError> {
    let (v, rest) = postcard::take_from_bytes(body).map_err(|_| FrameError::Malformed)?;
    if !rest.is_empty() {
        return Err(FrameError::Malformed);
    }
    Ok(v)
}

/// Decode one frame from the start of `buf`: `Ok(None)` if more bytes are needed,
/// otherwise the value and the bytes consumed.
pub fn decode_frame<'a, T: Deserialize<'a>>(buf: &'a [u8]) -> Result<Option<(T, usize)>, FrameError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = frame_len([buf[0], buf[1], buf[2], buf[3]])?;
    if buf.len() < 4 + len {
        return Ok(None);
    }
    Ok(Some((decode_body(&buf[4..4 + len])?, 4 + len)))
}

/// Merge sorted chunk indices into half-open ranges.
pub fn to_ranges(indices: impl IntoIterator<Item = u64>) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for i in indices {
        match out.last_mut() {
            Some((_, end)) if *end == i => *end = i.saturating_add(1),
            _ => out.push((i, i.saturating_add(1))),
        }
    }
    out
}

/// Whether `index` lies in one of `ranges`.
pub fn in_ranges(ranges: &[(u64, u64)], index: u64) -> bool {
    ranges.iter().any(|(s, e)| (*s..*e).contains(&index))
}
