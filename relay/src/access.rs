//! Who may upload: per-connection authentication, the optional allow-list of identities,
//! per-identity quotas and per-IP limits for anonymous uploads. Everything here is in
//! memory; limits refuse new work and never delete what is already stored.

use crate::metrics::Metrics;
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use veil_wire::{ErrorCode, TransferId, WireError, auth_message};

/// An Ed25519 public key that proved itself on a connection.
pub type IdentityKey = [u8; 32];

/// What the relay knows about one QUIC connection.
#[derive(Debug)]
pub struct ConnCtx {
    /// The client's IP address.
    pub ip: IpAddr,
    nonce: Mutex<Option<[u8; 32]>>,
    identity: Mutex<Option<IdentityKey>>,
    /// TLS exporter value of this connection (bound into the authentication message).
    exporter: [u8; veil_wire::AUTH_EXPORTER_LEN],
    /// Mailboxes open on this connection.
    pub(crate) mailboxes: std::sync::atomic::AtomicUsize,
    /// The bulk receive window, once granted (see [`crate::slots::Slots::widen`]).
    pub(crate) wide: Mutex<Option<crate::slots::WidePermit>>,
}

fn lock_err() -> WireError {
    WireError::new(ErrorCode::Internal, "lock poisoned")
}

impl ConnCtx {
    /// A fresh, unauthenticated connection whose TLS session exported `exporter`
    /// ([`veil_wire::AUTH_EXPORTER_LABEL`]).
    pub fn new(ip: IpAddr, exporter: [u8; veil_wire::AUTH_EXPORTER_LEN]) -> Self {
        ConnCtx {
            ip,
            nonce: Mutex::new(None),
            identity: Mutex::new(None),
            exporter,
            mailboxes: std::sync::atomic::AtomicUsize::new(0),
            wide: Mutex::new(None),
        }
    }

    /// The identity this connection proved, if any.
    pub fn identity(&self) -> Option<IdentityKey> {
        self.identity.lock().ok().and_then(|g| *g)
    }

    /// A new nonce for [`veil_wire::Request::Auth`] (replaces an earlier one).
    pub fn challenge(&self) -> Result<[u8; 32], WireError> {
        let mut n = [0u8; 32];
        getrandom::fill(&mut n).map_err(|_| WireError::new(ErrorCode::Internal, "rng"))?;
        *self.nonce.lock().map_err(|_| lock_err())? = Some(n);
        Ok(n)
    }

    /// Check a signature over the pending nonce; the nonce is used up either way.
    pub fn authenticate(&self, ed25519: &[u8; 32], signature: &[u8; 64]) -> Result<(), WireError> {
        let nonce = self.nonce.lock().map_err(|_| lock_err())?.take();
        let Some(nonce) = nonce else {
            return Err(WireError::new(
                ErrorCode::BadRequest,
                "authentication without a challenge: send AuthChallenge first",
            ));
        };
        let forbidden = || WireError::new(ErrorCode::Forbidden, "identity authentication failed (bad signature)");
        let vk = ed25519_dalek::VerifyingKey::from_bytes(ed25519).map_err(|_| forbidden())?;
        let sig = ed25519_dalek::Signature::from_bytes(signature);
        vk.verify_strict(&auth_message(&nonce, &self.exporter), &sig).map_err(|_| forbidden())?;
        *self.identity.lock().map_err(|_| lock_err())? = Some(*ed25519);
        Ok(())
    }
}

/// Access-control settings.
#[derive(Debug, Clone, Default)]
pub struct AccessConfig {
    /// Allow-list file: only these identities may upload (None: the relay is open).
    pub allow_file: Option<PathBuf>,
    /// Ciphertext bytes one identity may keep stored.
    pub quota_bytes: Option<u64>,
    /// New transfers and streams per identity per hour.
    pub quota_transfers_per_hour: Option<u32>,
    /// New transfers and streams per IP per hour, for connections without an identity.
    pub anon_transfers_per_hour: Option<u32>,
}

/// Errors loading the allow-list.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AllowListError {
    /// The file could not be read.
    #[error("reading the allow-list {path}: {err}")]
    Read {
        /// The file.
        path: String,
        /// The OS error.
        err: std::io::Error,
    },
    /// A line is not a public identity.
    #[error("allow-list {path}, line {line}: not a veil public identity (veilid2... or veilid1...): {reason}")]
    BadLine {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// Why.
        reason: &'static str,
    },
}

pub use crate::allow_list::{parse_allow_list, parse_identity};

fn load_allow(path: &PathBuf) -> Result<HashSet<IdentityKey>, AllowListError> {
    let p = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|err| AllowListError::Read { path: p.clone(), err })?;
    parse_allow_list(&text).map_err(|(line, reason)| AllowListError::BadLine { path: p, line, reason })
}

