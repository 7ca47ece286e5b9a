//! `MailboxMsg` frames as the relay and the client decode them: `decode_frame` on the
//! bytes of a stream (length prefix + body) and `decode_body` on a bare body.
//! Properties: no panic; whatever decodes re-encodes and decodes to the same value, with
//! the consumed length the prefix declared. (`decode_body` already rejects trailing
//! bytes; `decode_frame` leaves bytes after the frame to the caller.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use veil_wire::MailboxMsg;

fuzz_target!(|data: &[u8]| {
    veil_fuzz::check_frame::<MailboxMsg>(data);
});
