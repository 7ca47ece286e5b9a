//! The small text and length parsers of veil-wire: `tid_from_hex` (transfer ids read
//! back from storage object names, which the storage provider controls), `frame_len`,
//! and `stream_message_header` (checked against the frame encoder). Also veil-format's
//! `TransferId::from_hex`. Input: one selector byte, then the argument.
//!
//! Properties: no panic; a parsed transfer id prints back as the same hex (so two object
//! names never map to one id); a message header followed by the message is exactly the
//! encoded `StreamFrame::Message` frame, and both refuse the same oversized messages.
#![no_main]

use libfuzzer_sys::fuzz_target;
use veil_wire::{FrameError, StreamFrame, encode_frame, frame_len, stream_message_header, tid_from_hex, tid_hex};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    match sel % 3 {
        0 => {
            let Ok(s) = std::str::from_utf8(rest) else { return };
            if let Some(t) = tid_from_hex(s) {
                assert_eq!(tid_hex(&t), s.to_ascii_lowercase(), "non-canonical transfer id accepted");
            }
            if let Some(t) = veil_format::TransferId::from_hex(s) {
                assert_eq!(t.to_hex(), s.to_ascii_lowercase());
            }
        }
        1 => {
            let mut p = [0u8; 4];
            let n = rest.len().min(4);
            p[..n].copy_from_slice(&rest[..n]);
            if let Ok(len) = frame_len(p) {
                assert!(len <= veil_wire::MAX_FRAME_LEN);
            }
        }
        _ => {
            // A length around the frame limit (and sometimes far past it).
            let mut b = [0u8; 4];
            let n = rest.len().min(4);
            b[..n].copy_from_slice(&rest[..n]);
            let raw = u32::from_le_bytes(b) as usize;
            let len = if raw & 1 == 0 { (raw >> 1) % (veil_wire::MAX_FRAME_LEN + 64) } else { raw >> 1 };
            match stream_message_header(len) {
                Ok(h) => {
                    let message = vec![0xa5; len];
                    let frame = encode_frame(&StreamFrame::Message(message.clone())).expect("fits");
                    let mut joined = h;
                    joined.extend_from_slice(&message);
                    assert_eq!(joined, frame);
                }
                Err(FrameError::TooLarge(_)) => {
                    if len <= veil_wire::MAX_FRAME_LEN + 64 {
                        assert!(encode_frame(&StreamFrame::Message(vec![0xa5; len])).is_err());
                    }
                }
                Err(e) => panic!("unexpected error {e:?}"),
            }
        }
    }
});
