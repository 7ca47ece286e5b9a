//! The PAKE messages a peer (or the relay in the middle) sends through the mailbox:
//! `PakeStart::finish` on arbitrary bytes, then key confirmation, the post-quantum step
//! and key delivery (`verify_peer`, `pq_accept`, `PqOffer::finish`, `open_delivery`) on
//! the same bytes. Input: one byte picking our role,
//! then the peer's message. Property: no panic (a wrong message is an error or a key that
//! fails confirmation).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use veil_format::code::{Code, PakeStart, Role};

fn code() -> &'static Code {
    static C: OnceLock<Code> = OnceLock::new();
    C.get_or_init(|| Code::parse("7-guitar-orbit").expect("valid code"))
}

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, msg)) = data.split_first() else { return };
    let role = if ctl & 1 == 0 { Role::Sender } else { Role::Receiver };
    let (start, _ours) = PakeStart::new(role, code());
    if let Ok(key) = start.finish(msg) {
        let _ = key.confirmation();
        let _ = key.verify_peer(msg);
        // As the sender: the bytes as the receiver's offer.
        if let Ok((hybrid, ct)) = key.pq_accept(msg) {
            assert_eq!(ct.len(), veil_format::pq::MLKEM_CIPHERTEXT_LEN);
            let _ = hybrid.open_delivery(msg);
        }
        // As the receiver: the bytes as the sender's ciphertext, then as its delivery.
        let (offer, _) = key.pq_offer();
        if let Ok(hybrid) = offer.finish(msg) {
            let _ = hybrid.open_delivery(msg);
        }
        let _ = key.verification_string();
    }
});