#[derive(Debug)]
struct AllowList {
    path: PathBuf,
    checked: Instant,
    mtime: Option<SystemTime>,
    keys: HashSet<IdentityKey>,
}

impl AllowList {
    /// Re-read the file if its mtime changed (looked at most once a second). A file that
    /// became unreadable or invalid keeps the last good list (and says so in the log).
    fn refresh(&mut self) {
        if self.checked.elapsed() < Duration::from_secs(1) {
            return;
        }
        self.checked = Instant::now();
        let mtime = std::fs::metadata(&self.path).and_then(|m| m.modified()).ok();
        if mtime == self.mtime {
            return;
        }
        match load_allow(&self.path) {
            Ok(keys) => {
                tracing::info!(identities = keys.len(), "allow-list reloaded");
                self.keys = keys;
                self.mtime = mtime;
            }
            Err(e) => tracing::warn!(error = %e, "allow-list not reloaded; keeping the previous one"),
        }
    }
}

#[derive(Debug, Default)]
struct Usage {
    bytes: HashMap<IdentityKey, u64>,
    per_transfer: HashMap<TransferId, (IdentityKey, u64)>,
    recent_by_identity: HashMap<IdentityKey, VecDeque<Instant>>,
    recent_by_ip: HashMap<IpAddr, VecDeque<Instant>>,
}

const HOUR: Duration = Duration::from_secs(3600);

fn recent_count(q: Option<&mut VecDeque<Instant>>) -> usize {
    match q {
        Some(q) => {
            while q.front().is_some_and(|t| t.elapsed() >= HOUR) {
                q.pop_front();
            }
            q.len()
        }
        None => 0,
    }
}

/// Access control of one relay.
#[derive(Debug)]
pub struct Access {
    cfg: AccessConfig,
    allow: Option<Mutex<AllowList>>,
    usage: Mutex<Usage>,
    metrics: Arc<Metrics>,
}

/// The refusal when the allow-list is in force.
pub const NOT_ALLOWED: &str = "this relay only accepts uploads from identities on its allow-list";

impl Access {
    /// Access control from `cfg` (reads the allow-list now: a bad file is a startup error).
    pub fn new(cfg: AccessConfig, metrics: Arc<Metrics>) -> Result<Access, AllowListError> {
        let allow = match &cfg.allow_file {
            Some(path) => {
                let mtime = std::fs::metadata(path).and_then(|m| m.modified()).ok();
                let keys = load_allow(path)?;
                Some(Mutex::new(AllowList { path: path.clone(), checked: Instant::now(), mtime, keys }))
            }
            None => None,
        };
        Ok(Access { cfg, allow, usage: Mutex::new(Usage::default()), metrics })
    }

    /// An open relay with no limits.
    pub fn open(metrics: Arc<Metrics>) -> Access {
        Access { cfg: AccessConfig::default(), allow: None, usage: Mutex::new(Usage::default()), metrics }
    }

    /// May this connection upload (create transfers, publish streams, fill inboxes)?
    pub fn check_upload(&self, ctx: &ConnCtx) -> Result<(), WireError> {
        let Some(allow) = &self.allow else { return self.check_anonymous(ctx) };
        let mut a = allow.lock().map_err(|_| lock_err())?;
        a.refresh();
        match ctx.identity() {
            Some(k) if a.keys.contains(&k) => Ok(()),
            Some(_) => {
                self.metrics.reject("not_on_allow_list");
                Err(WireError::new(
                    ErrorCode::Forbidden,
                    format!("{NOT_ALLOWED}, and your identity is not on it (ask the operator to add it)"),
                ))
            }
            None => {
                // Ask for an identity: a client proves one only where a relay needs it.
                self.metrics.reject("auth_required");
                Err(WireError::new(
                    ErrorCode::AuthRequired,
                    format!("{NOT_ALLOWED}; this connection has no identity (create one with `veil identity new`)"),
                ))
            }
        }
    }

    /// Without an allow-list, anyone may upload, but per-identity quotas mean something
    /// only if anonymous uploads cannot bypass them: with such quotas and no limit for
    /// anonymous uploads, an identity is required.
    fn check_anonymous(&self, ctx: &ConnCtx) -> Result<(), WireError> {
        let per_identity = self.cfg.quota_bytes.is_some() || self.cfg.quota_transfers_per_hour.is_some();
        if ctx.identity().is_none() && per_identity && self.cfg.anon_transfers_per_hour.is_none() {
            self.metrics.reject("auth_required");
            return Err(WireError::new(
                ErrorCode::AuthRequired,
                "this relay counts uploads per identity and takes no anonymous uploads; this connection has no identity (create one with `veil identity new`)",
            ));
        }
        Ok(())
    }

