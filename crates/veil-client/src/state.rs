//! Resume state of a send or a code receive: a small JSON file (0600) under the veil
//! home holding the transfer id and key in hex, kept while the transfer can resume and
//! deleted at every final outcome.

use crate::error::Result;
use crate::home::Home;
use serde::{Deserialize, Serialize};
use veil_format::{ContentKey, OwnerSecret, TransferId};

/// The file's fields: `{tid, key}` for a receive (`receives/<hash>.json`), plus `owner`
/// and `delivered` for a send (`sends/<hash>.json`).
#[derive(Serialize, Deserialize)]
struct StateFile {
    tid: String,
    key: String,
    /// The sender's owner secret (hex); a send state without one predates it and is not
    /// resumed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    owner: Option<String>,
    /// Whether the key reached the receiver (send only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    delivered: Option<bool>,
}

/// What a transfer remembers between runs.
pub(crate) struct ResumeState {
    /// The transfer.
    pub tid: TransferId,
    /// Its content key.
    pub key: ContentKey,
    /// The sender's owner secret (sends only).
    pub owner: Option<OwnerSecret>,
    /// Whether the key was delivered (sends only).
    pub delivered: Option<bool>,
}

impl ResumeState {
    /// Read the state at `name`: None if there is none, `Some(None)` if it cannot be
    /// understood.
    pub fn load(home: &Home, name: &str) -> Result<Option<Option<ResumeState>>> {
        let file: Option<StateFile> = home.read_json(name)?;
        Ok(file.map(|f| Self::parse(&f)))
    }

    fn parse(f: &StateFile) -> Option<ResumeState> {
        let owner = match f.owner.as_deref() {
            Some(h) => Some(OwnerSecret::from_bytes(hex32(h)?)),
            None => None,
        };
        Some(ResumeState {
            tid: TransferId::from_hex(&f.tid)?,
            key: ContentKey::from_bytes(hex32(&f.key)?),
            owner,
            delivered: f.delivered,
        })
    }

    /// Write the state to `name` (0600).
    pub fn save(&self, home: &Home, name: &str) -> Result<()> {
        let file = StateFile {
            tid: self.tid.to_hex(),
            key: hex::encode(self.key.expose()),
            owner: self.owner.as_ref().map(|o| hex::encode(o.expose())),
            delivered: self.delivered,
        };
        home.write_json(name, &file)
    }
}

fn hex32(h: &str) -> Option<[u8; 32]> {
    hex::decode(h).ok()?.try_into().ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const TID: &str = "00112233445566778899aabbccddeeff";
    const KEY: &str = "0101010101010101010101010101010101010101010101010101010101010101";
    const OWNER: &str = "0202020202020202020202020202020202020202020202020202020202020202";

    #[test]
    fn existing_state_files_still_resume() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path());
        let send = format!(r#"{{"tid":"{TID}","key":"{KEY}","owner":"{OWNER}","delivered":true}}"#);
        home.write_private("sends/a.json", send.as_bytes()).unwrap();
        let s = ResumeState::load(&home, "sends/a.json").unwrap().flatten().unwrap();
        assert_eq!(s.tid.to_hex(), TID);
        assert_eq!(hex::encode(s.owner.unwrap().expose()), OWNER);
        assert_eq!(s.delivered, Some(true));
        let recv = format!(r#"{{"tid":"{TID}","key":"{KEY}"}}"#);
        home.write_private("receives/b.json", recv.as_bytes()).unwrap();
        let r = ResumeState::load(&home, "receives/b.json").unwrap().flatten().unwrap();
        assert_eq!(hex::encode(r.key.expose()), KEY);
        assert!(r.owner.is_none() && r.delivered.is_none());
        home.write_private("receives/c.json", br#"{"tid":"zz","key":"00"}"#).unwrap();
        assert!(matches!(ResumeState::load(&home, "receives/c.json"), Ok(Some(None))));
        assert!(ResumeState::load(&home, "receives/none.json").unwrap().is_none());
    }

    #[test]
    fn a_receive_state_is_written_with_tid_and_key_only() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path());
        let tid = TransferId::from_hex(TID).unwrap();
        let key = ContentKey::from_bytes([1; 32]);
        ResumeState { tid, key, owner: None, delivered: None }.save(&home, "receives/d.json").unwrap();
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(home.path("receives/d.json")).unwrap()).unwrap();
        assert_eq!(v, serde_json::json!({"tid": TID, "key": KEY}));
    }
}
