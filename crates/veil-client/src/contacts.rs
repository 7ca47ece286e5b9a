//! Contacts: names for public identities (`VEIL_HOME/contacts.json`), and how a
//! received transfer's signer relates to them.

use crate::error::{ClientError, Result};
use crate::home::Home;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use veil_format::escape_text;
use veil_format::identity::{PublicIdentity, fingerprint_of, looks_like_identity, normalize_handle};

const FILE: &str = "contacts.json";

/// The contact list: normalised name -> public identity string.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Contacts {
    contacts: BTreeMap<String, String>,
}

/// Who sent a transfer, as far as our contacts tell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum SenderStatus {
    /// The signer key is this contact's key.
    Contact {
        /// The contact's name.
        name: String,
    },
    /// The sender claims the name of a contact but signed with another key: like SSH's
    /// changed host key, either the contact made a new identity or someone impersonates it.
    ChangedKey {
        /// The contact's name.
        name: String,
        /// Fingerprint of the key we know for that name.
        known: String,
        /// Fingerprint of the key that signed.
        presented: String,
    },
    /// Not one of our contacts.
    Unknown {
        /// The name the sender claims (signed, but anyone can claim any name).
        claimed: Option<String>,
    },
}

/// Check a contact name: 1..=64 characters, no control characters, not an identity string.
pub fn validate_name(name: &str) -> Result<String> {
    let n = normalize_handle(name);
    if n.is_empty() || n.chars().count() > 64 || n.chars().any(char::is_control) || looks_like_identity(&n) {
        return Err(ClientError::Usage(format!(
            "contact name {:?} must be 1 to 64 characters without control characters, and not an identity string",
            escape_text(name)
        )));
    }
    Ok(n)
}

impl Contacts {
    /// Read the contact list (missing is empty).
    pub fn load(home: &Home) -> Result<Contacts> {
        Ok(home.read_json(FILE)?.unwrap_or_default())
    }

    /// Write it back (0600).
    pub fn save(&self, home: &Home) -> Result<()> {
        home.write_json(FILE, self)
    }

    /// Add `name`. Re-adding the same identity is fine (an old `veilid1` string and the
    /// `veilid2` string of the same keys are the same identity: the longer one is kept);
    /// another identity under a known name is refused (remove the old one first).
    pub fn add(&mut self, name: &str, id: &PublicIdentity) -> Result<String> {
        let n = validate_name(name)?;
        let mut keep = *id;
        if let Some(old) = self.contacts.get(&n).and_then(|s| PublicIdentity::decode(s).ok()) {
            let conflicting_commitment = matches!((old.xwing, id.xwing), (Some(a), Some(b)) if a != b);
            if !old.same_keys(id) || conflicting_commitment {
                return Err(ClientError::Usage(format!(
                    "{} is already a contact with another identity; `veil contacts remove {}` first",
                    escape_text(&n),
                    escape_text(&n)
                )));
            }
            if id.xwing.is_none() {
                keep = old;
            }
        } else if self.contacts.contains_key(&n) {
            return Err(ClientError::Usage(format!(
                "{} is already a contact; `veil contacts remove {}` first",
                escape_text(&n),
                escape_text(&n)
            )));
        }
        self.contacts.insert(n.clone(), keep.encode());
        Ok(n)
    }

    /// Pin the X-Wing commitment of contact `name` (known by an old `veilid1` string) to
    /// `id`, which must have the same keys.
    pub fn pin(&mut self, name: &str, id: &PublicIdentity) -> Result<()> {
        self.add(name, id).map(|_| ())
    }

    /// Remove `name`; false if it was not there.
    pub fn remove(&mut self, name: &str) -> bool {
        self.contacts.remove(&normalize_handle(name)).is_some()
    }

    /// The identity of `name`.
    pub fn get(&self, name: &str) -> Option<PublicIdentity> {
        self.contacts.get(&normalize_handle(name)).and_then(|s| PublicIdentity::decode(s).ok())
    }

    /// The contact whose signing key is `ed25519`.
    pub fn by_key(&self, ed25519: &[u8; 32]) -> Option<&str> {
        self.contacts
            .iter()
            .find(|(_, s)| PublicIdentity::decode(s).is_ok_and(|p| p.ed25519 == *ed25519))
            .map(|(n, _)| n.as_str())
    }

    /// All contacts, sorted by name.
    pub fn list(&self) -> Vec<(String, PublicIdentity)> {
        self.contacts.iter().filter_map(|(n, s)| Some((n.clone(), PublicIdentity::decode(s).ok()?))).collect()
    }

    /// A contact name or a pasted identity string.
    pub fn resolve(&self, name_or_identity: &str) -> Result<PublicIdentity> {
        let t = name_or_identity.trim();
        if looks_like_identity(t) {
            return Ok(PublicIdentity::decode(t)?);
        }
        self.get(t).ok_or_else(|| {
            ClientError::Usage(format!(
                "{} is not one of your contacts (`veil contacts list`), nor an identity string",
                escape_text(t)
            ))
        })
    }

    /// How a signer (and the name it claims) relates to our contacts.
    pub fn classify(&self, signer: &[u8; 32], claimed: Option<&str>) -> SenderStatus {
        if let Some(name) = self.by_key(signer) {
            return SenderStatus::Contact { name: name.to_string() };
        }
        if let Some(c) = claimed
            && let Some(known) = self.get(c)
        {
            return SenderStatus::ChangedKey {
                name: normalize_handle(c),
                known: known.fingerprint(),
                presented: fingerprint_of(signer),
            };
        }
        SenderStatus::Unknown { claimed: claimed.map(str::to_string) }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use veil_format::identity::Identity;

    #[test]
    fn old_and_new_strings_of_one_identity_are_one_contact() {
        let (bob, mallory) = (Identity::ephemeral(), Identity::ephemeral());
        let (v2, v1) = (bob.public(), bob.public().without_commitment());
        let mut c = Contacts::default();
        // Known by the old string, then pinned to the new one: same contact, upgraded.
        c.add("bob", &v1).unwrap();
        assert_eq!(c.get("bob"), Some(v1));
        c.pin("bob", &v2).unwrap();
        assert_eq!(c.get("bob"), Some(v2));
        // Re-adding the old string keeps the pinned commitment.
        c.add("bob", &v1).unwrap();
        assert_eq!(c.get("bob"), Some(v2));
        assert_eq!(c.resolve(&v1.encode()).unwrap(), v1);
        assert_eq!(c.by_key(&v2.ed25519), Some("bob"));
        // Same Ed25519 and X25519 keys with another X-Wing commitment: a changed key.
        let forged = PublicIdentity { xwing: Some([9; 32]), ..v2 };
        assert!(c.add("bob", &forged).is_err());
        assert!(c.pin("bob", &forged).is_err());
        assert!(c.add("bob", &mallory.public()).is_err());
        assert_eq!(c.get("bob"), Some(v2));
        // Names that look like identity strings (either version) are refused.
        assert!(validate_name("veilid2abc").is_err() && validate_name("VEILID1x").is_err());
    }
}