    /// May this connection start a new transfer or stream of about `size` bytes?
    pub fn check_new(&self, ctx: &ConnCtx, size: Option<u64>) -> Result<(), WireError> {
        let mut u = self.usage.lock().map_err(|_| lock_err())?;
        let limit = |what: &str, msg: String| {
            self.metrics.reject(match what {
                "bytes" => "quota_bytes",
                "identity" => "quota_transfers_per_hour",
                _ => "anon_transfers_per_hour",
            });
            Err(WireError::new(ErrorCode::LimitExceeded, msg))
        };
        match ctx.identity() {
            Some(k) => {
                if let Some(max) = self.cfg.quota_transfers_per_hour
                    && recent_count(u.recent_by_identity.get_mut(&k)) >= max as usize
                {
                    return limit(
                        "identity",
                        format!(
                            "quota reached: at most {max} new transfers per hour per identity (--quota-transfers-per-hour)"
                        ),
                    );
                }
                if let Some(max) = self.cfg.quota_bytes {
                    let used = u.bytes.get(&k).copied().unwrap_or(0);
                    if used.saturating_add(size.unwrap_or(0)) > max {
                        return limit(
                            "bytes",
                            format!(
                                "quota reached: {used} of {max} bytes stored per identity (--quota-bytes); wait for earlier transfers to expire or delete them"
                            ),
                        );
                    }
                }
            }
            None => {
                if let Some(max) = self.cfg.anon_transfers_per_hour
                    && recent_count(u.recent_by_ip.get_mut(&ctx.ip)) >= max as usize
                {
                    return limit(
                        "anon",
                        format!(
                            "limit reached: at most {max} new transfers per hour from one address without an identity (--anon-transfers-per-hour)"
                        ),
                    );
                }
            }
        }
        Ok(())
    }

    /// Count a new transfer or stream (after it was created). `tid` ties later uploaded
    /// bytes to the identity that created it.
    pub fn record_new(&self, ctx: &ConnCtx, tid: Option<TransferId>) {
        let Ok(mut u) = self.usage.lock() else { return };
        match ctx.identity() {
            Some(k) => {
                u.recent_by_identity.entry(k).or_default().push_back(Instant::now());
                if let Some(t) = tid {
                    u.per_transfer.entry(t).or_insert((k, 0));
                }
            }
            None => u.recent_by_ip.entry(ctx.ip).or_default().push_back(Instant::now()),
        }
    }

    /// Charge `len` uploaded bytes of `tid` to whoever created it (else this connection's
    /// identity); refuses past the byte quota.
    pub fn charge(&self, ctx: &ConnCtx, tid: &TransferId, len: u64) -> Result<(), WireError> {
        let mut u = self.usage.lock().map_err(|_| lock_err())?;
        let owner = match u.per_transfer.get(tid) {
            Some((k, _)) => *k,
            None => match ctx.identity() {
                Some(k) => k,
                None => return Ok(()),
            },
        };
        let used = u.bytes.get(&owner).copied().unwrap_or(0);
        if let Some(max) = self.cfg.quota_bytes
            && used.saturating_add(len) > max
        {
            self.metrics.reject("quota_bytes");
            return Err(WireError::new(
                ErrorCode::LimitExceeded,
                format!(
                    "quota reached: {used} of {max} bytes stored per identity (--quota-bytes); wait for earlier transfers to expire or delete them"
                ),
            ));
        }
        *u.bytes.entry(owner).or_insert(0) += len;
        u.per_transfer.entry(*tid).or_insert((owner, 0)).1 += len;
        Ok(())
    }

