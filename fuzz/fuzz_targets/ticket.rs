//! `Ticket::decode` on whatever a user pastes (a ticket travels through chat, mail, QR
//! codes: attacker-controlled). Password tickets are only decoded: unwrapping runs
//! Argon2id (256 MiB for real tickets), far too slow per input.
//!
//! Properties: no panic; a plain ticket re-encodes and decodes to the same transfer id
//! and key; a password ticket asks for a password before any key derivation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use veil_format::ticket::{Ticket, is_ticket};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let _ = is_ticket(s);
    let Ok(t) = Ticket::decode(s) else { return };
    let tid = t.transfer_id();
    match &t {
        Ticket::Plain { key, .. } => {
            assert!(!t.needs_password());
            assert_eq!(&t.key(None).expect("plain key"), key);
            let again = Ticket::decode(&Ticket::encode_plain(&tid, key)).expect("re-encoded ticket decodes");
            assert_eq!(again.transfer_id(), tid);
            assert_eq!(&again.key(None).expect("plain key"), key);
        }
        Ticket::Password { wrapped, .. } => {
            assert!(t.needs_password());
            assert_eq!(wrapped.len(), 24 + 32 + 17);
            assert!(t.key(None).is_err());
        }
    }
});