    /// A transfer was deleted or expired: give its bytes back.
    pub fn release(&self, tid: &TransferId) {
        let Ok(mut u) = self.usage.lock() else { return };
        if let Some((k, n)) = u.per_transfer.remove(tid)
            && let Some(b) = u.bytes.get_mut(&k)
        {
            *b = b.saturating_sub(n);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    const X: [u8; 32] = [0x5e; 32];

    #[test]
    fn parses_the_format_vector_identity() {
        // crates/veil-format/vectors/identity.json, "insecure test parameters, other handle".
        let s = "veilid1mr2rtblw327dqaeksbqdub2bumddyrfjo7klzrndf74chz5wtcgatudwzdcirdhfc3npizmx372vpk67symut5w44fng5a3kee3pojkvroah2";
        let k = parse_identity(s).unwrap();
        assert_eq!(hex::encode(k), "6475198576debe38008a90603a0741a3063c44a977d4bcc5a32ff823e7b6988c");
        assert_eq!(parse_identity(&s.to_uppercase()).unwrap(), k);
        let mut typo = s.as_bytes().to_vec();
        typo[20] = if typo[20] == b'a' { b'b' } else { b'a' };
        assert!(parse_identity(std::str::from_utf8(&typo).unwrap()).is_err());
        assert!(parse_identity("veilid1").is_err());
        // The same identity's veilid2 string (identity.json, `identity_v2`): same key.
        let v2 = "veilid2mr2rtblw327dqaeksbqdub2bumddyrfjo7klzrndf74chz5wtcgatudwzdcirdhfc3npizmx372vpk67symut5w44fng5a3kee3pojn7wwbgjebltfpgxxavmf6qe3tli2hgrpaz4b3cx42vvhlkplapbzn5xxu3";
        assert_eq!(parse_identity(v2).unwrap(), k);
        assert_eq!(parse_identity(&v2.to_uppercase()).unwrap(), k);
        let mut typo = v2.as_bytes().to_vec();
        typo[150] = if typo[150] == b'a' { b'b' } else { b'a' };
        assert!(parse_identity(std::str::from_utf8(&typo).unwrap()).is_err(), "the commitment is in the checksum");
        assert!(parse_identity(&v2.replacen("veilid2", "veilid1", 1)).is_err());
        assert!(parse_identity(&s.replacen("veilid1", "veilid2", 1)).is_err());
    }

    #[test]
    fn authentication_needs_a_fresh_nonce_and_a_good_signature() {
        let ctx = ConnCtx::new(IpAddr::from([127, 0, 0, 1]), X);
        let sk = SigningKey::from_bytes(&[7; 32]);
        let pk = sk.verifying_key().to_bytes();
        // No challenge yet.
        assert_eq!(ctx.authenticate(&pk, &[0; 64]).unwrap_err().code, ErrorCode::BadRequest);
        // Wrong signature, and the nonce is spent by the attempt.
        let n = ctx.challenge().unwrap();
        let good = sk.sign(&auth_message(&n, &X)).to_bytes();
        assert_eq!(ctx.authenticate(&pk, &[1; 64]).unwrap_err().code, ErrorCode::Forbidden);
        assert_eq!(ctx.authenticate(&pk, &good).unwrap_err().code, ErrorCode::BadRequest);
        assert_eq!(ctx.identity(), None);
        // A signature over another nonce fails; the right one succeeds.
        let n2 = ctx.challenge().unwrap();
        assert_eq!(ctx.authenticate(&pk, &good).unwrap_err().code, ErrorCode::Forbidden);
        let n3 = ctx.challenge().unwrap();
        assert_ne!(n2, n3);
        // A signature for the same nonce on another TLS session (a relayed challenge) fails.
        assert_eq!(
            ctx.authenticate(&pk, &sk.sign(&auth_message(&n3, &[0x11; 32])).to_bytes()).unwrap_err().code,
            ErrorCode::Forbidden
        );
        let n3 = ctx.challenge().unwrap();
        ctx.authenticate(&pk, &sk.sign(&auth_message(&n3, &X)).to_bytes()).unwrap();
        assert_eq!(ctx.identity(), Some(pk));
    }

    #[test]
    fn quotas_count_and_release() {
        let m = Arc::new(Metrics::new());
        let cfg = AccessConfig {
            quota_bytes: Some(100),
            quota_transfers_per_hour: Some(2),
            anon_transfers_per_hour: Some(1),
            ..Default::default()
        };
        let a = Access::new(cfg, m).unwrap();
        let anon = ConnCtx::new(IpAddr::from([10, 0, 0, 1]), X);
        a.check_new(&anon, None).unwrap();
        a.record_new(&anon, Some([1; 16]));
        assert_eq!(a.check_new(&anon, None).unwrap_err().code, ErrorCode::LimitExceeded);

        let me = ConnCtx::new(IpAddr::from([10, 0, 0, 1]), X);
        let sk = SigningKey::from_bytes(&[9; 32]);
        let n = me.challenge().unwrap();
        me.authenticate(&sk.verifying_key().to_bytes(), &sk.sign(&auth_message(&n, &X)).to_bytes()).unwrap();
        a.check_new(&me, Some(60)).unwrap();
        a.record_new(&me, Some([2; 16]));
        a.charge(&me, &[2; 16], 60).unwrap();
        let e = a.check_new(&me, Some(60)).unwrap_err();
        assert!(e.message.contains("--quota-bytes"), "{e}");
        assert!(a.charge(&me, &[2; 16], 41).is_err());
        a.release(&[2; 16]);
        a.check_new(&me, Some(60)).unwrap();
        a.record_new(&me, Some([3; 16]));
        let e = a.check_new(&me, None).unwrap_err();
        assert!(e.message.contains("--quota-transfers-per-hour"), "{e}");
    }
}
